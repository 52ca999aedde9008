"""Depth, token and alias limits, introspection switch, page maximum, error masking."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from schema.app import build_schema
from schema.export import BANK
from schema.limits import Limits
from tests.wiring import Wiring, make_wiring


async def test_ten_thousand_aliases_are_refused_before_execution(wiring: Wiring) -> None:
    query = "{ " + " ".join(f"a{i}: ledger {{ currency }}" for i in range(10_000)) + " }"
    result = await wiring.run(query)
    assert result.errors
    assert result.data is None
    assert "tokens" in result.errors[0].message or "aliases" in result.errors[0].message


async def test_too_many_aliases_under_the_token_limit_are_refused() -> None:
    wiring = await make_wiring(Limits(max_aliases=5, max_tokens=100_000))
    query = "{ " + " ".join(f"a{i}: ledger {{ currency }}" for i in range(6)) + " }"
    result = await wiring.run(query)
    assert result.errors
    assert "aliases" in result.errors[0].message
    allowed = "{ " + " ".join(f"a{i}: ledger {{ currency }}" for i in range(5)) + " }"
    assert (await wiring.run(allowed)).errors is None


def nested(levels: int) -> str:
    inner = "x"
    for i in range(levels):
        inner = f"f{i} {{ {inner} }}"
    return f'{{ account(id: "x") {{ {inner} }} }}'


@pytest.mark.parametrize(("levels", "phrase"), [(20, "depth"), (2_000, "nested too deeply")])
async def test_deep_nesting_is_refused(wiring: Wiring, levels: int, phrase: str) -> None:
    result = await wiring.run(nested(levels))
    assert result.errors
    assert result.data is None
    assert any(phrase in error.message for error in result.errors)


async def test_depth_limit_applies_to_valid_queries() -> None:
    wiring = await make_wiring(Limits(max_query_depth=3))
    deep = '{ account(id: "x") { statement { edges { node { version } } } } }'
    result = await wiring.run(deep)
    assert result.errors
    assert "depth" in result.errors[0].message
    assert (await wiring.run('{ account(id: "x") { id } }')).errors is None


async def test_token_limit() -> None:
    wiring = await make_wiring(Limits(max_tokens=50))
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(50)) + " }"
    result = await wiring.run(query)
    assert result.errors
    assert "tokens" in result.errors[0].message


async def test_introspection_can_be_switched_off() -> None:
    wiring = await make_wiring(Limits(introspection=False))
    result = await wiring.run("{ __schema { types { name } } }")
    assert result.errors
    assert "introspection" in result.errors[0].message.lower()
    assert (await wiring.run("{ __typename }")).errors is None


async def test_page_maximum_follows_limits() -> None:
    wiring = await make_wiring(Limits(max_page_size=3))
    result = await wiring.run("{ accounts(first: 4) { edges { cursor } } }")
    assert result.errors
    assert "first" in result.errors[0].message
    assert (await wiring.run("{ accounts(first: 3) { edges { cursor } } }")).errors is None


class Broken:
    async def report(self) -> list[object]:
        raise RuntimeError("secret detail: db password is hunter2")


async def test_unexpected_errors_are_masked_and_logged(
    wiring: Wiring, caplog: pytest.LogCaptureFixture
) -> None:
    wiring.context = replace(wiring.context, status=Broken())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="schema.app"):
        result = await wiring.run("{ projections { name } }")
    assert result.errors
    assert result.errors[0].message == "Unexpected error."
    assert "hunter2" not in str(result.errors[0].formatted)
    assert any("hunter2" in record.getMessage() for record in caplog.records)


async def test_client_errors_are_not_masked(wiring: Wiring) -> None:
    result = await wiring.run('{ accounts(after: "bad") { edges { cursor } } }')
    assert result.errors
    assert "cursor" in result.errors[0].message


def test_limits_do_not_change_the_sdl() -> None:
    from strawberry.printer import print_schema

    strict = Limits(max_query_depth=2, max_aliases=1, introspection=False)
    assert print_schema(build_schema(BANK, strict)) == print_schema(build_schema(BANK))


async def test_extra_extensions_run_on_every_operation(wiring: Wiring) -> None:
    from collections.abc import Iterator

    from strawberry.extensions import SchemaExtension

    seen: list[str] = []

    class Recording(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            yield
            seen.append(self.execution_context.operation_name or "anonymous")

    wiring.schema = build_schema(BANK, extensions=[Recording])
    await wiring.run("query Named { __typename }")
    await wiring.run("{ nothing }")
    assert seen == ["Named", "anonymous"]
