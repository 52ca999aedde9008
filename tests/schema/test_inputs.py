"""``@flat_input`` builds exactly the value strawberry's own conversion builds.

``schema._engine.inputs.FlatInput`` replaces strawberry's per-value conversion of the
mutation inputs (a cheaper path through its ``from_input`` hook). Every case
here is converted both ways and must come out equal.
"""

from __future__ import annotations

import enum
from typing import Any

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from schema._engine.inputs import both_conversions, flat_input
from schema.accounts import AmountInput, CloseAccountInput, OpenAccountInput
from schema.app import build_schema
from schema.export import BANK
from schema.transfers import RequestTransferInput

SCHEMA = build_schema(BANK)
A = "acc-0123456789abcdef0123456789abcdef"
B = "acc-fedcba9876543210fedcba9876543210"


CASES = [
    (OpenAccountInput, {"owner": "ada", "currency": "EUR", "commandId": None}),
    (OpenAccountInput, {"owner": "ada", "currency": "EUR", "commandId": "c-1"}),
    (OpenAccountInput, {"owner": "ada", "currency": "EUR"}),
    (AmountInput, {"accountId": A, "amount": "1.50", "commandId": None, "expectedVersion": None}),
    (AmountInput, {"accountId": A, "amount": "1", "commandId": "k", "expectedVersion": 0}),
    (AmountInput, {"accountId": A, "amount": "1"}),
    (CloseAccountInput, {"accountId": A, "commandId": "k", "expectedVersion": 7}),
    (RequestTransferInput, {"fromAccountId": A, "toAccountId": B, "amount": "2.00"}),
]


@pytest.mark.parametrize(("cls", "value"), CASES)
def test_mutation_inputs_match_strawberrys_conversion(
    cls: type[object], value: dict[str, Any]
) -> None:
    flat, plain = both_conversions(SCHEMA, cls, value)

    assert type(flat) is cls
    assert vars(flat) == vars(plain)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.input
class Inner:
    colour: Colour
    note: str | None = None


@flat_input
@strawberry.input
class Outer:
    """Fields strawberry must still convert (enum, nested input, list), next to scalars."""

    name_text: str
    colour: Colour
    inner: Inner | None = None
    inners: list[Inner] | None = None
    count: int | None = None
    left_out: str | None = strawberry.field(default=None, name="renamedField")


@strawberry.type
class Query:
    @strawberry.field
    def echo(self, value: Outer) -> str:
        return value.name_text


OUTER_VALUES = [
    {"nameText": "n", "colour": Colour.RED},
    {
        "nameText": "n",
        "colour": Colour.BLUE,
        "inner": {"colour": Colour.RED, "note": None},
        "inners": [{"colour": Colour.BLUE}, {"colour": Colour.RED, "note": "x"}],
        "count": 3,
        "renamedField": "r",
    },
    {"nameText": "n", "colour": Colour.RED, "inner": None, "inners": None, "count": None},
]


@pytest.mark.parametrize("value", OUTER_VALUES)
def test_fields_that_are_not_scalars_are_converted_by_strawberry(value: dict[str, Any]) -> None:
    schema = strawberry.Schema(query=Query)

    flat, plain = both_conversions(schema, Outer, value)

    assert vars(flat) == vars(plain)
    assert flat.colour in Colour
    if value.get("inner") is not None:
        assert type(flat.inner) is Inner


def test_each_schema_uses_its_own_names() -> None:
    camel = strawberry.Schema(query=Query)
    snake = strawberry.Schema(query=Query, config=StrawberryConfig(auto_camel_case=False))

    for schema, value in (
        (camel, {"nameText": "c", "colour": Colour.RED}),
        (snake, {"name_text": "s", "colour": Colour.RED, "renamedField": "r"}),
        (camel, {"nameText": "c2", "colour": Colour.BLUE}),
    ):
        flat, plain = both_conversions(schema, Outer, value)
        assert vars(flat) == vars(plain)


async def test_a_query_runs_with_the_hook() -> None:
    schema = strawberry.Schema(query=Query)

    result = await schema.execute('{ echo(value: {nameText: "hi", colour: RED}) }')

    assert result.errors is None
    assert result.data == {"echo": "hi"}


def test_maybe_fields_are_refused() -> None:
    # strawberry validates the nulls of Maybe fields only for inputs without the hook.
    with pytest.raises(TypeError, match="Maybe"):

        @flat_input
        @strawberry.input
        class WithMaybe:
            value: strawberry.Maybe[str]
