"""Storing and re-raising rejections, so a repeated command id is rejected the same way.

A rejection is stored as plain values (``code``, ``message``, ``details``) and
rebuilt into the same ``DomainError`` subclass by its ``code``. The code ->
class map is explicit: the wiring passes the error classes it knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from application.errors import ConcurrencyConflict, IdempotencyKeyReused, StreamTypeMismatch
from domain.aggregate import DomainError
from store.protocol import CommandRejection

# Attributes of every DomainError that a detail must never overwrite.
_RESERVED = frozenset({"message", "details", "code", "args"})


class RejectionCodes:
    """Maps a rejection ``code`` to its ``DomainError`` subclass.

    The service's own errors (``ConcurrencyConflict``, ``StreamTypeMismatch``,
    ``IdempotencyKeyReused``) are always known.
    """

    def __init__(self, classes: Iterable[type[DomainError]] = ()) -> None:
        by_code: dict[str, type[DomainError]] = {DomainError.code: DomainError}
        all_classes: list[type[DomainError]] = [
            ConcurrencyConflict, StreamTypeMismatch, IdempotencyKeyReused, *classes,
        ]  # fmt: skip
        for cls in all_classes:
            known = by_code.get(cls.code)
            if known is not None and known is not cls and cls.code != DomainError.code:
                raise ValueError(f"rejection code {cls.code!r} used by {known} and {cls}")
            by_code[cls.code] = cls
        self._by_code: Mapping[str, type[DomainError]] = MappingProxyType(by_code)

    @property
    def by_code(self) -> Mapping[str, type[DomainError]]:
        return self._by_code

    def to_record(
        self, command_id: str, stream_id: str, error: DomainError, fingerprint: str | None = None
    ) -> CommandRejection:
        """``error`` as plain values for the ``CommandLog``."""
        return CommandRejection(
            command_id=command_id,
            stream_id=stream_id,
            code=error.code,
            message=error.message,
            details=dict(error.details),
            fingerprint=fingerprint,
        )

    def rebuild(self, rejection: CommandRejection) -> DomainError:
        """The stored rejection as an instance of its original class.

        An unknown code (an error class the wiring did not pass) becomes a
        plain ``DomainError`` carrying the same code, message and details.
        """
        cls = self._by_code.get(rejection.code)
        if cls is None:
            error = DomainError(rejection.message, **rejection.details)
            error.code = rejection.code
            return error
        return _instantiate(cls, rejection.message, dict(rejection.details))


def _instantiate(cls: type[DomainError], message: str, details: dict[str, Any]) -> DomainError:
    """Build ``cls`` from stored values, whatever its constructor's signature.

    The domain's convention (constructor keywords = detail keys plus
    ``message``) is tried first, then the base ``DomainError(message,
    **details)`` form; a class with yet another signature is built bare and
    given its details as attributes.
    """
    error = _construct(cls, message, details)
    if error is None:
        error = cls.__new__(cls)
        DomainError.__init__(error, message, **details)
        for key, value in details.items():
            if key not in _RESERVED:
                setattr(error, key, value)
    # The constructor may phrase its own message; the stored one is what the client saw.
    error.message = message
    error.details = details
    error.args = (message,)
    return error


def _construct(cls: type[DomainError], message: str, details: dict[str, Any]) -> DomainError | None:
    """``cls`` built through its constructor, or None if neither form fits it."""
    try:
        return cls(message=message, **details)
    except TypeError:
        pass
    try:
        return cls(message, **details)
    except TypeError:
        return None
