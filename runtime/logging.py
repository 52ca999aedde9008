"""Log set-up: JSON lines in production, readable text in development, never a secret.

Every record carries the request id and, while a command runs, its command id
and correlation id. They live in context variables, so they follow the asyncio
task that handles the request without being passed around: ``bind(...)`` sets
them for a block. ``RedactingFilter`` sits on every handler and blanks bearer
tokens, JWTs, passwords in URLs and ``secret=``/``token=`` pairs, whatever
logger produced the line (ours, uvicorn's, pymongo's).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Literal

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
command_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "command_id", default=None
)
correlation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)
_CONTEXT = {
    "request_id": request_id_var,
    "command_id": command_id_var,
    "correlation_id": correlation_id_var,
}

REDACTED = "[REDACTED]"
# Order matters: the Authorization header first, so its whole value goes.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)[^\"',}\s]+(\s+[^\"',}\s]+)?"),
     rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\1{REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(://[^:/@\s]+):[^@/\s]+@"), rf"\1:{REDACTED}@"),
    (re.compile(
        r"(?i)\b((?:jwt_?secret|secret|password|passwd|token|api_?key|access_token)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\"'&,}\s]+"
    ), rf"\1{REDACTED}"),
)  # fmt: skip


def redact(text: str) -> str:
    """``text`` with every token, secret and URL password replaced by [REDACTED]."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class _Binding:
    """Sets context variables on entry and restores them on exit.

    A class rather than ``@contextlib.contextmanager``: it is entered on every
    request and command, and a generator-based context manager costs several
    times as much to create, enter and leave.
    """

    __slots__ = ("_tokens", "_values")

    def __init__(self, values: dict[str, str | None]) -> None:
        self._values = values
        self._tokens: list[tuple[contextvars.ContextVar[str | None], contextvars.Token[str | None]]]

    def __enter__(self) -> None:
        self._tokens = [(_CONTEXT[name], _CONTEXT[name].set(v)) for name, v in self._values.items()]

    def __exit__(self, *exc_info: object) -> None:
        for var, token in reversed(self._tokens):
            var.reset(token)


def bind(**values: str | None) -> AbstractContextManager[None]:
    """Set request_id / command_id / correlation_id for the enclosed block."""
    return _Binding(values)


class ContextFilter(logging.Filter):
    """Copy the context variables onto each record (None where unset)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT.items():
            setattr(record, name, var.get())
        return True


class RedactingFilter(logging.Filter):
    """Render the message, redact it, and freeze it (args cleared) before formatting.

    Exception text is rendered and redacted too, since tracebacks may quote
    connection strings or headers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """``12:00:01.123 INFO  server [req=... cmd=... corr=...] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s%(ctx)s %(message)s",
                         datefmt="%H:%M:%S")  # fmt: skip

    def format(self, record: logging.LogRecord) -> str:
        ids = [
            f"{short}={getattr(record, name)}"
            for name, short in (("request_id", "req"), ("command_id", "cmd"),
                                ("correlation_id", "corr"))
            if getattr(record, name, None) is not None
        ]  # fmt: skip
        record.ctx = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


def configure_logging(
    level: str = "INFO", fmt: Literal["json", "text"] = "text", stream: Any = None
) -> logging.Handler:
    """Route every logger (including uvicorn's) through one redacting handler on stderr.

    Idempotent: a second call replaces the handler installed by the first.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("ledger")
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "ledger"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # The driver is chatty at DEBUG and adds nothing an operator needs at INFO.
    logging.getLogger("pymongo").setLevel(max(logging.getLevelName(level), logging.INFO))
    return handler
