"""HTTP load: wrk with a Lua script for the POST bodies, or a light httpx fallback.

The body of every request is the same GraphQL document with the account id
rotating through a fixed list, so concurrent requests rarely hit one stream.
wrk is installed from the Debian package when missing (``apt-get install -y
wrk``); if that fails, a single-process asyncio httpx client takes its place
and the report says so. Either way the generator shares the machine's cores
with the server under test.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

_PLACEHOLDER = "__ACCOUNT_ID__"


@dataclass(frozen=True)
class LoadResult:
    requests_per_s: float
    requests: int
    bad_responses: int  # non-2xx, socket errors and timeouts
    p50_ms: float
    p99_ms: float
    tool: str


def ensure_wrk() -> str | None:
    """Path of wrk, installing the Debian package once if needed; None if unavailable."""
    found = shutil.which("wrk")
    if found or shutil.which("apt-get") is None:
        return found
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    return shutil.which("wrk")


def request_body(query: str, variables: dict[str, Any], account_id: str) -> str:
    text = json.dumps({"query": query, "variables": variables})
    return text.replace(_PLACEHOLDER, account_id)


def lua_script(query: str, variables: dict[str, Any], account_ids: Sequence[str]) -> str:
    """A wrk script whose ``request()`` posts ``query`` with the next account id."""
    before, after = json.dumps({"query": query, "variables": variables}).split(_PLACEHOLDER)
    ids = ", ".join(f'"{account_id}"' for account_id in account_ids)
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local ids = {{{ids}}}
local before = [==[{before}]==]
local after = [==[{after}]==]
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, before .. ids[(counter % #ids) + 1] .. after)
end
"""


def run_wrk(
    wrk: str, url: str, script: str, *, connections: int, seconds: float, threads: int = 1
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        script_path = Path(handle.name)
    try:
        command = [
            wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
            "--timeout", "10s", "-s", str(script_path), url,
        ]  # fmt: skip
        output = subprocess.run(
            command, check=True, capture_output=True, text=True, timeout=seconds + 60
        ).stdout
    finally:
        script_path.unlink(missing_ok=True)
    return parse_wrk(output)


def parse_wrk(output: str) -> LoadResult:
    """Read requests/s, counts and the 50%/99% latency lines of ``wrk --latency``."""
    rate = float(_search(r"Requests/sec:\s+([\d.]+)", output))
    total = int(_search(r"(\d+) requests in", output))
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    errors = re.search(_SOCKET_ERRORS, output)
    if errors:
        bad += sum(int(n) for n in errors.groups())
    return LoadResult(
        requests_per_s=rate,
        requests=total,
        bad_responses=bad,
        p50_ms=_latency_ms(_search(r"\s50%\s+([\d.]+\w+)", output)),
        p99_ms=_latency_ms(_search(r"\s99%\s+([\d.]+\w+)", output)),
        tool="wrk",
    )


def _search(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"wrk output lacks {pattern!r}:\n{text}")
    return match.group(1)


def _latency_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


async def run_httpx(
    url: str,
    query: str,
    variables: dict[str, Any],
    account_ids: Sequence[str],
    *,
    connections: int,
    seconds: float,
) -> LoadResult:
    """The fallback generator: ``connections`` asyncio workers, one keep-alive client."""
    latencies: list[float] = []
    bad = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(offset: int, client: httpx.AsyncClient) -> None:
        nonlocal bad
        counter = offset
        while time.perf_counter() < deadline:
            counter += connections
            body = request_body(query, variables, account_ids[counter % len(account_ids)])
            started = time.perf_counter()
            response = await client.post(url, content=body, headers=_JSON)
            latencies.append((time.perf_counter() - started) * 1000)
            bad += response.status_code >= 300

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        await asyncio.gather(*(worker(i, client) for i in range(connections)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]
    return LoadResult(
        requests_per_s=len(latencies) / elapsed,
        requests=len(latencies),
        bad_responses=bad,
        p50_ms=ordered[len(ordered) // 2],
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        tool="httpx (fallback: wrk unavailable)",
    )


_JSON = {"Content-Type": "application/json"}
_SOCKET_ERRORS = r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
