"""A process that handles one command and stops itself between its decision and its write.

``python -m tests.application.pausing_worker --url U --database D --account A --amount N
--command-id K`` runs a ``Withdraw`` through an ``ApplicationService`` on MongoDB. Right
before writing its outcome (the commit, or the rejection) it prints ``decided commit`` or
``decided rejection`` and sends itself SIGSTOP, as a process paused by the OS (or a long
GC pause) between deciding and writing would be. Once continued (SIGCONT) it writes, and
prints its outcome as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from pymongo import AsyncMongoClient

from application.service import ApplicationService, CommandContext
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import Withdraw
from domain.aggregate import DomainError, deciders, rejection_types
from domain.codec import build_registry
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from store.mongo_commands import MongoCommandLog
from store.mongo_events import MongoEventStore
from store.mongo_snapshots import MongoSnapshotStore
from store.protocol import (
    AppendResult,
    CommandLog,
    CommandRecord,
    CommandRejection,
    CommitMetadata,
    NewEvent,
)
from tests.application.doubles import NO_METADATA, ForwardingEventStore

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
DECIDERS = deciders(BANK)
EVENTS = build_registry(BANK)

_stops = [1]  # the process stops before its first write only


def stop_here(decision: str) -> None:
    if _stops:
        _stops.pop()
        print(f"decided {decision}", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)


class StopsBeforeAppend(ForwardingEventStore):
    """Stops this process (SIGSTOP) before each append that carries a command id."""

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata = NO_METADATA,
    ) -> AppendResult:
        if metadata.command_id is not None:
            stop_here("commit")
        return await self.inner.append(stream_id, stream_type, expected_version, events, metadata)


class StopsBeforeRecording:
    """A ``CommandLog`` that stops this process (SIGSTOP) before recording a rejection."""

    def __init__(self, inner: CommandLog) -> None:
        self.inner = inner

    async def record_rejection(self, rejection: CommandRejection) -> CommandRecord:
        stop_here("rejection")
        return await self.inner.record_rejection(rejection)

    async def find_outcome(self, command_id: str) -> CommandRecord | None:
        return await self.inner.find_outcome(command_id)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(args.url)
    try:
        database = client[args.database]
        store, snapshots = MongoEventStore(database), MongoSnapshotStore(database)
        log = MongoCommandLog(database)
        for part in (store, snapshots, log):
            await part.ensure_indexes()
        service = ApplicationService(
            StopsBeforeAppend(store),
            snapshots,
            StopsBeforeRecording(log),
            EVENTS,
            DECIDERS,
            cache_size=0,
            rejection_types=rejection_types(BANK),
        )
        command = Withdraw(args.account, args.amount)
        try:
            outcome = await service.handle(command, CommandContext(command_id=args.command_id))
        except DomainError as error:
            return {"rejected": error.code}
        return {"version": outcome.version, "duplicate": outcome.duplicate}
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--url", "--database", "--account", "--command-id"):
        parser.add_argument(name, required=True)
    parser.add_argument("--amount", type=int, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args))), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
