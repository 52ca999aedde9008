"""Query cost: an upper bound on the work a document asks for, known before execution.

The cost of an operation is the sum of its fields' costs, each fragment spread
counted in full:

    field cost = 1 + replay + n * (cost of its selection set)

- ``n`` is the page size of a field with a ``first`` argument (``accounts``,
  ``transfers``, ``events``, ``accountHistory``, ``Account.statement``) and 1
  for any other field; ``last`` (backward pages) counts the same way, and a
  field given both counts the larger (the resolver refuses it anyway). A
  literal counts at its value, a variable at its supplied value or else its
  default; no value at all means the default page size. A value that is not
  a page size the resolver accepts (not an integer, out of range) counts as
  the maximum page size: an upper bound.
- ``replay`` counts the events a field folds to rebuild states:
  ``accountHistory(fromVersion, first)`` replays ``fromVersion + first - 1``
  events; ``account(atVersion | asOf)`` counts ``TIME_TRAVEL_REPLAY`` (its
  replay starts at the latest snapshot at or below the target, written every
  ``SNAPSHOT_EVERY`` events; a longer replay is still bounded in time by the
  request's deadline).
- Inline fragments on a union or interface are all summed (only one applies
  at run time: an upper bound again). Unknown fields and types count 1 per
  field: the document will fail validation anyway.

So, roughly, the cost is how many values the response can hold plus how many
events the server folds to produce them. A subscription's cost is that of one
message.

The computation is linear in the document's size: every fragment's cost is
computed once (``fragments_in_order``) however often it is
spread, so a document whose fragments each spread the previous one twice
costs microseconds to price and its (exponential) price is simply refused.
A fragment spread inside a cycle counts 0; validation refuses such documents.

A ``CostPlan`` caches one document's costs per operation and per value of
the few variables the cost depends on (bounded); ``schema.limits`` keeps one
plan per document object, ``query_cost`` does the same for other callers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, Generic, NamedTuple, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    ValueNode,
    VariableNode,
    get_named_type,
    value_from_ast_untyped,
)

T = TypeVar("T")

TIME_TRAVEL_REPLAY = 100
"""Events one time-travel read may fold: the default snapshot interval."""
CEILING = 2**53
"""Costs saturate here: a doubling chain of fragments cannot build huge integers."""
PLAN_CACHE_SIZE = 1024
COSTS_PER_PLAN = 32


class Pages(NamedTuple):
    """The page sizes of ``schema.limits.Limits``: a missing ``first``, the largest."""

    default: int
    maximum: int


class Identity(Generic[T]):
    """A value compared and hashed by identity (a cache key that keeps it alive)."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.value is self.value


def _spreads(selection_set: SelectionSetNode) -> Iterator[str]:
    """Names of the fragments spread anywhere in ``selection_set`` (not following them)."""
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                pending.append(selection.selection_set)


def fragments_in_order(document: DocumentNode) -> list[FragmentDefinitionNode]:
    """The document's fragments, each after every fragment it spreads.

    A depth-first walk with an explicit stack: a long chain of fragments
    cannot exhaust the interpreter's recursion limit. In a cycle, the fragment
    reached last is put first (its spread of the others then counts nothing);
    spreads of unknown fragments are ignored. Linear in the document's size.
    """
    definitions = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    order: list[FragmentDefinitionNode] = []
    seen: set[str] = set()
    for root in definitions:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, _spreads(definitions[root].selection_set))]
        while stack:
            name, spreads = stack[-1]
            for spread in spreads:
                if spread in definitions and spread not in seen:
                    seen.add(spread)
                    stack.append((spread, _spreads(definitions[spread].selection_set)))
                    break
            else:
                stack.pop()
                order.append(definitions[name])
    return order


_ABSENT = object()  # a variable the request does not supply
_OTHER = "other"  # a supplied value that is neither an integer nor null


def _normalized(value: Any) -> Any:
    """What of a variable's value the cost depends on: an int, None, absent, or other."""
    if value is None or value is _ABSENT:
        return value
    if type(value) is int:
        return value
    return _OTHER


class _Pricing:
    """One walk over one operation with given variable values."""

    def __init__(
        self,
        schema: GraphQLSchema,
        pages: Pages,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.pages = pages
        self.variables = variables
        self.defaults: dict[str, Any] = {
            definition.variable.name.value: _literal(definition.default_value)
            for definition in operation.variable_definitions or ()
            if definition.default_value is not None
        }
        self.used: set[str] = set()  # the variables the cost depends on
        self.fragments: dict[str, int] = {}

    def operation_cost(self, document: DocumentNode, operation: OperationDefinitionNode) -> int:
        for fragment in fragments_in_order(document):
            condition = self.schema.get_type(fragment.type_condition.name.value)
            self.fragments[fragment.name.value] = self.selections(fragment.selection_set, condition)
        root = self.schema.get_root_type(operation.operation)
        return self.selections(operation.selection_set, root)

    def selections(self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragments.get(selection.name.value, 0)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, inner)
        return min(total, CEILING)

    def field(self, node: FieldNode, parent: GraphQLNamedType | None) -> int:
        definition = _field(self.schema, parent, node.name.value)
        size, replay = 1, 0
        if definition is not None:
            if "first" in definition.args:
                size = self.window(node, definition)
            if parent is self.schema.query_type:
                replay = self.replay(node, definition, size)
        inner = 0
        if node.selection_set is not None:
            child = get_named_type(definition.type) if definition is not None else None
            inner = self.selections(node.selection_set, child)
        return min(1 + replay + size * inner, CEILING)

    def replay(self, node: FieldNode, definition: GraphQLField, size: int) -> int:
        """Events a root query field folds (see the module)."""
        name = node.name.value
        if name == "accountHistory":
            start = self.argument(node, definition, "fromVersion")
            first_version = start if type(start) is int and start >= 1 else 1
            return first_version + size - 1
        if name == "account":
            for travel in ("atVersion", "asOf"):
                if self.argument(node, definition, travel) not in (None, _ABSENT):
                    return TIME_TRAVEL_REPLAY
        return 0

    def argument(self, node: FieldNode, definition: GraphQLField, name: str) -> Any:
        """The argument's value as far as the cost needs it (see ``_normalized``)."""
        for argument in node.arguments or ():
            if argument.name.value == name:
                return self.value(argument.value)
        schema_default = definition.args[name].default_value if name in definition.args else None
        return None if schema_default is Undefined else _normalized(schema_default)

    def value(self, node: ValueNode) -> Any:
        if isinstance(node, VariableNode):
            name = node.name.value
            self.used.add(name)
            if name in self.variables:
                return _normalized(self.variables[name])
            return self.defaults.get(name, _ABSENT)
        return _literal(node)

    def window(self, node: FieldNode, definition: GraphQLField) -> int:
        """The page size of ``first``, or of ``last`` if only it is given; both: the larger."""
        first = self.argument(node, definition, "first")
        last = self.argument(node, definition, "last") if "last" in definition.args else None
        given = [value for value in (first, last) if value is not None and value is not _ABSENT]
        return max(self.page_size(value) for value in given) if given else self.page_size(None)

    def page_size(self, value: Any) -> int:
        default, maximum = self.pages
        if value is None or value is _ABSENT:
            return min(default, maximum)
        if type(value) is int and 1 <= value <= maximum:
            return value
        return maximum


def _literal(node: ValueNode) -> Any:
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, NullValueNode):
        return None
    if isinstance(node, VariableNode):  # not allowed in a default; validation refuses it
        return _OTHER
    return _normalized(value_from_ast_untyped(node))


def _field(
    schema: GraphQLSchema, parent: GraphQLNamedType | None, name: str
) -> GraphQLField | None:
    if name == "__schema" and parent is schema.query_type:
        return GraphQLField(schema.get_type("__Schema"))  # type: ignore[arg-type]
    if name == "__type" and parent is schema.query_type:
        return GraphQLField(schema.get_type("__Type"))  # type: ignore[arg-type]
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        field: GraphQLField | None = parent.fields.get(name)
        return field
    return None


def select_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    """The operation graphql-core would execute; None when it would refuse to pick one."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    for operation in operations:
        if operation.name is not None and operation.name.value == operation_name:
            return operation
    return None


class CostPlan:
    """The costs of one document's operations, by operation and variable values."""

    def __init__(self, document: DocumentNode, schema: GraphQLSchema, pages: Pages) -> None:
        self.document = document
        self.schema = schema
        self.pages = pages
        self.depends_on: dict[str | None, tuple[str, ...]] = {}
        self.costs: dict[tuple[object, ...], int] = {}

    def cost(self, operation_name: str | None, variables: Mapping[str, Any] | None) -> int:
        variables = variables or {}
        names = self.depends_on.get(operation_name)
        if names is not None:
            key = (operation_name, *(_normalized(variables.get(n, _ABSENT)) for n in names))
            cached = self.costs.get(key)
            if cached is not None:
                return cached
        operation = select_operation(self.document, operation_name)
        if operation is None:
            return 0  # execution refuses the request before any resolver runs
        pricing = _Pricing(self.schema, self.pages, operation, variables)
        cost = pricing.operation_cost(self.document, operation)
        names = tuple(sorted(pricing.used))
        self.depends_on[operation_name] = names
        if len(self.costs) >= COSTS_PER_PLAN:
            self.costs.clear()
        key = (operation_name, *(_normalized(variables.get(n, _ABSENT)) for n in names))
        self.costs[key] = cost
        return cost


@lru_cache(maxsize=PLAN_CACHE_SIZE)
def _plan(document: Identity[DocumentNode], schema: GraphQLSchema, pages: Pages) -> CostPlan:
    return CostPlan(document.value, schema, pages)


def query_cost(
    schema: GraphQLSchema,
    pages: Pages,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> int:
    """The cost (see the module) of the operation ``operation_name`` of ``document``."""
    return _plan(Identity(document), schema, pages).cost(operation_name, variables)
