"""The README's example operations are valid against the real schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import parse, validate

from schema._engine.extensions import core_schema
from schema.app import build_schema
from schema.export import BANK

README = Path(__file__).resolve().parents[2] / "README.md"


def graphql_blocks() -> list[str]:
    return re.findall(r"```graphql\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_shows_example_operations() -> None:
    assert len(graphql_blocks()) >= 4


@pytest.mark.parametrize("block", graphql_blocks())
def test_each_example_operation_validates(block: str) -> None:
    schema = core_schema(build_schema(BANK))
    for operation in re.split(r"\n(?=mutation|query|subscription)", block.strip()):
        errors = validate(schema, parse(operation))
        assert not errors, f"{operation}\n{errors}"
