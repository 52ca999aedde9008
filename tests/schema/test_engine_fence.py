"""Only ``schema/_engine/`` imports non-public strawberry or graphql-core modules.

Every ``.py`` file of the repository is parsed with ``ast``; each import of a
``strawberry`` or ``graphql`` module (at any depth: in functions, under
``TYPE_CHECKING``, ``from strawberry import <submodule>``) must name one of
``PUBLIC`` unless the file is inside ``schema/_engine/``. ``PUBLIC`` is the
modules strawberry documents for users, and graphql-core's top-level package.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "schema" / "_engine"
PRIVATE_ATTRIBUTES = frozenset({"_schema"})
"""Private attributes of framework objects that only the engine may read."""
FRAMEWORKS = ("strawberry", "graphql")
PUBLIC = frozenset(
    {
        "graphql",
        "strawberry",
        "strawberry.aiohttp.views",
        "strawberry.asgi",
        "strawberry.dataloader",
        "strawberry.exceptions",
        "strawberry.extensions",
        "strawberry.extensions.tracing",
        "strawberry.federation",
        "strawberry.fastapi",
        "strawberry.file_uploads",
        "strawberry.http",
        "strawberry.permission",
        "strawberry.printer",
        "strawberry.relay",
        "strawberry.scalars",
        "strawberry.schema.config",
        "strawberry.schema_directive",
        "strawberry.subscriptions",
        "strawberry.tools",
        "strawberry.types",
    }
)
SKIPPED_DIRECTORIES = frozenset({"node_modules", "__pycache__"})


def python_files() -> Iterator[Path]:
    """The repository's own ``.py`` files (no virtualenvs, caches or hidden directories)."""
    stack = [ROOT]
    while stack:
        directory = stack.pop()
        for entry in sorted(directory.iterdir()):
            if entry.is_symlink():
                continue
            if entry.is_dir():
                hidden = entry.name.startswith(".")
                if not hidden and entry.name not in SKIPPED_DIRECTORIES:
                    stack.append(entry)
            elif entry.suffix == ".py":
                yield entry


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def framework_imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every strawberry/graphql module ``tree`` imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if node.module.split(".")[0] in FRAMEWORKS and _is_module(candidate):
                    yield node.lineno, candidate


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for line, module in framework_imports(tree):
        if module.split(".")[0] in FRAMEWORKS and module not in PUBLIC:
            found.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    for node in ast.walk(tree):
        # strawberry.Schema's private graphql-core schema: schema._engine.extensions.core_schema
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE_ATTRIBUTES:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    return found


def test_non_public_framework_modules_are_imported_only_by_the_engine() -> None:
    files = [path for path in python_files() if not path.is_relative_to(ENGINE)]
    assert len(files) > 100  # the walk found the repository
    found = [problem for path in files for problem in violations(path)]
    assert found == [], "non-public strawberry/graphql imports outside schema/_engine/"


def test_the_check_sees_imports_at_any_depth() -> None:
    source = (
        "import strawberry\n"
        "from strawberry import relay, types\n"
        "from graphql import parse\n"
        "def f():\n"
        "    from strawberry.types.base import get_object_definition\n"
        "    import graphql.execution\n"
        "    from strawberry.types import arguments\n"
    )
    modules = {module for _, module in framework_imports(ast.parse(source))}
    hidden = {module for module in modules if module not in PUBLIC}
    assert hidden == {
        "strawberry.types.base",
        "graphql.execution",
        "strawberry.types.arguments",
    }


def test_the_engine_does_use_internals() -> None:
    """The fence is real: the engine package is where the internals are (not nowhere)."""
    inside = [problem for path in ENGINE.rglob("*.py") for problem in violations(path)]
    assert inside
