"""Logs carry context ids, come as JSON or text, and never show a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.logging import REDACTED, bind, configure_logging, redact
from tests.runtime.processes import running_server

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    stream = io.StringIO()
    handler = configure_logging("DEBUG", "json", stream)
    try:
        yield stream, logging.getLogger("test.logging")
    finally:
        logging.getLogger().removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Bearer {JWT}", JWT),
        ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("{'Authorization': 'Bearer abc.def'}", "abc.def"),
        (f"token {JWT} in a sentence", JWT),
        ("GET /graphql?token=tok-123&x=1", "tok-123"),
        ("JWT_SECRET=0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
        ("{'password': 'hunter2'}", "hunter2"),
        ("mongodb://app:hunter2@db:27017/ledger", "hunter2"),
        ('{"token": "opaque-value"}', "opaque-value"),
    ],
)
def test_redact_removes_credentials(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "deposit 12.30 into acc-0123 at position 17"
    assert redact(text) == text


def test_json_lines_carry_context_ids(captured: tuple[io.StringIO, logging.Logger]) -> None:
    stream, log = captured
    with bind(request_id="req-1"):
        log.info("outer")
        with bind(command_id="cmd-1", correlation_id="corr-1"):
            log.info("inner")
    log.info("outside")
    outer, inner, outside = _lines(stream)
    assert outer["request_id"] == "req-1"
    assert "command_id" not in outer
    assert (inner["request_id"], inner["command_id"], inner["correlation_id"]) == (
        "req-1",
        "cmd-1",
        "corr-1",
    )
    assert "request_id" not in outside
    assert {"time", "level", "logger", "message"} <= set(outer)


def test_secrets_in_arguments_and_tracebacks_are_redacted(
    captured: tuple[io.StringIO, logging.Logger],
) -> None:
    stream, log = captured
    log.warning("headers %s", {"authorization": f"Bearer {JWT}"})
    try:
        raise RuntimeError("could not connect to mongodb://app:hunter2@db/")
    except RuntimeError:
        log.exception("failed")
    output = stream.getvalue()
    assert JWT not in output
    assert "hunter2" not in output
    assert _lines(stream)[1]["exception"]


def test_other_libraries_loggers_are_redacted_too(
    captured: tuple[io.StringIO, logging.Logger],
) -> None:
    stream, _ = captured
    logging.getLogger("uvicorn.access").info('"GET /graphql?token=%s HTTP/1.1" 200', "leak")
    assert "leak" not in stream.getvalue()


def test_text_format_shows_ids_readably() -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", "text", stream)
    try:
        with bind(request_id="r-9", command_id="c-9"):
            logging.getLogger("text").info("hello")
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue().strip()
    assert "[req=r-9 cmd=c-9]" in line
    assert line.endswith("hello")
    assert not line.startswith("{")


@pytest.mark.e2e
def test_a_real_deposit_logs_its_request_command_and_correlation_ids(tmp_path: Path) -> None:
    """What docs/architecture.md says each line carries, read off a real server's JSON log."""
    env = {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}
    with running_server(tmp_path, env) as server:
        opened = httpx.post(server.http, json={"query": OPEN}).json()
        account = opened["data"]["openAccount"]["account"]["id"]
        variables = {"id": account, "key": "log-key-1"}
        response = httpx.post(
            server.http,
            json={"query": DEPOSIT, "variables": variables},
            headers={"X-Request-ID": "req-log-1"},
        )
        assert response.json()["data"]["deposit"]["__typename"] == "AccountPayload"
        log = server.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines, log
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
    ours = [line for line in lines if line.get("request_id") == "req-log-1"]
    assert any(line["logger"] == "uvicorn.access" for line in ours), ours
    command = [line for line in ours if line["message"].startswith("command Deposit ok")]
    assert len(command) == 1, ours
    assert "log-key-1" in command[0]["command_id"]
    assert command[0]["correlation_id"]


OPEN = (
    'mutation { openAccount(input: {owner: "lena", currency: "EUR"}) '
    "{ __typename ... on AccountPayload { account { id } } } }"
)
DEPOSIT = (
    "mutation($id: ID!, $key: String) { deposit(input: "
    '{accountId: $id, amount: "1.00", commandId: $key}) { __typename } }'
)
