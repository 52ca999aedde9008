"""Fresh identifiers. Aggregates never make ids: they arrive on commands.

Every id is a short type prefix and 32 lowercase hex digits (128 random bits
from ``os.urandom``, as in a random UUID: ``acc-3f2a...``), so an id says what
it names and never collides in practice. ``random_hex`` also makes the
request and correlation ids of the API.

``derived_id`` makes the id of a new aggregate from the command id that
creates it instead: a repeat of the command then names the same aggregate, so
it is the same command (``application.service.fingerprint``) and gets the first
outcome.

``os.urandom`` is a system call; a request makes several ids, so the bytes are
read in blocks of ``_BLOCK`` ids and handed out in order. A forked child drops
the block it inherited (it would otherwise hand out its parent's ids again).
"""

from __future__ import annotations

import hashlib
import os

_ID_BYTES = 16
_BLOCK = 256
_pool: list[str] = []


def _refill() -> None:
    block = os.urandom(_ID_BYTES * _BLOCK).hex()
    width = 2 * _ID_BYTES
    _pool.extend(block[start : start + width] for start in range(0, len(block), width))


os.register_at_fork(after_in_child=_pool.clear)


def random_hex() -> str:
    """32 lowercase hex digits of fresh random bits (never handed out twice)."""
    if not _pool:
        _refill()
    return _pool.pop()


def _new(prefix: str) -> str:
    return f"{prefix}-{random_hex()}"


def new_account_id() -> str:
    """An account id: ``acc-<32 hex>``."""
    return _new("acc")


def new_transfer_id() -> str:
    """A transfer id: ``trf-<32 hex>``."""
    return _new("trf")


def new_event_id() -> str:
    """An event id: ``evt-<32 hex>``; every appended event gets a new one."""
    return _new("evt")


def derived_id(prefix: str, command_id: str) -> str:
    """``<prefix>-<32 hex>`` from a SHA-256 of ``prefix`` and ``command_id``: the same every time.

    Only for ids a command with ``command_id`` creates; distinct command ids
    give distinct ids (128 bits kept, as for random ids).
    """
    digest = hashlib.sha256(f"{prefix}\x00{command_id}".encode()).hexdigest()
    return f"{prefix}-{digest[:32]}"


def new_command_id() -> str:
    """A command id: ``cmd-<32 hex>``; a repeated command id is applied at most once."""
    return _new("cmd")
