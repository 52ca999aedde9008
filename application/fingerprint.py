"""What a command id was first used for: a fingerprint of the command.

``fingerprint(command, stream_id)`` is ``"<CommandType>:<digest>"``, the digest
a SHA-256 (128 bits kept) of the command's type name, its target stream (from
its decider) and its fields as canonical JSON. It is computed from any command
dataclass alike, so a command added later needs nothing here. It is stored
with the command id's outcome (commit metadata or rejection) and compared on
every repeat: a repeat is answered with the first outcome only if it is the
same command.

The type's plain name (not its module) is hashed, so moving a class to
another module does not change its commands' fingerprints; command class
names are unique within one application (``DECIDERS`` maps them).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_SEPARATOR = ":"


def fingerprint(command: Any, stream_id: str) -> str:
    """The fingerprint of ``command`` sent to ``stream_id``.

    Raises ``TypeError`` for a field value with no canonical form (anything
    but plain values, enums, decimals, and dataclasses, mappings and
    sequences of them).
    """
    kind = type(command).__name__
    canonical = json.dumps(
        [kind, stream_id, _plain(command)],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]
    return f"{kind}{_SEPARATOR}{digest}"


def command_type(print_: str) -> str:
    """The command type name a fingerprint was made from."""
    return print_.partition(_SEPARATOR)[0]


def _plain(value: Any) -> Any:
    """``value`` as JSON values; distinct values of different types stay distinct."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return {"enum": type(value).__name__, "value": _plain(value.value)}
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "type": type(value).__name__,
            "fields": {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("command mappings need string keys to be fingerprinted")
        return {"map": {key: _plain(item) for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return {"set": sorted(json.dumps(_plain(item), sort_keys=True) for item in value)}
    raise TypeError(f"cannot fingerprint a {type(value).__name__} field value")
