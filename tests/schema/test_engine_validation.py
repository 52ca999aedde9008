"""DocumentValidationCache: strawberry's ValidationCache results, keyed by document object."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    parse,
    specified_rules,
)
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.types import ExecutionContext

from schema._engine import validating as validation
from schema._engine.extensions import TunedSchema
from schema.app import build_schema
from schema.export import BANK

QUERIES = ["{ hello }", "{ hello nope }", "{ hello(x: 1) }", "query Q { hello } query Q { hello }"]


@strawberry.type
class Query:
    hello: str = "hi"


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[DocumentNode]:
    """The documents actually validated (cache misses)."""
    seen: list[DocumentNode] = []

    def counting(schema: GraphQLSchema, document: DocumentNode, rules: Any) -> list[GraphQLError]:
        seen.append(document)
        return strawberrys(schema, document, rules)

    strawberrys = validation.validate
    monkeypatch.setattr(validation, "validate", counting)
    return seen


def messages(errors: list[GraphQLError] | None) -> list[str]:
    return [error.message for error in errors or ()]


async def test_results_are_strawberrys_and_a_repeated_query_is_validated_once(
    validations: list[DocumentNode],
) -> None:
    ours = TunedSchema(query=Query, extensions=[ParserCache, validation.validation_cache(16)])
    theirs = strawberry.Schema(query=Query, extensions=[ParserCache, ValidationCache])
    for _ in range(3):
        for query in QUERIES:
            expected = await theirs.execute(query)
            actual = await ours.execute(query)
            assert (actual.data, messages(actual.errors)) == (
                expected.data,
                messages(expected.errors),
            )
    assert len(validations) == len(QUERIES)


SCHEMA = build_schema(BANK)


def validate(extension: SchemaExtension, document: DocumentNode, rules: Any) -> list[str]:
    extension.execution_context = ExecutionContext(
        query=None,
        schema=SCHEMA,
        allowed_operations=(),
        graphql_document=document,
        validation_rules=rules,
    )
    hook = extension.on_validate()
    assert isinstance(hook, Iterator)
    next(hook)
    return messages(extension.execution_context.pre_execution_errors)


def test_the_rules_and_the_document_object_are_part_of_the_key(
    validations: list[DocumentNode],
) -> None:
    factory = validation.validation_cache(16)
    document = parse("{ __schema { queryType { name } } }")
    plain: tuple[type[ASTValidationRule], ...] = tuple(specified_rules)
    closed = (*plain, NoSchemaIntrospectionCustomRule)
    assert validate(factory(), document, plain) == []
    assert validate(factory(), document, plain) == []
    assert "introspection" in validate(factory(), document, closed)[0]
    assert len(validations) == 2
    again = parse("{ __schema { queryType { name } } }")  # equal, another object: validated
    assert again == document
    assert validate(factory(), again, plain) == []
    assert validations == [document, document, again]
    assert validations[2] is again
