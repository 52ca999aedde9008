"""Exactly-once commands: the first recorded outcome of a command id is final.

A command id's outcome is either its commit (found through the event store's
unique command-id index) or its rejection (in the ``CommandLog``). Both are
looked up before a command runs, and again when a concurrent copy of the same
command got there first.
"""

from __future__ import annotations

import asyncio

from application.outcomes import CommandOutcome
from application.rejections import RejectionCodes
from domain.aggregate import DomainError
from store.protocol import AppendResult, CommandLog, EventStore


class CommandDeduplicator:
    """Finds and records command outcomes by command id."""

    def __init__(self, store: EventStore, command_log: CommandLog, codes: RejectionCodes) -> None:
        self._store = store
        self._log = command_log
        self._codes = codes

    async def previous_outcome(self, command_id: str) -> CommandOutcome | None:
        """The recorded outcome of ``command_id``: its commit, or raise its rejection.

        Both are looked up at once (one round trip of latency, not two); a
        commit wins over a rejection (see ``settle_rejection``).
        """
        commit, rejection = await asyncio.gather(
            self._store.find_command(command_id), self._log.find_rejection(command_id)
        )
        if commit is not None:
            return duplicate(commit)
        if rejection is not None:
            raise self._codes.rebuild(rejection)
        return None

    async def twin_outcome(self, command_id: str) -> CommandOutcome:
        """The outcome of the commit a concurrent copy of this command wrote."""
        for _ in range(3):
            commit = await self._store.find_command(command_id)
            if commit is not None:
                return duplicate(commit)
            await asyncio.sleep(0.01)
        raise RuntimeError(f"command {command_id!r} reported as applied but its commit is missing")

    async def settle_rejection(
        self, command_id: str, stream_id: str, error: DomainError
    ) -> CommandOutcome:
        """Record ``error`` as the command's outcome, unless a twin committed first.

        A concurrent copy of the command may have committed between our dedupe
        check and our decision (we then decided against a state that already
        holds its effect): its commit is the outcome, as it is for every later
        repeat. Otherwise the first recorded rejection is raised, ours or a
        twin's.
        """
        commit = await self._store.find_command(command_id)
        if commit is not None:
            return duplicate(commit)
        record = self._codes.to_record(command_id, stream_id, error)
        stored = await self._log.record_rejection(record)
        commit = await self._store.find_command(command_id)
        if commit is not None:  # a twin committed while we recorded: the commit wins
            return duplicate(commit)
        if (stored.code, stored.message, dict(stored.details)) == (
            error.code,
            error.message,
            error.details,
        ):
            raise error
        raise self._codes.rebuild(stored)


def duplicate(commit: AppendResult) -> CommandOutcome:
    """A stored commit as the outcome of a repeated command."""
    return CommandOutcome(commit.stream_id, commit.version, commit.events, duplicate=True)
