"""Who sends a command and under which conditions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandContext:
    """What travels with a command besides its own fields.

    - ``command_id``: makes the command idempotent. A repeated id returns the
      first outcome (the same events, or the same rejection) and never a second
      effect. ``None`` means "no deduplication".
    - ``correlation_id`` / ``causation_id`` / ``actor``: stored as the commit's
      metadata, unchanged.
    - ``expected_version``: the stream version the client last saw. A mismatch
      raises ``ConcurrencyConflict`` and is never retried automatically.
    """

    command_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    expected_version: int | None = None
