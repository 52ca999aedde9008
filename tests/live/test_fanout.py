"""Subscription fan-out (schema._engine.fanout): one change converted, executed, encoded once."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import strawberry

from schema._engine.extensions import TunedSchema
from schema._engine.fanout import (
    SHARED,
    EncodedData,
    FanoutCache,
    SharingExecutor,
    encode_message,
    shared,
)
from schema.masking import LedgerMaskErrors

CALLS = {"label": 0}


@dataclass(frozen=True)
class Caller:
    name: str


@dataclass
class Ctx:
    user: Caller
    sources: list[dict[str, int]] = field(default_factory=list)


@strawberry.type
class Item:
    number: int

    @strawberry.field
    def label(self, prefix: str = "#") -> str:
        CALLS["label"] += 1
        if self.number < 0:
            raise ValueError("negative")
        return f"{prefix}{self.number}"


def to_item(source: Any) -> Item:
    return Item(number=int(source["n"]))


@strawberry.type
class Query:
    ping: int = 1


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def items(self, info: strawberry.Info) -> AsyncGenerator[Item, None]:
        for source in info.context.sources:
            yield shared(source, to_item)

    @strawberry.subscription
    async def plain(self, info: strawberry.Info) -> AsyncGenerator[Item, None]:
        for source in info.context.sources:
            yield to_item(source)


def build() -> TunedSchema:
    return TunedSchema(
        query=Query,
        subscription=Subscription,
        extensions=[lambda: LedgerMaskErrors(should_mask_error=lambda _: True)],
        execution_context_class=SharingExecutor,
    )


async def results(
    schema: TunedSchema,
    sources: list[dict[str, int]],
    *,
    user: str = "u",
    query: str = "subscription { items { number label } }",
    variables: dict[str, Any] | None = None,
) -> list[Any]:
    context = Ctx(Caller(user), sources)
    stream = await schema.subscribe(query, variable_values=variables, context_value=context)
    assert not isinstance(stream, strawberry.types.ExecutionResult)
    return [result async for result in stream]


async def test_subscribers_of_one_change_share_one_execution() -> None:
    SHARED.clear()
    CALLS["label"] = 0
    schema = build()
    sources = [{"n": 1}, {"n": 2}]
    first = await results(schema, sources)
    second = await results(schema, sources)
    assert [r.data for r in first] == [
        {"items": {"number": 1, "label": "#1"}},
        {"items": {"number": 2, "label": "#2"}},
    ]
    assert [r.data for r in second] == [r.data for r in first]
    assert CALLS["label"] == 2  # once per change, not once per subscriber
    assert all(isinstance(r.data, EncodedData) for r in second)
    assert second[0].data is first[0].data


async def test_other_variables_or_users_execute_on_their_own() -> None:
    SHARED.clear()
    CALLS["label"] = 0
    schema = build()
    sources = [{"n": 3}]
    query = "subscription ($p: String!) { items { label(prefix: $p) } }"
    a = await results(schema, sources, query=query, variables={"p": "a"})
    b = await results(schema, sources, query=query, variables={"p": "b"})
    c = await results(schema, sources, query=query, variables={"p": "a"}, user="other")
    assert [r.data for r in a + b + c] == [{"items": {"label": x}} for x in ("a3", "b3", "a3")]
    assert CALLS["label"] == 3


async def test_results_with_errors_are_not_shared_and_stay_masked() -> None:
    SHARED.clear()
    CALLS["label"] = 0
    schema = build()
    sources = [{"n": -1}]
    first = await results(schema, sources)
    second = await results(schema, sources)
    assert CALLS["label"] == 2
    for outcome in first + second:
        assert outcome.errors is not None
        assert outcome.errors[0].message == "Unexpected error."
        assert not isinstance(outcome.data, EncodedData)


async def test_payloads_not_made_shared_execute_per_subscriber() -> None:
    SHARED.clear()
    CALLS["label"] = 0
    schema = build()
    sources = [{"n": 4}]
    query = "subscription { plain { label } }"
    outcomes = await results(schema, sources, query=query) + await results(
        schema, sources, query=query
    )
    assert [r.data for r in outcomes] == [{"plain": {"label": "#4"}}] * 2
    assert not any(isinstance(r.data, EncodedData) for r in outcomes)
    assert CALLS["label"] == 2


def test_the_cache_is_bounded_and_keeps_its_keys_alive() -> None:
    cache = FanoutCache(entries=2)
    sources = [{"n": n} for n in range(3)]
    payloads = [cache.convert(source, to_item) for source in sources]
    assert cache.convert(sources[2], to_item) is payloads[2]
    assert cache.convert(sources[0], to_item) is not payloads[0]  # evicted: converted again
    assert cache.results_of(payloads[0]) is None


def test_encode_message_matches_json_for_both_protocols() -> None:
    data = EncodedData({"items": {"label": 'é"x'}})
    for kind in ("next", "data"):
        message = {"id": "op-1", "type": kind, "payload": {"data": data}}
        encoded = encode_message(message)
        assert encoded is not None
        assert json.loads(encoded) == json.loads(json.dumps(message))
        cost = {"cost": {"requested": 3, "limit": 10_000}}
        with_cost: dict[str, Any] = {"data": data, "extensions": cost}
        encoded = encode_message({"id": "op-1", "type": kind, "payload": with_cost})
        assert encoded is not None
        assert json.loads(encoded) == {"id": "op-1", "type": kind, "payload": with_cost}


def test_encode_message_leaves_other_messages_alone() -> None:
    data = EncodedData({"a": 1})
    assert encode_message({"id": "1", "type": "next", "payload": {"data": {"a": 1}}}) is None
    with_errors = {"id": "1", "type": "next", "payload": {"data": data, "errors": []}}
    assert encode_message(with_errors) is None
    assert encode_message({"type": "connection_ack"}) is None
    assert encode_message(["x"]) is None


async def test_a_subscription_executor_keeps_a_compact_attribute_dict() -> None:
    SHARED.clear()
    schema = build()
    context = Ctx(Caller("u"), [{"n": 5}])
    stream = await schema.subscribe("subscription { items { number } }", context_value=context)
    assert not isinstance(stream, strawberry.types.ExecutionResult)
    first = await anext(stream)  # the subscription's executor is alive while the stream is
    assert first.data == {"items": {"number": 5}}
    gc.collect()
    (executor,) = [
        o
        for o in gc.get_objects()
        if type(o) is SharingExecutor and o.context_value is context and o.root_value is None
    ]
    attributes = executor.__dict__
    assert sys.getsizeof(attributes) <= sys.getsizeof(dict(attributes))
    assert [r.data async for r in stream] == []
