"""Rejections raised by the Application Service itself (not by an aggregate)."""

from __future__ import annotations

from domain.aggregate import DomainError


class ConcurrencyConflict(DomainError):
    """The stream was not at the version the command was decided against.

    Raised when a client-supplied expected version does not match (never
    retried), or when internal retries are exhausted. ``actual_version`` is the
    stream's version as last seen, so the client can reload and decide again.
    Not recorded as a command's final outcome: a repeat may succeed.
    """

    code = "concurrency_conflict"

    def __init__(
        self,
        stream_id: str,
        expected_version: int,
        actual_version: int,
        message: str | None = None,
    ) -> None:
        super().__init__(
            message
            or f"stream {stream_id!r} is at version {actual_version}, not {expected_version}",
            stream_id=stream_id,
            expected_version=expected_version,
            actual_version=actual_version,
        )
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class StreamTypeMismatch(DomainError):
    """The stream id names an aggregate of another kind (a transfer id used as an account)."""

    code = "stream_type_mismatch"

    def __init__(
        self, stream_id: str, expected_type: str, actual_type: str, message: str | None = None
    ) -> None:
        super().__init__(
            message or f"stream {stream_id!r} is a {actual_type}, not a {expected_type}",
            stream_id=stream_id,
            expected_type=expected_type,
            actual_type=actual_type,
        )
        self.stream_id = stream_id
        self.expected_type = expected_type
        self.actual_type = actual_type


class IdempotencyKeyReused(DomainError):
    """The command id was first used for a different command.

    Raised instead of answering with that other command's outcome: another
    type, stream or field value (amount, account, transfer...) than the first
    use, whether that was committed or rejected. ``original_command_type``
    names the first command's type. Not recorded: the first outcome stays the
    id's outcome.
    """

    code = "idempotency_key_reused"

    def __init__(
        self, command_id: str, original_command_type: str, message: str | None = None
    ) -> None:
        super().__init__(
            message
            or f"the command id was first used for another command ({original_command_type})",
            command_id=command_id,
            original_command_type=original_command_type,
        )
        self.command_id = command_id
        self.original_command_type = original_command_type
