"""Rehydrate a 10,000-event account vs a 10-event account, snapshots on (target <= 3x).

Both accounts are built through the ApplicationService (snapshot every 100
events, written in the background and drained). Loads go through a service
with the aggregate cache disabled, so each one reads the latest snapshot plus
the newer events from the store. For context, the long account is also loaded
with an empty snapshot store (a full replay). In memory and on embedded Mongo.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Sequence
from functools import partial

from application.ids import new_account_id
from application.service import ApplicationService
from bench import cli
from bench.harness import COMPARISON_HEADER, Metrics, Stopwatch, alternate, compare, comparison_row
from bench.report import Section, table
from bench.workload import DEPOSIT_MINOR, Backend, memory_backend, service_on
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import Deposit, OpenAccount
from domain.aggregate import deciders, rejection_types
from domain.codec import build_registry
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from runtime.settings import Settings
from store.memory import InMemorySnapshotStore

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
DECIDERS = deciders(BANK)
EVENTS = build_registry(BANK)

QUICK = ["--long", "120", "--short", "5", "--loads", "2", "--runs", "1"]
"""Toy sizes for the smoke test (``run_all --quick``)."""


# The server's default (SNAPSHOT_EVERY): the worst case is one event short of it.
SNAPSHOT_EVERY: int = Settings.model_fields["snapshot_every"].default
REPLAY = "no snapshots (full replay)"


def build_parser() -> argparse.ArgumentParser:
    result = cli.parser(__doc__, runs=7)
    result.add_argument("--long", type=int, default=10_000, help="events in the long stream")
    result.add_argument("--short", type=int, default=10, help="events in the short stream")
    result.add_argument("--loads", type=int, default=50, help="loads of each stream per run")
    result.add_argument("--skip-mongo", action="store_true", help="in-memory store only")
    result.add_argument(
        "--snapshot-every", type=int, default=SNAPSHOT_EVERY,
        help="snapshot interval (default: the server's SNAPSHOT_EVERY default)",
    )  # fmt: skip
    return result


async def build_account(service: ApplicationService, events: int) -> str:
    """An account with exactly ``events`` events: opened, then ``events - 1`` deposits."""
    account_id = new_account_id()
    await service.handle(OpenAccount(account_id, "bench", "EUR"))
    for _ in range(events - 1):
        await service.handle(Deposit(account_id, DEPOSIT_MINOR))
    return account_id


def uncached_reader(
    backend: Backend, *, snapshot_every: int = SNAPSHOT_EVERY
) -> ApplicationService:
    """A service with the aggregate cache off.

    With ``snapshot_every=0`` it never writes snapshots: by default a load that
    replays >= 100 events schedules one, which would turn the full-replay
    contender into a snapshot load after its first call.
    """
    return ApplicationService(
        backend.store,
        backend.snapshots,
        backend.command_log,
        EVENTS,
        DECIDERS,
        cache_size=0,
        snapshot_every=snapshot_every,
        rejection_types=rejection_types(BANK),
    )


async def time_loads(
    reader: ApplicationService, account_id: str, loads: int, events: int
) -> Metrics:
    with Stopwatch() as watch:
        for _ in range(loads):
            loaded = await reader.load("account", account_id)
    if loaded.version != events or loaded.state.balance != (events - 1) * DEPOSIT_MINOR:
        raise AssertionError(f"{account_id}: version {loaded.version}")
    return {"ms/load": watch.seconds * 1000 / loads}


async def measure(backend: Backend, label: str, args: argparse.Namespace) -> list[list[str]]:
    """Alternate loads of the long, worst-case and short accounts (and a full replay)."""
    every = args.snapshot_every
    worst_events = args.long + every - 1  # the most events replayed after a snapshot
    writer = service_on(backend, snapshot_every=every)
    ids = {n: await build_account(writer, n) for n in (args.long, worst_events, args.short)}
    await writer.close()
    snapshot = await backend.snapshots.latest(ids[args.long])
    reader = uncached_reader(backend, snapshot_every=every)
    no_snapshots = Backend(backend.store, InMemorySnapshotStore(), backend.command_log)
    replayer = uncached_reader(no_snapshots, snapshot_every=0)
    names = {n: f"{n:,} events" for n in ids}
    contenders = {names[n]: partial(time_loads, reader, ids[n], args.loads, n) for n in ids}
    contenders[REPLAY] = partial(
        time_loads, replayer, ids[args.long], max(1, args.loads // 25), args.long
    )
    results = await alternate(contenders, args.runs)
    at = "none" if snapshot is None else f"v{snapshot.version}"
    long, worst, short = names[args.long], names[worst_events], names[args.short]
    return [
        comparison_row(
            f"{label}: ms per load (snapshot at {at})",
            compare(results, long, short, "ms/load"),
            " ms",
            3.0,
            higher=False,
        ),
        comparison_row(
            f"{label}: worst case, {every - 1} events after the snapshot",
            compare(results, worst, short, "ms/load"),
            " ms",
            3.0,
            higher=False,
        ),
        comparison_row(
            f"{label}: full replay vs snapshot (context)",
            compare(results, REPLAY, long, "ms/load"),
            " ms",
            None,
        ),
    ]


@contextlib.asynccontextmanager
async def embedded_backend() -> AsyncIterator[Backend]:
    from bench.mongo import embedded_server, fresh_database
    from bench.mongo_backend import mongo_backend

    with embedded_server() as server:
        async with fresh_database(server.url) as db:
            yield await mongo_backend(db)


async def run(args: argparse.Namespace) -> Section:
    section = Section("rehydrate", "Rehydrating a long stream (snapshots on)")
    section.add(
        f"One account of {args.long:,} events (its latest snapshot at its last event), one of "
        f"{args.long + args.snapshot_every - 1:,} (the worst case: {args.snapshot_every - 1} "
        "events to "
        f"replay after the snapshot) and one of {args.short}; {args.loads} loads of each per "
        f"run, {args.runs} alternated runs; aggregate cache off, snapshot every "
        f"{args.snapshot_every} events (the server's default)."
    )
    section.add()
    rows = await measure(await memory_backend(), "in-memory", args)
    if not args.skip_mongo:
        async with embedded_backend() as backend:
            rows += await measure(backend, "embedded Mongo", args)
    section.lines += table(COMPARISON_HEADER, rows)
    return section


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
