"""The runtime ASGI middleware, driven directly: request ids, status counts, the body limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from starlette.types import Message, Receive, Scope, Send

from runtime.logging import bind, command_id_var, request_id_var
from runtime.metrics import Metrics
from runtime.middleware import RuntimeMiddleware

LIMIT = 100
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def _scope(*headers: tuple[bytes, bytes], path: str = "/graphql") -> Scope:
    return {"type": "http", "method": "POST", "path": path, "headers": list(headers)}


def _receiver(*chunks: bytes) -> Receive:
    messages = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]

    async def receive() -> Message:
        return messages.pop(0)

    return receive


async def _run(
    app: App, scope: Scope, receive: Receive, metrics: Metrics | None = None
) -> tuple[Metrics, list[Message]]:
    metrics, sent = metrics or Metrics(), []

    async def send(message: Message) -> None:
        sent.append(message)

    await RuntimeMiddleware(app, metrics, LIMIT)(scope, receive, send)
    return metrics, sent


def _count(metrics: Metrics, status: str, path: str = "/graphql") -> float:
    value = metrics.registry.get_sample_value(
        "ledger_http_requests_total", {"path": path, "status": status}
    )
    return value or 0.0


def _replying(status: int, seen: list[str | None] | None = None) -> App:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        if seen is not None:
            seen.append(request_id_var.get())
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def test_the_client_request_id_is_bound_echoed_and_then_unbound() -> None:
    seen: list[str | None] = []
    scope = _scope((b"content-length", b"2"), (b"x-request-id", b"req-7"))
    metrics, sent = await _run(_replying(200, seen), scope, _receiver(b"{}"))
    assert seen == ["req-7"]
    assert (b"x-request-id", b"req-7") in sent[0]["headers"]
    assert request_id_var.get() is None
    assert _count(metrics, "2xx") == 1


async def test_an_unusable_request_id_is_replaced_by_a_fresh_one() -> None:
    seen: list[str | None] = []
    scope = _scope((b"x-request-id", b"has spaces"), (b"content-length", b"2"))
    _, sent = await _run(_replying(404, seen), scope, _receiver(b"{}"))
    (made,) = seen
    assert made is not None
    assert len(made) == 32
    assert (b"x-request-id", made.encode()) in sent[0]["headers"]


@pytest.mark.parametrize("status", [200, 404, 503])
async def test_responses_are_counted_by_status_class(status: int) -> None:
    metrics, _ = await _run(_replying(status), _scope(), _receiver(b"{}"))
    assert _count(metrics, f"{status // 100}xx") == 1


async def test_an_app_that_fails_before_answering_counts_as_5xx_and_unbinds() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    metrics = Metrics()
    with pytest.raises(RuntimeError, match="boom"):
        await _run(failing, _scope(path="/healthz"), _receiver(b""), metrics)
    assert request_id_var.get() is None
    assert _count(metrics, "5xx", path="/healthz") == 1


async def test_a_declared_length_over_the_limit_gets_413_without_the_app() -> None:
    called: list[str | None] = []
    scope = _scope((b"content-length", str(LIMIT + 1).encode()))
    metrics, sent = await _run(_replying(200, called), scope, _receiver(b"x" * (LIMIT + 1)))
    assert (called, sent[0]["status"]) == ([], 413)
    assert _count(metrics, "4xx") == 1


async def test_a_streamed_body_without_length_is_cut_off_at_the_limit() -> None:
    called: list[str | None] = []
    chunks = [b"x" * 60, b"x" * 60]
    metrics, sent = await _run(_replying(200, called), _scope(), _receiver(*chunks))
    assert (called, sent[0]["status"]) == ([], 413)
    assert _count(metrics, "4xx") == 1


def _fail_inside_bind() -> None:
    with bind(command_id="inner", request_id="r"):
        assert (command_id_var.get(), request_id_var.get()) == ("inner", "r")
        raise ValueError("inside")


def test_bind_restores_the_outer_values_even_when_the_block_fails() -> None:
    with bind(command_id="outer"):
        with pytest.raises(ValueError, match="inside"):
            _fail_inside_bind()
        assert (command_id_var.get(), request_id_var.get()) == ("outer", None)
    assert command_id_var.get() is None


def _gauges(metrics: Metrics) -> tuple[float | None, float | None]:
    registry = metrics.registry
    return (
        registry.get_sample_value("ledger_websocket_connections"),
        registry.get_sample_value("ledger_subscriptions"),
    )


async def test_a_websocket_is_counted_with_its_subscriptions_and_bound_to_its_request_id() -> None:
    """Both protocols' open and close messages, from either side; the socket's end closes all."""
    metrics = Metrics()
    seen: list[object] = []
    inbox: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": '{"type":"subscribe","id":"1","payload":{}}'},
        {"type": "websocket.receive", "text": '{"type":"start","id":"2","payload":{}}'},
        {"type": "websocket.receive", "text": '{"type":"subscribe","id":"2","payload":{}}'},
        {"type": "websocket.receive", "text": '{"type":"subscribe","id":"3","payload":{}}'},
        {"type": "websocket.receive", "text": "not json"},
        {"type": "websocket.receive", "text": '{"type":"stop","id":"2"}'},
        {"type": "websocket.receive", "text": '{"type":"subscribe","id":"4","payload":{}}'},
    ]
    outbox: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        outbox.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(request_id_var.get())
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        seen.append(_gauges(metrics))
        while inbox:
            await receive()
        seen.append(_gauges(metrics))  # 1, 3 and 4 open
        await send({"type": "websocket.send", "text": '{"id":"3","type":"complete"}'})
        await send({"type": "websocket.send", "text": '{"id":"4","type":"next","payload":{}}'})
        seen.append(_gauges(metrics))

    scope: Scope = {
        "type": "websocket",
        "path": "/graphql",
        "headers": [(b"x-request-id", b"ws-1")],
    }
    await RuntimeMiddleware(app, metrics, LIMIT)(scope, receive, send)
    assert seen == ["ws-1", (1.0, 0.0), (1.0, 3.0), (1.0, 2.0)]
    assert len(outbox) == 3
    assert _gauges(metrics) == (0.0, 0.0)
    assert request_id_var.get() is None
