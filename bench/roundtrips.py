"""Database operations per deposit, and per second at idle, on the embedded default.

The real service (``runtime.bootstrap:create_app`` with its defaults: embedded nx-27017,
every consumer, the live feed and live read models) runs in this process under
uvicorn. A PyMongo command listener (``pymongo.monitoring``, registered before
the service builds its client) counts every command the service sends, by the
asyncio task that sent it: the request (dedupe, load, append), the sequencer,
each consumer, the live feed and the live read models. Nothing else in this
process talks to the database while counting.

1. Idle: ``--idle`` seconds with no traffic; commands per second, by sender.
2. Deposits: ``--deposits`` deposits over HTTP, one at a time, ``--gap``
   seconds apart (so every consumer handles each deposit on its own: the worst
   case, no batching), then ``--settle`` seconds. Per deposit: the commands in
   that window minus the idle rate over the same time, divided by the deposits.
3. Under load: ``--load`` seconds of deposits from ``--connections`` open
   connections (wrk, or the httpx generator without it) over 100 accounts,
   as ``bench.http_mutation`` loads the service, then ``--settle``
   seconds; per deposit as above, over the deposits answered. Concurrent
   appends share insert commands and consumers take larger batches, so this is
   what a busy service pays.

This counts round trips, not time: it needs no quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import httpx
import uvicorn
from pymongo import monitoring

from bench import cli
from bench.http_mutation import DEPOSIT, deposit_load, open_accounts
from bench.loadgen import ensure_wrk
from bench.report import Section, table
from runtime.embedded import free_port
from runtime.settings import load_settings

QUICK = ["--idle", "1", "--deposits", "3", "--gap", "0.2", "--settle", "1", "--load", "1",
         "--connections", "2"]  # fmt: skip
"""Toy sizes for the smoke test (``run_all --quick``)."""

# Commands the driver sends on its own (topology monitoring, handshakes).
_DRIVER_COMMANDS = frozenset({"hello", "ismaster", "isMaster", "ping", "endSessions"})


def build_parser() -> argparse.ArgumentParser:
    result = cli.parser(__doc__, runs=1)
    result.add_argument("--idle", type=float, default=30.0, help="idle window, seconds")
    result.add_argument("--deposits", type=int, default=50, help="deposits counted")
    result.add_argument("--gap", type=float, default=0.3, help="seconds between deposits")
    result.add_argument("--settle", type=float, default=3.0, help="wait after the last deposit")
    result.add_argument("--accounts", type=int, default=10, help="accounts deposited into")
    result.add_argument("--load", type=float, default=10.0, help="seconds under load (0: skip)")
    result.add_argument("--connections", type=int, default=16, help="connections under load")
    return result


def sender() -> str:
    """Which part of the service sent the current command (by its task's name)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return "driver"
    name = task.get_name() if task is not None else "driver"
    if name.startswith(("consumer:", "live-", "sequencer")):
        return name
    if name.startswith("snapshot "):
        return "snapshots"
    return "request"


Key = tuple[str, str, str]  # (sender, command, collection); collection ends in " (empty)"


@dataclass
class Tally(monitoring.CommandListener):
    """Counts commands by (sender, command, collection) while ``active``.

    A read that found nothing (a poll) is counted apart from one that returned
    documents, under the collection name with `` (empty)`` appended.
    """

    active: bool = False
    counts: Counter[Key] = field(default_factory=Counter)
    _started: dict[tuple[object, int], Key] = field(default_factory=dict)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.active or event.command_name in _DRIVER_COMMANDS:
            return
        target = event.command.get(event.command_name)
        collection = target if isinstance(target, str) else "-"
        self._started[(event.connection_id, event.request_id)] = (
            sender(), event.command_name, collection
        )  # fmt: skip

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        key = self._started.pop((event.connection_id, event.request_id), None)
        if key is None:
            return
        cursor = event.reply.get("cursor")
        if isinstance(cursor, dict):
            batch = cursor.get("firstBatch", cursor.get("nextBatch"))
            if not batch:
                key = (key[0], key[1], f"{key[2]} (empty)")
        self.counts[key] += 1

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        key = self._started.pop((event.connection_id, event.request_id), None)
        if key is not None:
            self.counts[key] += 1

    def take(self) -> Counter[Key]:
        counts, self.counts = self.counts, Counter()
        self._started.clear()
        return counts


@contextlib.asynccontextmanager
async def service(data_dir: str) -> AsyncIterator[str]:
    """The service with its defaults (embedded database under ``data_dir``); its URL."""
    from runtime.bootstrap import create_app  # after the listener is registered

    settings = load_settings(
        None, data_dir=data_dir, port=free_port(), auth_mode="dev", log_level="WARNING"
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=settings.port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(1200):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{settings.port}/graphql"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


@dataclass
class Window:
    """The commands counted while ``deposits`` deposits were made in ``seconds``."""

    seconds: float
    counted: Counter[Key]
    deposits: int


@dataclass
class Counts:
    idle_seconds: float
    idle: Counter[Key]
    one_by_one: Window
    loaded: Window | None

    def idle_rate(self, key: Key) -> float:
        return self.idle[key] / self.idle_seconds

    def per_deposit(self, key: Key, window: Window) -> float:
        excess = window.counted[key] - self.idle_rate(key) * window.seconds
        return max(excess, 0.0) / max(window.deposits, 1)

    def commands(self) -> set[Key]:
        keys = set(self.idle) | set(self.one_by_one.counted)
        return keys | set(self.loaded.counted) if self.loaded else keys


async def measure(args: argparse.Namespace) -> Counts:
    tally = Tally()
    monitoring.register(tally)
    with tempfile.TemporaryDirectory(prefix="bench-roundtrips-") as data_dir:
        async with service(data_dir) as url:
            accounts = await open_accounts(url, args.accounts)
            # As bench.http_mutation loads the service: deposits over 100 accounts.
            busy = await open_accounts(url, 100) if args.load > 0 else []
            await asyncio.sleep(args.settle)
            tally.active = True
            tally.take()
            started = time.monotonic()
            await asyncio.sleep(args.idle)
            idle = tally.take()
            idle_seconds = time.monotonic() - started
            started = time.monotonic()
            async with httpx.AsyncClient(timeout=10.0) as client:
                for number in range(args.deposits):
                    variables = {"input": {"accountId": accounts[number % len(accounts)],
                                           "amount": "1.00"}}  # fmt: skip
                    reply = await client.post(url, json={"query": DEPOSIT, "variables": variables})
                    if reply.json()["data"]["deposit"]["__typename"] != "AccountPayload":
                        raise RuntimeError(f"deposit failed: {reply.text}")
                    await asyncio.sleep(args.gap)
            await asyncio.sleep(args.settle)
            one_by_one = Window(time.monotonic() - started, tally.take(), args.deposits)
            loaded = await _under_load(url, busy, args, tally) if args.load > 0 else None
            tally.active = False
    return Counts(idle_seconds, idle, one_by_one, loaded)


async def _under_load(
    url: str, accounts: list[str], args: argparse.Namespace, tally: Tally
) -> Window:
    started = time.monotonic()
    result = await deposit_load(
        url, accounts, ensure_wrk(), connections=args.connections, seconds=args.load
    )
    if result.bad_responses:
        raise RuntimeError(f"{result.bad_responses} deposits failed under load")
    await asyncio.sleep(args.settle)
    return Window(time.monotonic() - started, tally.take(), result.requests)


def _by_sender(counts: Counts) -> list[tuple[str, float, float, float | None]]:
    senders: dict[str, list[float]] = {}
    for key in counts.commands():
        row = senders.setdefault(key[0], [0.0, 0.0, 0.0])
        row[0] += counts.idle_rate(key)
        row[1] += counts.per_deposit(key, counts.one_by_one)
        if counts.loaded is not None:
            row[2] += counts.per_deposit(key, counts.loaded)
    loaded = counts.loaded is not None
    return sorted(((name, rate, per, under if loaded else None)
                   for name, (rate, per, under) in senders.items()),
                  key=lambda row: (-row[2], -row[1]))  # fmt: skip


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value else "0"


async def run(args: argparse.Namespace) -> Section:
    counts = await measure(args)
    loaded = counts.loaded
    section = Section("roundtrips", "Database operations per deposit and at idle (embedded)")
    section.add(
        f"The service with its defaults (embedded nx-27017, every consumer, live feed and read "
        f"models) in this process; every command it sends counted by a PyMongo command "
        f"listener, by sending task. Idle: {counts.idle_seconds:.0f} s. One by one: "
        f"{counts.one_by_one.deposits} deposits, {args.gap} s apart, over {args.accounts} "
        f"accounts, then {args.settle} s to settle. "
        + (
            f"Under load: {loaded.deposits} deposits in {args.load:g} s from "
            f"{args.connections} connections over 100 accounts, then {args.settle} s to settle. "
            if loaded is not None
            else ""
        )
        + "Per deposit = (commands in the window - idle rate x window) / deposits. Driver "
        "monitoring (hello) is not counted."
    )
    section.add()
    rows = [
        [name, _fmt(rate), _fmt(per), _fmt(under)] for name, rate, per, under in _by_sender(counts)
    ]
    keys = counts.commands()
    total_under = f"**{sum(counts.per_deposit(k, loaded) for k in keys):.2f}**" if loaded else "-"
    rows.append([
        "**total**",
        f"**{sum(counts.idle_rate(k) for k in counts.idle):.2f}**",
        f"**{sum(counts.per_deposit(k, counts.one_by_one) for k in keys):.1f}**",
        total_under,
    ])  # fmt: skip
    headers = ["sender", "commands/s at idle", "per deposit, one by one", "per deposit, under load"]
    section.lines.extend(table(headers, rows))
    section.add()
    section.lines.extend(
        table(
            ["sender", "command", "collection", "per s at idle", "one by one", "under load"],
            [
                [
                    *key,
                    _fmt(counts.idle_rate(key)),
                    _fmt(counts.per_deposit(key, counts.one_by_one)),
                    _fmt(counts.per_deposit(key, loaded) if loaded else None),
                ]
                for key in sorted(keys)
            ],
        )
    )
    return section


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
