"""Deposit mutations over HTTP: the real server vs a trivial strawberry app (target >= 0.6x).

The real server is ``runtime.bootstrap:create_app`` with ``STORE=memory`` (dev auth);
the ceiling is ``bench.trivial_app:app``. Both run under uvicorn with the
same settings (``bench/servers.py``), one worker each, and are loaded
alternately by wrk (one thread, a Lua script rotating the account id in the
POST body). The generator shares the machine's cores with the server.

On the embedded database (``--store mongo`` or ``both``): the server with
``STORE=mongo`` (every consumer and the sequencer running, as ``make run``)
on an nx-27017 started here, loaded the same way, against the floor the
database sets: ``insert_one`` of one small document at a time into the same
nx-27017 from this process, for the same time, alternated with it.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import cli
from bench.harness import COMPARISON_HEADER, Contender, Metrics, alternate, compare, comparison_row
from bench.loadgen import (
    LoadResult,
    ensure_wrk,
    lua_script,
    request_body,
    run_httpx,
    run_wrk,
)
from bench.mongo import fresh_database, small_commit
from bench.report import Section, table
from bench.servers import UVICORN_SETTINGS, uvicorn_server
from runtime.embedded import EmbeddedMongo

DEPOSIT = (
    "mutation Deposit($input: AmountInput!) { deposit(input: $input) "
    "{ __typename ... on AccountPayload { accountId version position } } }"
)
OPEN = (
    "mutation Open($input: OpenAccountInput!) { openAccount(input: $input) "
    "{ __typename ... on AccountPayload { accountId } } }"
)
VARIABLES: dict[str, Any] = {"input": {"accountId": "__ACCOUNT_ID__", "amount": "1.00"}}
SERVER_ENV = {"STORE": "memory", "AUTH_MODE": "dev", "LOG_LEVEL": "WARNING"}
OURS, TRIVIAL = "server.py, STORE=memory", "trivial strawberry app"
EMBEDDED, RAW = "server.py, embedded nx-27017", "raw insert_one, same nx-27017"


QUICK = ["--seconds", "1", "--runs", "1", "--accounts", "2", "--connections", "2"]
"""Toy sizes for the smoke test (``run_all --quick``)."""


def build_parser() -> argparse.ArgumentParser:
    result = cli.parser(__doc__, runs=5)
    result.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    result.add_argument("--connections", type=int, default=16, help="open HTTP connections")
    result.add_argument(
        "--accounts", type=int, default=100, help="accounts the deposits rotate over"
    )
    result.add_argument("--no-wrk", action="store_true", help="use the httpx fallback generator")
    result.add_argument(
        "--store", choices=("both", "memory", "mongo"), default="both",
        help="memory: vs the trivial app; mongo: on the embedded database vs raw insert_one",
    )  # fmt: skip
    return result


async def open_accounts(url: str, count: int) -> list[str]:
    """Open ``count`` accounts through the real API; their ids."""
    ids: list[str] = []
    async with httpx.AsyncClient(timeout=10.0) as client:
        for number in range(count):
            variables = {"input": {"owner": f"bench-{number}", "currency": "EUR"}}
            reply = await client.post(url, json={"query": OPEN, "variables": variables})
            ids.append(_payload(reply, "openAccount")["accountId"])
    return ids


def _payload(reply: httpx.Response, field: str) -> dict[str, Any]:
    body = reply.json()
    result = (body.get("data") or {}).get(field) or {}
    if reply.status_code != 200 or result.get("__typename") != "AccountPayload":
        raise RuntimeError(f"{field} failed: HTTP {reply.status_code} {body}")
    return dict(result)


async def check_deposit(url: str, account_id: str) -> None:
    """One deposit by hand: the load below sends exactly this body."""
    body = request_body(DEPOSIT, VARIABLES, account_id)
    async with httpx.AsyncClient(timeout=10.0) as client:
        reply = await client.post(url, content=body, headers={"Content-Type": "application/json"})
    _payload(reply, "deposit")


async def deposit_load(
    url: str, ids: Sequence[str], wrk: str | None, *, connections: int, seconds: float
) -> LoadResult:
    """Deposits into ``ids`` in turn from ``connections`` connections for ``seconds``:
    with wrk when there is one, else with the httpx generator."""
    if wrk is None:
        return await run_httpx(
            url, DEPOSIT, VARIABLES, ids, connections=connections, seconds=seconds
        )
    script = lua_script(DEPOSIT, VARIABLES, ids)
    return await asyncio.to_thread(
        run_wrk, wrk, url, script, connections=connections, seconds=seconds
    )


def load_contender(
    url: str, ids: list[str], args: argparse.Namespace, wrk: str | None
) -> Contender:
    async def run() -> Metrics:
        result = await deposit_load(
            url, ids, wrk, connections=args.connections, seconds=args.seconds
        )
        return {
            "req/s": result.requests_per_s,
            "p50": result.p50_ms,
            "p99": result.p99_ms,
            "bad": float(result.bad_responses),
        }

    return run


def raw_insert_contender(database_url: str, seconds: float) -> Contender:
    """``insert_one`` of one small document at a time for ``seconds``: inserts per second."""

    async def run() -> Metrics:
        async with fresh_database(database_url) as db:
            collection = db["raw"]
            await collection.insert_one({"_id": "warm-up"})
            done, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                await collection.insert_one(small_commit(done % 100, done // 100 + 1))
                done += 1
            elapsed = time.perf_counter() - started
        return {"req/s": done / elapsed, "p50": float("nan"), "p99": float("nan"), "bad": 0.0}

    return run


async def run_embedded(args: argparse.Namespace, wrk: str | None) -> dict[str, list[Metrics]]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-http-") as data_dir,
        EmbeddedMongo(Path(data_dir) / "db") as database,
    ):
        env = {**SERVER_ENV, "STORE": "mongo", "MONGODB_URL": database.url}
        with uvicorn_server("runtime.bootstrap:create_app", factory=True, env=env) as ours:
            ids = await open_accounts(ours.url, args.accounts)
            await check_deposit(ours.url, ids[0])
            return await alternate(
                {
                    EMBEDDED: load_contender(ours.url, ids, args, wrk),
                    RAW: raw_insert_contender(database.url, args.seconds),
                },
                args.runs,
            )


async def run(args: argparse.Namespace) -> Section:
    wrk = None if args.no_wrk else ensure_wrk()
    results: dict[str, list[Metrics]] = {}
    if args.store in ("both", "mongo"):
        results.update(await run_embedded(args, wrk))
    if args.store == "mongo":
        return report(args, results, wrk)
    with (
        uvicorn_server("runtime.bootstrap:create_app", factory=True, env=SERVER_ENV) as ours,
        uvicorn_server("bench.trivial_app:app") as trivial,
    ):
        ids = await open_accounts(ours.url, args.accounts)
        await check_deposit(ours.url, ids[0])
        await check_deposit(trivial.url, ids[0])
        results.update(
            await alternate(
                {
                    OURS: load_contender(ours.url, ids, args, wrk),
                    TRIVIAL: load_contender(trivial.url, ids, args, wrk),
                },
                args.runs,
            )
        )
    return report(args, results, wrk)


def report(args: argparse.Namespace, results: dict[str, list[Metrics]], wrk: str | None) -> Section:
    section = Section("http_mutation", "GraphQL deposit mutation over HTTP")
    tool = f"wrk (`{wrk}`, 1 thread, Lua script)" if wrk else "httpx fallback (wrk unavailable)"
    section.add(
        f"Load generator: {tool}, {args.connections} connections, {args.seconds:g} s per run, "
        f"{args.runs} alternated runs; deposits rotate over {args.accounts} accounts. "
        "**The generator runs on the same machine and takes CPU from the server.** "
        f"uvicorn settings for both: `{' '.join(UVICORN_SETTINGS)}`."
    )
    if EMBEDDED in results:
        section.add()
        section.add(
            f"Embedded: `{EMBEDDED}` is the server with STORE=mongo (every consumer and the "
            f"sequencer running) on an nx-27017 started by the benchmark, loaded as above; "
            f"`{RAW}` inserts one small document at a time from the benchmark process into that "
            f"database for {args.seconds:g} s (the floor the store cannot beat), alternated with "
            f"it. Target >= 0.5x."
        )
    section.add()
    rows = []
    if OURS in results:
        rows += [
            comparison_row("requests/s", compare(results, OURS, TRIVIAL, "req/s"), "", 0.7),
            comparison_row("p50 latency", compare(results, OURS, TRIVIAL, "p50"), " ms", None),
            comparison_row("p99 latency", compare(results, OURS, TRIVIAL, "p99"), " ms", None),
        ]
    if EMBEDDED in results:
        rows.append(
            comparison_row(
                "deposits/s vs inserts/s", compare(results, EMBEDDED, RAW, "req/s"), "", 0.5
            )
        )
    section.lines += table(COMPARISON_HEADER, rows)
    bad = {name: sum(m["bad"] for m in runs) for name, runs in results.items()}
    section.add()
    section.add(f"Non-2xx responses and socket errors over all runs: {bad}.")
    return section


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
