"""CPU of an idle server plus its database (target <= 2% of a core over 60 s).

The embedded database (nx-27017, as ``make run`` starts it) and the real
server (``runtime.bootstrap:create_app``: every consumer, the sequencer, the live feed
and live read models) run in child processes; after a few deposits and a
settling pause, the CPU time of the server, everything it started and the
database is read from ``/proc`` at both ends of a window with no traffic.
The database is started by this benchmark rather than by the server only so
that a second server can share it afterwards.

Then the check that idling costs no freshness: a second server on the same
database takes deposits, and each is timed from its response until the
first (idle) server's ``account`` query shows its version, through that
server's sequencer poll, the accounts consumer and the read model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench import cli
from bench.http_mutation import DEPOSIT, SERVER_ENV, open_accounts
from bench.report import Section, table
from bench.servers import uvicorn_server
from runtime.embedded import EmbeddedMongo

QUICK = ["--seconds", "2", "--settle", "1", "--runs", "1", "--visibility", "2"]
"""Toy sizes for the smoke test (``run_all --quick``)."""

ACCOUNT = "query Account($id: ID!) { account(id: $id) { version } }"


def build_parser() -> argparse.ArgumentParser:
    result = cli.parser(__doc__, runs=3)
    result.add_argument("--seconds", type=float, default=60.0, help="idle window per run")
    result.add_argument("--settle", type=float, default=10.0, help="pause before the window")
    result.add_argument(
        "--visibility", type=int, default=10, help="deposits through a second server, timed"
    )
    return result


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _tree(roots: Sequence[int]) -> list[int]:
    """``roots`` and every process descending from them."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = list(roots), list(roots)
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.extend(children)
        frontier.extend(children)
    return tree


def cpu_seconds(roots: Sequence[int]) -> dict[int, float]:
    """User + system CPU seconds of ``roots`` and their descendants, by pid."""
    hz = os.sysconf("SC_CLK_TCK")
    result: dict[int, float] = {}
    for pid in _tree(roots):
        try:
            fields = _stat(pid)
            result[pid] = (int(fields[11]) + int(fields[12])) / hz
        except (OSError, IndexError, ValueError):
            continue
    return result


async def _version(http: httpx.AsyncClient, url: str, account: str) -> int:
    reply = await http.post(url, json={"query": ACCOUNT, "variables": {"id": account}})
    return int((reply.json()["data"]["account"] or {}).get("version", 0))


async def _deposit(http: httpx.AsyncClient, url: str, account: str) -> int:
    variables = {"input": {"accountId": account, "amount": "1.00"}}
    reply = await http.post(url, json={"query": DEPOSIT, "variables": variables})
    return int(reply.json()["data"]["deposit"]["version"])


async def _visible_after(http: httpx.AsyncClient, url: str, account: str, version: int) -> float:
    started = time.monotonic()
    while time.monotonic() - started < 10.0:
        if await _version(http, url, account) >= version:
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    return float("inf")


async def one_run(args: argparse.Namespace) -> tuple[float, float, float, list[float]]:
    """(share of a core: server, database, total; foreign deposit -> visible seconds)."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-idle-") as data_dir,
        EmbeddedMongo(Path(data_dir) / "db") as database,
    ):
        assert database.process is not None
        env = {**SERVER_ENV, "STORE": "mongo", "MONGODB_URL": database.url}
        with uvicorn_server("runtime.bootstrap:create_app", env=env, factory=True) as server:
            accounts = await open_accounts(server.url, 2)
            async with httpx.AsyncClient(timeout=10.0) as http:
                for account in accounts:
                    await _deposit(http, server.url, account)
            await asyncio.sleep(args.settle)
            roots = [server.pid, database.process.pid]
            before, started = cpu_seconds(roots), time.monotonic()
            await asyncio.sleep(args.seconds)
            after, elapsed = cpu_seconds(roots), time.monotonic() - started
            used = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
            db = used.get(database.process.pid, 0.0) / elapsed
            total = sum(used.values()) / elapsed
            seen: list[float] = []
            with uvicorn_server("runtime.bootstrap:create_app", env=env, factory=True) as other:
                async with httpx.AsyncClient(timeout=10.0) as http:
                    for number in range(args.visibility):
                        await asyncio.sleep(1.5)  # let the first server go idle again
                        account = accounts[number % len(accounts)]
                        version = await _deposit(http, other.url, account)
                        seen.append(await _visible_after(http, server.url, account, version))
            return total - db, db, total, seen


async def run(args: argparse.Namespace) -> Section:
    results = [await one_run(args) for _ in range(args.runs)]
    section = Section("idle", "Idle cost on the embedded database")
    section.add(
        f"`runtime.bootstrap:create_app` (STORE=mongo, every consumer, sequencer, live feed "
        f"and read models) on an nx-27017 child process, {args.settle:.0f} s after a few "
        f"deposits; CPU "
        f"over {args.seconds:.0f} s with no traffic, as a share of one core; {args.runs} runs. "
        f"Then {args.visibility} deposits through a second server on the same database, each "
        f"1.5 s after the previous one (the first server idle again), timed from the deposit's "
        f"response to the first server's `account` query showing its version (the bound the "
        f"poll back-off must keep: the sequencer polls at most 1 s apart when idle)."
    )
    section.add()
    rows = []
    for number, (server, db, total, seen) in enumerate(results, 1):
        target = "MET" if total <= 0.02 else "MISSED"
        worst = max(seen) * 1000 if seen else 0.0
        median = statistics.median(seen) * 1000 if seen else 0.0
        rows.append([str(number), f"{server:.2%}", f"{db:.2%}", f"{total:.2%} ({target})",
                     f"{median:.0f} / {worst:.0f}"])  # fmt: skip
    header = ["run", "server (and its children)", "database", "total (target <= 2%)",
              "other server's deposit -> visible here, median / max ms"]  # fmt: skip
    section.lines.extend(table(header, rows))
    return section


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
