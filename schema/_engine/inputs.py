"""Input types built without strawberry's per-value type and name resolution.

strawberry turns a GraphQL input value into its input class by working out,
for every field of every value, the field's GraphQL name (camel-casing the
Python name) and its type (resolving the annotation) again. ``@flat_input``
installs strawberry's ``from_input`` hook (``StrawberryObjectDefinition.from_input``),
which does the same with both worked out once per schema.

The hook is installed on the input class when it is defined, so it is on with
either engine; it builds the same values strawberry's own conversion does
(``tests/schema/test_inputs.py``). It needs ``InputContext`` and the type
definitions from non-public strawberry modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING
from typing import Any, TypeVar

import strawberry
from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext, convert_argument
from strawberry.types.base import (
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
    get_object_definition,
)
from strawberry.types.field import StrawberryField

InputClass = TypeVar("InputClass", bound=type)
Converted = TypeVar("Converted")
Plan = tuple[tuple[str, str, StrawberryType | type | None], ...]


class FlatInput:
    """strawberry's ``from_input`` hook for one input type: the same value, built cheaper.

    Each field's GraphQL name and type depend only on the schema (its config
    and scalar registry), so they are worked out once per schema. A scalar or
    optional scalar field takes the value graphql-core parsed, which is what
    strawberry's own conversion returns for it; any other field is converted
    by strawberry (``InputContext.convert``). Left-out fields without a
    default are None, as in strawberry's conversion.
    """

    def __init__(self, definition: StrawberryObjectDefinition) -> None:
        self._definition = definition
        self._unset = {f.python_name: None for f in definition.fields if _no_default(f)}
        self._schema: tuple[object, object] = (None, None)
        self._plan: Plan = ()

    def __call__(self, cls: type, value: Mapping[str, Any], context: InputContext) -> object:
        kwargs: dict[str, object] = dict(self._unset)
        for graphql_name, python_name, convert_as in self._plan_for(context):
            if graphql_name in value:
                raw = value[graphql_name]
                kwargs[python_name] = (
                    raw if convert_as is None else context.convert(raw, convert_as, graphql_name)
                )
        return cls(**kwargs)

    def _plan_for(self, context: InputContext) -> Plan:
        """(GraphQL name, Python name, type to convert as or None) of each field."""
        config, registry = context.config, context.scalar_registry
        if self._schema[0] is not config or self._schema[1] is not registry:
            self._plan = tuple(
                (
                    config.name_converter.from_field(field),
                    field.python_name,
                    _convert_as(field.resolve_type(type_definition=self._definition), registry),
                )
                for field in self._definition.fields
            )
            self._schema = (config, registry)
        return self._plan


def _no_default(field: StrawberryField) -> bool:
    return field.default_value is MISSING and field.default_factory is MISSING


def _convert_as(
    type_: StrawberryType | type, registry: Mapping[object, Any]
) -> StrawberryType | type | None:
    """None for a type whose values strawberry returns unchanged, else ``type_``."""
    leaf = type_.of_type if type(type_) is StrawberryOptional else type_  # not Maybe
    if leaf is not GlobalID and not isinstance(leaf, StrawberryMaybe) and is_scalar(leaf, registry):
        return None
    return type_


def flat_input(cls: InputClass) -> InputClass:
    """Class decorator (outside ``@strawberry.input``): convert values with ``FlatInput``.

    ``Maybe`` fields are refused: strawberry validates their nulls in the
    document only for inputs without a ``from_input`` hook.
    """
    definition = get_object_definition(cls, strict=True)
    if any(isinstance(field.type, StrawberryMaybe) for field in definition.fields):
        raise TypeError(f"{cls.__name__}: @flat_input does not take Maybe fields")
    definition.from_input = FlatInput(definition)
    return cls


def both_conversions(
    schema: strawberry.Schema, cls: type[Converted], value: Mapping[str, Any]
) -> tuple[Converted, Converted]:
    """``value`` converted to ``cls`` through its hook, then by strawberry's own conversion.

    The check that ``FlatInput`` and strawberry agree (run by the tests, and
    worth running against a new strawberry version).
    """
    registry = schema.schema_converter.scalar_registry
    definition = get_object_definition(cls, strict=True)
    hook = definition.from_input
    if hook is None:
        raise TypeError(f"{cls.__name__} is not a @flat_input type")
    flat = convert_argument(dict(value), cls, registry, schema.config)
    definition.from_input = None
    try:
        plain = convert_argument(dict(value), cls, registry, schema.config)
    finally:
        definition.from_input = hook
    if not isinstance(flat, cls) or not isinstance(plain, cls):
        raise TypeError(f"{value!r} did not convert to {cls.__name__}")
    return flat, plain
