"""Event (de)serialisation and upcasting: pure functions over plain values.

Events are frozen dataclasses whose fields are ``str``, ``int``, ``bool`` or
``None`` (or tuples of those). The registry maps each class to a stable type
name and its current schema version. Stored data in an older schema version is
upgraded on read by upcasters, one step at a time (v1 -> v2 -> ...); stored
events are never rewritten.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


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
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        # Field names per class, looked up once: ``dataclasses.fields`` rebuilds
        # its tuple on every call, and every append encodes.
        self._fields: dict[type[Any], tuple[str, ...]] = {}

    def register(self, cls: type[Any], *, name: str | None = None, version: int = 1) -> None:
        type_name = name or cls.__name__
        if type_name in self._by_name and self._by_name[type_name] is not cls:
            raise ValueError(f"event type {type_name!r} registered twice")
        self._by_name[type_name] = cls
        self._names[cls] = type_name
        self._versions[type_name] = version

    def register_upcaster(self, type_name: str, from_version: int, upcaster: Upcaster) -> None:
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
        return cls(**{k: _from_plain(v) for k, v in upgraded.items() if k in names})

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
