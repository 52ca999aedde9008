"""Event (de)serialisation and upcasting: pure functions over plain values.

Events are frozen dataclasses whose fields are ``str``, ``int``, ``bool`` or
``None`` (or tuples of those). The registry maps each class to a stable type
name and its current schema version. Stored data in an older schema version is
upgraded on read by upcasters, one step at a time (v1 -> v2 -> ...); stored
events are never rewritten.

Wide integers: a field registered as *wide* holds an int with no upper bound
(an account balance that a refund took past its maximum, a total). Storage
integers are signed 64-bit (BSON int64), so a wide field is stored by
``storable_int``: the int itself while it fits, its exact decimal digit string
beyond. Every value that fits keeps the shape stored before wide fields
existed, so no upcaster is needed; ``stored_int`` reads both.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from domain.aggregate import Domain

UpcastStep = Callable[[dict[str, Any]], dict[str, Any]]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_DIGITS = re.compile(r"-?[0-9]{1,400}", re.ASCII)


def storable_int(value: int) -> int | str:
    """``value`` as storage holds it: the int inside the signed 64-bit range, else its digits.

    Exact either way: ``stored_int(storable_int(n)) == n`` for every int ``n``.
    """
    if INT64_MIN <= value <= INT64_MAX:
        return value
    return str(value)


def stored_int(value: object) -> int:
    """The int that ``storable_int`` stored: an int, or a string of decimal digits.

    Raises ``ValueError`` for anything else (a bool, a float, a malformed string).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value) is not None:
        return int(value)
    raise ValueError(f"not a stored integer: {value!r:.60}")


class UnknownEventType(LookupError):
    """A stored event names a type no module registered."""


@dataclasses.dataclass(frozen=True)
class EncodedEvent:
    """An event as stored: type name, schema version and JSON-like data."""

    type: str
    schema_version: int
    data: dict[str, Any]


class EventRegistry:
    """Two-way mapping between event classes and stored shapes.

    ``encode`` always writes the current schema version; ``decode`` accepts any
    version from 1 up to the current one, applying registered upcasters.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, type[Any]] = {}
        self._names: dict[type[Any], str] = {}
        self._versions: dict[str, int] = {}
        self._upcasters: dict[tuple[str, int], UpcastStep] = {}
        self._wide: dict[type[Any], frozenset[str]] = {}
        # Field names per class, looked up once: ``dataclasses.fields`` rebuilds
        # its tuple on every call.
        self._fields: dict[type[Any], tuple[str, ...]] = {}

    def register(
        self,
        cls: type[Any],
        *,
        name: str | None = None,
        version: int = 1,
        wide: Iterable[str] = (),
    ) -> None:
        """Register ``cls``; ``wide`` names its unbounded int fields (see the module docstring)."""
        type_name = name or cls.__name__
        if type_name in self._by_name and self._by_name[type_name] is not cls:
            raise ValueError(f"event type {type_name!r} registered twice")
        wide_fields = frozenset(wide)
        unknown = wide_fields - set(self._field_names(cls)) if wide_fields else set()
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
        self._by_name[type_name] = cls
        self._names[cls] = type_name
        self._versions[type_name] = version
        if wide_fields:
            self._wide[cls] = wide_fields

    def register_upcaster(self, type_name: str, from_version: int, upcaster: UpcastStep) -> None:
        """Register the step that turns ``from_version`` data into ``from_version + 1``."""
        self._upcasters[(type_name, from_version)] = upcaster

    def type_name(self, cls: type[Any]) -> str:
        return self._names[cls]

    def knows(self, type_name: str) -> bool:
        return type_name in self._by_name

    def current_version(self, type_name: str) -> int:
        return self._versions[type_name]

    def encode(self, event: Any) -> EncodedEvent:
        cls = type(event)
        type_name = self._names[cls]
        data = {name: _plain(getattr(event, name)) for name in self._field_names(cls)}
        wide = self._wide.get(cls)
        if wide is not None:
            for name in wide:
                data[name] = storable_int(data[name])
        return EncodedEvent(type_name, self._versions[type_name], data)

    def upcast(
        self, type_name: str, schema_version: int, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Return ``data`` upgraded to the current schema version of ``type_name``."""
        if type_name not in self._by_name:
            raise UnknownEventType(type_name)
        current = dict(data)
        for version in range(schema_version, self._versions[type_name]):
            current = self._upcasters[(type_name, version)](current)
        return current

    def decode(self, type_name: str, schema_version: int, data: Mapping[str, Any]) -> Any:
        cls = self._by_name.get(type_name)
        if cls is None:
            raise UnknownEventType(type_name)
        upgraded = self.upcast(type_name, schema_version, data)
        names = self._field_names(cls)
        values = {k: _from_plain(v) for k, v in upgraded.items() if k in names}
        for name in self._wide.get(cls, ()):
            if name in values:
                values[name] = stored_int(values[name])
        return cls(**values)

    def _field_names(self, cls: type[Any]) -> tuple[str, ...]:
        """The dataclass fields of ``cls``, in order (``TypeError`` if not a dataclass)."""
        names = self._fields.get(cls)
        if names is None:
            names = self._fields[cls] = tuple(f.name for f in dataclasses.fields(cls))
        return names


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _from_plain(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_plain(v) for v in value)
    return value


def build_registry(domains: Iterable[Domain]) -> EventRegistry:
    """A fresh registry with every event and upcaster of ``domains`` registered."""
    registry = EventRegistry()
    for domain in domains:
        for cls in domain.events:
            registry.register(
                cls,
                version=domain.schema_versions.get(cls, 1),
                wide=domain.wide_fields.get(cls, ()),
            )
        for upcaster in domain.upcasters:
            registry.register_upcaster(upcaster.event, upcaster.from_version, upcaster.step)
    return registry
