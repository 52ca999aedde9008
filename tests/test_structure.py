"""The shape of the source tree: no import cycles, dependencies point inward, no shims.

Read from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` of one of our modules counts, wherever it is written (at
module level, under ``if TYPE_CHECKING:``, inside a function).
"""

from __future__ import annotations

import ast
import functools
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("domain", "store", "application", "projections", "schema", "runtime", "bench")
ENTRY_POINTS = ("server.py",)
EXAMPLES = ("docs/examples",)

LAYERS: dict[str, frozenset[str]] = {
    "domain": frozenset({"domain"}),
    "store": frozenset({"domain", "store"}),
    "application": frozenset({"domain", "store", "application"}),
    "projections": frozenset({"domain", "store", "application", "projections"}),
    "schema": frozenset({"domain", "store", "application", "projections", "schema"}),
}
"""For each inner layer, the top-level packages its modules may import from."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    """Module name -> file, for every module of ours (tests excluded)."""
    files = [ROOT / name for name in ENTRY_POINTS]
    for folder in (*PACKAGES, *EXAMPLES):
        files.extend(sorted((ROOT / folder).rglob("*.py")))
    return {module_name(path): path for path in files}


MODULES = source_files()


def imported_names(path: Path) -> Iterator[str]:
    """Every module name imported by ``path``, as written (relative ones made absolute)."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            yield origin
            yield from (f"{origin}.{alias.name}" for alias in node.names)


def ours(name: str) -> str | None:
    """The module of ours that importing ``name`` runs last (its longest known prefix)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


@functools.cache
def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = {ours(imported) for imported in imported_names(path)}
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module (each one holds a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One shortest import cycle through the first module of ``component``."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle in {component}")


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The imports between top-level packages (``server`` is one of its own)."""
    packages: dict[str, set[str]] = {}
    for name, targets in graph.items():
        top = name.partition(".")[0]
        packages.setdefault(top, set()).update(t.partition(".")[0] for t in targets)
        packages[top].discard(top)
    return packages


def cycles_in(graph: dict[str, set[str]]) -> list[str]:
    return [" -> ".join(a_cycle(graph, c)) for c in strongly_connected(graph)]


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = cycles_in(graph) + cycles_in(package_graph(graph))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_cycle_finder_reports_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert a_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_dependencies_point_inward() -> None:
    wrong: list[str] = []
    for name, targets in import_graph().items():
        allowed = LAYERS.get(name.partition(".")[0])
        if allowed is None:
            continue
        wrong.extend(
            f"{name} imports {target}"
            for target in sorted(targets)
            if target.partition(".")[0] not in allowed
        )
    assert not wrong, "\n".join(wrong)


SHIM_WORDS = re.compile(
    r"\bused to live|\b(?:was|were|has been|have been) moved\b|\bmoved (?:to|from|here|out)\b"
    r"|\bkept (?:here )?for (?:backwards? )?compatibility|\bre-export",
    re.IGNORECASE,
)


def remarks(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of every comment and docstring in ``path``."""
    with path.open("rb") as source:
        for token in tokenize.tokenize(source.readline):
            if token.type == tokenize.COMMENT:
                yield token.start[0], token.string
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                yield node.body[0].lineno, doc


def test_no_module_re_exports_names_that_moved() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {match.group(0)!r}"
        for path in MODULES.values()
        for line, text in remarks(path)
        if (match := SHIM_WORDS.search(" ".join(text.split()))) is not None
    ]
    assert not found, "\n".join(found)


def test_packages_export_nothing() -> None:
    """An ``__init__`` holds at most a docstring: importers name the defining module."""
    busy = [
        str(path.relative_to(ROOT))
        for path in MODULES.values()
        if path.name == "__init__.py"
        and any(
            not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
            for node in ast.parse(path.read_text(encoding="utf-8")).body
        )
    ]
    assert not busy, busy
