"""Who sends a command and under which conditions."""

from __future__ import annotations

import re
from dataclasses import dataclass

TRACEPARENT_LENGTH = 55
"""The length of a W3C ``traceparent`` value (version, trace id, parent id, flags)."""

_TRACEPARENT = re.compile(
    r"^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$"
)


def valid_traceparent(value: str | None) -> str | None:
    """``value`` if it is a well-formed W3C ``traceparent``, else None (never an error).

    Lower-case hex only, version ``ff`` and all-zero ids refused, as the W3C
    Trace Context recommendation says; the length is checked before the pattern.
    """
    if value is None or len(value) != TRACEPARENT_LENGTH or not _TRACEPARENT.match(value):
        return None
    return value


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id of a well-formed ``traceparent``; None otherwise."""
    valid = valid_traceparent(traceparent)
    return None if valid is None else valid[3:35]


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
    - ``traceparent``: the W3C trace context the command continues (the
      request's, or the triggering event's for a process manager's command),
      stored in the commit metadata so that consumers in any process continue
      the trace. Only well-formed values (``valid_traceparent``) belong here.
    """

    command_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    expected_version: int | None = None
    traceparent: str | None = None
