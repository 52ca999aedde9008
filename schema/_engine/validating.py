"""graphql-core validation: results cached by document object, and the overlap budget.

strawberry's ``ValidationCache`` keys an LRU cache with the parsed document,
so every hit hashes the whole AST (graphql-core's nodes are frozen
dataclasses hashed field by field, recursively); it also replaces errors an
earlier extension set. ``ParserCache`` already hands out one document object per query
text (and parse options), so the object itself is as good a key; a document
parsed again (after the parser cache dropped it) is simply validated again.
The result is the same list strawberry's cache returns: ``validate_document``
for the schema, the document and the operation's validation rules. Without
this cache (``GRAPHQL_ENGINE=plain``) strawberry validates every document itself.

``set_overlap_budget`` bounds the work of graphql-core's "overlapping fields
can be merged" rule, which has no public setting for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache, partial

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema
from graphql.validation.rules import overlapping_fields_can_be_merged
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

Rules = tuple[type[ASTValidationRule], ...]


class _Same:
    """A document compared and hashed by identity; the cache key keeps it alive."""

    __slots__ = ("document",)

    def __init__(self, document: DocumentNode | None) -> None:
        self.document = document

    def __hash__(self) -> int:
        return id(self.document)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.document is self.document


def validate(schema: GraphQLSchema, document: DocumentNode, rules: Rules) -> list[GraphQLError]:
    """strawberry's validation: graphql-core's ``validate`` with ``rules`` plus strawberry's own."""
    return validate_document(schema, document, rules)


def _validate(same: _Same, schema: GraphQLSchema, rules: Rules) -> list[GraphQLError]:
    # A missing document is passed on as strawberry's cache would (validate refuses it).
    return validate(schema, same.document, rules)  # type: ignore[arg-type]


class DocumentValidationCache(SchemaExtension):
    """strawberry's ``ValidationCache`` with document-object keys (see the module)."""

    def __init__(
        self, validate: Callable[[_Same, GraphQLSchema, Rules], list[GraphQLError]]
    ) -> None:
        self.validate = validate

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        # An extension before this one may have refused the document already
        # (``schema.limits``): it is then not validated at all.
        if context.pre_execution_errors is None:
            context.pre_execution_errors = self.validate(
                _Same(context.graphql_document), context.schema._schema, context.validation_rules
            )
        yield


def validation_cache(maxsize: int) -> Callable[[], SchemaExtension]:
    """A factory of ``DocumentValidationCache`` extensions sharing one LRU cache."""
    return partial(DocumentValidationCache, lru_cache(maxsize=maxsize)(_validate))


def set_overlap_budget(budget: int) -> None:
    """Bound graphql-core's overlapping-fields rule to ``budget`` comparisons (process-wide)."""
    overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = budget
