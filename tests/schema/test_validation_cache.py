"""CheckedValidationCache: strawberry's ValidationCache, leaving a refused document alone."""

from __future__ import annotations

from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.types import ExecutionResult

from schema.app import CheckedValidationCache

QUERIES = ["{ hello }", "{ hello nope }", "{ hello(x: 1) }", "query Q { hello } query Q { hello }"]


@strawberry.type
class Query:
    hello: str = "hi"


class Refusing(SchemaExtension):
    """Refuses every document before validation, as ``schema.limits.RequestLimits`` may."""

    def on_validate(self) -> Iterator[None]:
        self.execution_context.pre_execution_errors = [GraphQLError("refused")]
        yield


def messages(result: ExecutionResult) -> list[str]:
    return [error.message for error in result.errors or ()]


async def test_results_are_strawberrys() -> None:
    ours = strawberry.Schema(query=Query, extensions=[ParserCache, CheckedValidationCache])
    theirs = strawberry.Schema(query=Query, extensions=[ParserCache, ValidationCache])
    for _ in range(2):
        for query in QUERIES:
            expected = await theirs.execute(query)
            actual = await ours.execute(query)
            assert (actual.data, messages(actual)) == (expected.data, messages(expected))


async def test_a_document_refused_before_validation_stays_refused() -> None:
    ours = strawberry.Schema(query=Query, extensions=[Refusing, CheckedValidationCache])
    theirs = strawberry.Schema(query=Query, extensions=[Refusing, ValidationCache])

    assert messages(await ours.execute("{ hello }")) == ["refused"]
    assert messages(await theirs.execute("{ hello }")) != ["refused"]  # why it exists
