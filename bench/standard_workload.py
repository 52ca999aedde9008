"""Standard bank workload: ours vs the eventsourcing library and vs raw insert_one.

(a) in-memory store vs eventsourcing's POPO recorder (target >= 1.5x commands/s);
(b) embedded MongoDB (nx-27017) vs raw ``insert_one`` of one small document per
command on the same server (target >= 0.6x), and vs eventsourcing on SQLite.
Contenders alternate within one run; each run of ours uses fresh stores.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bench import cli
from bench.es_baseline import popo_run, sqlite_run
from bench.harness import (
    COMPARISON_HEADER,
    Metrics,
    alternate,
    compare,
    comparison_row,
    sync_contender,
)
from bench.mongo import embedded_server, raw_commit_insert_run, raw_insert_run
from bench.report import Section, table
from bench.workload import memory_backend, run_workload

OURS_MEM = "ours, in-memory"
ES_POPO = "eventsourcing, POPO"
OURS_MONGO = "ours, embedded Mongo"
RAW_INSERT = "raw insert_one"
RAW_COMMITS = "raw insert_one, our commit docs + indexes"
ES_SQLITE = "eventsourcing, SQLite"


QUICK = ["--accounts", "5", "--rounds", "2", "--runs", "1"]
"""Toy sizes for the smoke test (``run_all --quick``)."""


def build_parser() -> argparse.ArgumentParser:
    result = cli.parser(__doc__, runs=5)
    result.add_argument("--accounts", type=int, default=200, help="N accounts")
    result.add_argument("--rounds", type=int, default=10, help="D deposit rounds")
    result.add_argument("--skip-mongo", action="store_true", help="only part (a), in memory")
    return result


async def in_memory(args: argparse.Namespace) -> list[list[str]]:
    async def ours() -> Metrics:
        return await run_workload(await memory_backend(), args.accounts, args.rounds)

    results = await alternate(
        {OURS_MEM: ours, ES_POPO: sync_contender(lambda: popo_run(args.accounts, args.rounds))},
        args.runs,
    )
    return [
        comparison_row("commands/s", compare(results, OURS_MEM, ES_POPO, "commands/s"), "", 1.5),
        comparison_row(
            "rehydrations/s", compare(results, OURS_MEM, ES_POPO, "rehydrations/s"), "", None
        ),
    ]


async def embedded(args: argparse.Namespace) -> list[list[str]]:
    from bench.mongo_backend import mongo_workload_run  # the store's Mongo code, lazily

    with embedded_server() as server:
        results = await alternate(
            {
                OURS_MONGO: lambda: mongo_workload_run(server.url, args.accounts, args.rounds),
                RAW_INSERT: lambda: raw_insert_run(server.url, args.accounts, args.rounds),
                RAW_COMMITS: lambda: raw_commit_insert_run(server.url, args.accounts, args.rounds),
                ES_SQLITE: sync_contender(lambda: sqlite_run(args.accounts, args.rounds)),
            },
            args.runs,
        )
    return [
        comparison_row(
            "commands/s", compare(results, OURS_MONGO, RAW_INSERT, "commands/s"), "", 0.6
        ),
        comparison_row(
            "commands/s (diagnostic)",
            compare(results, OURS_MONGO, RAW_COMMITS, "commands/s"),
            "",
            None,
        ),
        comparison_row(
            "commands/s (diagnostic)",
            compare(results, RAW_COMMITS, RAW_INSERT, "commands/s"),
            "",
            None,
        ),
        comparison_row(
            "commands/s", compare(results, OURS_MONGO, ES_SQLITE, "commands/s"), "", None
        ),
        comparison_row(
            "rehydrations/s", compare(results, OURS_MONGO, ES_SQLITE, "rehydrations/s"), "", None
        ),
    ]


async def run(args: argparse.Namespace) -> Section:
    section = Section("standard_workload", "Standard bank workload")
    section.add(
        f"N = {args.accounts} accounts, D = {args.rounds} rounds of one 1.00 deposit each "
        f"({args.accounts * (args.rounds + 1)} commands per run, each load -> decide -> append "
        f"through the ApplicationService, no command ids), then every account rehydrated "
        f"through a fresh service (empty cache) and its balance checked. "
        f"{args.runs} alternated runs per contender; ratio = median of per-run ratios."
    )
    section.add()
    rows = await in_memory(args)
    if not args.skip_mongo:
        rows += await embedded(args)
    section.lines += table(COMPARISON_HEADER, rows)
    section.add()
    section.lines += NOTES
    return section


NOTES = [
    "Notes:",
    "- eventsourcing runs as configured out of the box (no aggregate cache, no snapshots);"
    " ours keeps its default aggregate cache (1,024 entries), so a deposit needs no stream"
    " read: that difference is part of what is measured.",
    "- eventsourcing is synchronous; it runs on the same thread as the event loop.",
    "- The embedded-Mongo run appends only: no sequencer or projector runs meanwhile"
    " (positions are measured in the projection benchmark). The raw baseline inserts one"
    " ~150-byte document per command into a collection with only the `_id` index.",
    "- Diagnostic rows: `raw insert_one, our commit docs + indexes` inserts the store's own"
    " commit documents (built by `store.mongo_commits.commit_document`) into a collection"
    " with the store's five indexes, without the service or the store's code around it:"
    " it splits the gap to the floor into storage-engine cost (shape, indexes) and our code.",
]


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
