"""Exactly-once commands: one recorded outcome per command id, and it is final.

A command id's outcome is its commit or its rejection, whichever was written
first: the ``CommandLog`` keeps rejections under the same unique key as the
event store's commits, so two copies of one command (two processes, or a
paused instance and its successor) cannot record both. The loser of that race
gets the winner's outcome, as does every later repeat.

Each outcome carries the command's fingerprint (``application.fingerprint``).
A repeat whose fingerprint differs is another command sent under a used id:
it gets ``IdempotencyKeyReused``, never the other command's outcome. Outcomes
recorded before fingerprints existed have none and are returned as they are.
"""

from __future__ import annotations

import asyncio

from application.errors import IdempotencyKeyReused
from application.fingerprint import command_type
from application.outcomes import CommandOutcome
from application.rejections import RejectionCodes
from domain.aggregate import DomainError
from store.protocol import AppendResult, CommandLog, CommandRecord, CommandRejection


class CommandDeduplicator:
    """Finds and records command outcomes by command id."""

    def __init__(self, command_log: CommandLog, codes: RejectionCodes) -> None:
        self._log = command_log
        self._codes = codes

    async def previous_outcome(self, command_id: str, fingerprint: str) -> CommandOutcome | None:
        """The outcome recorded for ``command_id`` (one lookup), or None if it has none.

        A commit is returned as a duplicate; a rejection is raised again.
        """
        record = await self._log.find_outcome(command_id)
        return None if record is None else self.answer(record, command_id, fingerprint)

    async def twin_outcome(self, command_id: str, fingerprint: str) -> CommandOutcome:
        """The outcome another copy of this command id recorded before our append."""
        for _ in range(3):
            record = await self._log.find_outcome(command_id)
            if record is not None:
                return self.answer(record, command_id, fingerprint)
            await asyncio.sleep(0.01)
        raise RuntimeError(f"command {command_id!r} was refused as recorded, but has no outcome")

    async def settle_rejection(
        self, command_id: str, stream_id: str, fingerprint: str, error: DomainError
    ) -> CommandOutcome:
        """Record ``error`` as the command's outcome unless the id already has one.

        One insert decides: either ours is the outcome (``error`` is raised), or
        a copy of the command recorded its commit or rejection first, and that
        is the answer, as it is for every later repeat.
        """
        record = self._codes.to_record(command_id, stream_id, error, fingerprint)
        stored = await self._log.record_rejection(record)
        if stored is record:
            raise error
        return self.answer(stored, command_id, fingerprint)

    def answer(self, record: CommandRecord, command_id: str, fingerprint: str) -> CommandOutcome:
        """``record`` as the answer to a command with ``fingerprint``.

        Raises ``IdempotencyKeyReused`` when ``record`` belongs to another
        command, and the stored rejection when it is one.
        """
        if isinstance(record, CommandRejection):
            _check_same(record.fingerprint, command_id, fingerprint)
            raise self._codes.rebuild(record)
        _check_same(record.events[0].metadata.fingerprint, command_id, fingerprint)
        return duplicate(record)


def _check_same(stored: str | None, command_id: str, fingerprint: str) -> None:
    if stored is not None and stored != fingerprint:
        raise IdempotencyKeyReused(command_id, command_type(stored))


def duplicate(commit: AppendResult) -> CommandOutcome:
    """A stored commit as the outcome of a repeated command."""
    return CommandOutcome(commit.stream_id, commit.version, commit.events, duplicate=True)
