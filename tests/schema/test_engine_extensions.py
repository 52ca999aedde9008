"""The tuned schema runs every stage's hooks where the plain one does, with the same results.

``TunedSchema`` with ``TunedMaskErrors`` against ``LedgerSchema`` with
``LedgerMaskErrors`` (as ``schema.app`` pairs them): queries (async and
sync), subscriptions, extension results, masked errors and their codes, an
async hook under ``execute_sync``; that a subscription keeps one masking
operation hook suspended, not two;
and the contract the runner keeps for an exception that a hook swallows;
and that the schema composed from features (the bank's and the savings
example's) is built on the engine ``Limits.graphql_engine`` names.
"""

from __future__ import annotations

import gc
import types
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from graphql import Executor
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from runtime.features import load_features
from runtime.settings import Settings
from schema._engine.extensions import (
    TunedExtensionsRunner,
    TunedMaskErrors,
    TunedSchema,
    core_schema,
)
from schema._engine.parking import ParkingExecutor
from schema.app import build_schema
from schema.limits import Engine, Limits
from schema.masking import LedgerMaskErrors, LedgerSchema

LOG: list[str] = []


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        LOG.append("resolve")
        return "hi"

    @strawberry.field
    def broken(self) -> str:
        raise ValueError("secret")


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def count(self, fail: bool = False) -> AsyncGenerator[int, None]:
        yield 1
        if fail:
            raise ValueError("secret")
        yield 2


class Lifecycle(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        LOG.append("operation")
        yield
        LOG.append("/operation")

    def on_parse(self) -> Iterator[None]:
        LOG.append("parse")
        yield
        LOG.append("/parse")

    def on_validate(self) -> Iterator[None]:
        LOG.append("validate")
        yield
        LOG.append("/validate")

    def on_execute(self) -> Iterator[None]:
        LOG.append("execute")
        yield
        LOG.append("/execute")

    def get_results(self) -> dict[str, Any]:
        return {"calls": len(LOG)}


class AsyncOperation(SchemaExtension):
    def __repr__(self) -> str:  # in the RuntimeError under execute_sync
        return "AsyncOperation"

    async def on_operation(self) -> AsyncIterator[None]:
        LOG.append("async operation")
        yield
        LOG.append("/async operation")


ENGINES = (LedgerSchema, TunedSchema)


def schema(
    engine: type[strawberry.Schema], *extensions: type[SchemaExtension]
) -> strawberry.Schema:
    masking = TunedMaskErrors if engine is TunedSchema else LedgerMaskErrors
    return engine(
        query=Query,
        subscription=Subscription,
        extensions=[*extensions, lambda: masking(should_mask_error=lambda _: True)],
    )


def seen(result: ExecutionResult) -> tuple[Any, ...]:
    errors = [(e.message, (e.extensions or {}).get("code")) for e in result.errors or ()]
    return result.data, errors, result.extensions, list(LOG)


QUERIES = ["{ hello }", "{ broken }", "{ nope }", "{ hello", "subscription { count }"]


@pytest.mark.parametrize("query", QUERIES)
async def test_execute_runs_the_hooks_as_strawberry_does(query: str) -> None:
    outcomes = []
    for engine in ENGINES:
        LOG.clear()
        outcomes.append(seen(await schema(engine, Lifecycle, AsyncOperation).execute(query)))
    assert outcomes[1] == outcomes[0]
    if query == "{ hello }":
        assert [
            *("operation", "async operation", "parse", "/parse", "validate", "/validate"),
            *("execute", "resolve", "/execute", "/async operation", "/operation"),
        ] == LOG
    if query == "{ broken }":
        assert outcomes[1][1] == [("Unexpected error.", "INTERNAL_SERVER_ERROR")]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("extensions", [(Lifecycle,), (Lifecycle, AsyncOperation)])
def test_execute_sync_runs_the_hooks_as_strawberry_does(
    query: str, extensions: tuple[type[SchemaExtension], ...]
) -> None:
    outcomes = []
    for engine in ENGINES:
        LOG.clear()
        try:
            outcomes.append(seen(schema(engine, *extensions).execute_sync(query)))
        except Exception as exc:  # e.g. the async hook: "failed to complete synchronously"
            outcomes.append((type(exc), str(exc), list(LOG)))
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("fail", [False, True])
async def test_subscriptions_run_the_hooks_and_mask_as_strawberry_does(fail: bool) -> None:
    query = "subscription ($fail: Boolean!) { count(fail: $fail) }"
    outcomes = []
    for engine in ENGINES:
        LOG.clear()
        stream = await schema(engine, Lifecycle).subscribe(query, variable_values={"fail": fail})
        assert not isinstance(stream, ExecutionResult)
        outcomes.append([seen(result) async for result in stream])
    assert outcomes[1] == outcomes[0]
    if fail:
        assert outcomes[1][-1][1] == [("Unexpected error.", "INTERNAL_SERVER_ERROR")]


def suspended_hooks(name: str) -> list[str]:
    """The qualified names of the suspended generators of hooks called ``name``."""
    gc.collect()
    return sorted(
        thing.gi_code.co_qualname
        for thing in gc.get_objects()
        # type(), not isinstance(): the heap may hold weak proxies to dead objects
        if type(thing) is types.GeneratorType
        and thing.gi_frame is not None
        and thing.gi_code.co_name == name
    )


async def test_a_subscription_keeps_one_masking_operation_hook_suspended() -> None:
    stream = await schema(TunedSchema).subscribe("subscription { count }")
    assert not isinstance(stream, ExecutionResult)
    assert (await anext(stream)).data == {"count": 1}
    assert suspended_hooks("on_operation") == ["TunedMaskErrors.on_operation"]
    assert [result.data async for result in stream] == [{"count": 2}]
    assert suspended_hooks("on_operation") == []


class Outer(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except ValueError:
            LOG.append("outer saw it")
            raise
        LOG.append("outer left normally")


class Swallowing(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except ValueError:
            LOG.append("swallowed")


async def test_a_swallowed_exception_skips_the_outer_hooks_but_leaves_the_block() -> None:
    LOG.clear()
    runner = TunedExtensionsRunner(None, [Outer(), Swallowing()])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="boom"):
        async with runner.operation():
            raise ValueError("boom")
    assert LOG == ["swallowed", "outer left normally"]


@pytest.mark.parametrize("engine", ["tuned", "plain"])
def test_the_schema_of_the_features_runs_on_the_engine_the_limits_name(engine: Engine) -> None:
    paths = f"{Settings.model_fields['features'].default},docs.examples.savings.schema"
    schema = build_schema(load_features(paths).features, Limits(graphql_engine=engine))
    tuned = engine == "tuned"
    assert type(schema) is (TunedSchema if tuned else LedgerSchema)
    assert (schema.execution_context_class is ParkingExecutor) is tuned
    query = core_schema(schema).query_type
    assert query is not None
    assert {"account", "transfer", "ledger", "goal"} <= set(query.fields)


@pytest.mark.parametrize("engine", ["tuned", "plain"])
async def test_the_tuned_engine_frees_an_operation_s_executor_without_the_cycle_collector(
    engine: Engine,
) -> None:
    paths = Settings.model_fields["features"].default
    schema = build_schema(load_features(paths).features, Limits(graphql_engine=engine))
    await schema.execute("{ __typename }")  # caches warm
    gc.collect()
    gc.disable()
    try:
        result = await schema.execute("{ __typename }")
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [found for found in gc.garbage if isinstance(found, Executor)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert result.errors is None
    # graphql-core's executor keeps helpers bound to itself: a reference cycle, so the
    # plain engine leaves every operation's executor (and what it holds) to the cycle
    # collector. The tuned one's helpers reach it weakly (schema._engine.fanout).
    assert bool(left) is (engine == "plain")
