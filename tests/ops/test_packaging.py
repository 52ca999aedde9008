"""Packaging: one supported Python range everywhere, every import a declared dependency.

The lock itself is checked by ``make lock-check`` (``uv lock --check``), which
CI runs first: it fails when pyproject.toml and uv.lock disagree.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.ops.project_files import ROOT, project, supported_pythons

FIRST_PARTY = {"domain", "store", "application", "projections", "schema", "runtime", "server"}
RUNTIME_CODE = ["domain", "store", "application", "projections", "schema", "runtime", "server.py"]


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503)."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _declared(*extras: str) -> set[str]:
    table = project()
    names = {_name(r) for r in table["dependencies"]}
    for extra in extras:
        names |= {_name(r) for r in table["optional-dependencies"][extra]}
    return names


def _python_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files += [ROOT / path] if path.endswith(".py") else sorted((ROOT / path).rglob("*.py"))
    return files


def _imported_modules(paths: list[str]) -> set[str]:
    """Top-level names of every absolute import under ``paths`` (functions' imports too)."""
    found: set[str] = set()
    for file in _python_files(paths):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def _undeclared(paths: list[str], declared: set[str], first_party: set[str]) -> list[str]:
    distributions = packages_distributions()
    missing = []
    for module in sorted(_imported_modules(paths) - first_party - set(sys.stdlib_module_names)):
        owners = {_name(d) for d in distributions.get(module, [module])}
        if not owners & declared:
            missing.append(f"{module} (from {', '.join(sorted(owners))})")
    return missing


def test_supported_versions_are_3_11_to_3_13() -> None:
    assert supported_pythons() == ["3.11", "3.12", "3.13"]


def test_requires_python_is_the_tested_range() -> None:
    versions = supported_pythons()
    newest_minor = int(versions[-1].split(".")[1])
    assert project()["requires-python"] == f">={versions[0]},<3.{newest_minor + 1}"


def test_this_interpreter_is_a_supported_one() -> None:
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in supported_pythons()


def test_readme_makefile_and_ci_name_the_same_versions() -> None:
    versions = supported_pythons()
    listed = ", ".join(versions[:-1]) + f" and {versions[-1]}"
    assert f"Python {listed}" in (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^PYTHONS := {' '.join(versions)}$", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"find-python {versions[0]}" in ci
    assert f"for version in {' '.join(versions[1:])}; do" in ci


def test_strawberry_is_pinned_exactly() -> None:
    # The schema layer relies on strawberry's internals: an upgrade is a deliberate change.
    pins = [r for r in project()["dependencies"] if _name(r) == "strawberry-graphql"]
    assert len(pins) == 1
    assert re.fullmatch(r"strawberry-graphql==[\d.]+", pins[0].replace(" ", ""))


@pytest.mark.parametrize(
    ("paths", "extras"),
    # otel: runtime/tracing.py imports it when installed (the optional extra).
    [(RUNTIME_CODE, ("otel",)), (["tests"], ("dev",)), (["bench"], ("bench",))],
    ids=["runtime", "tests", "bench"],
)
def test_every_imported_package_is_declared(paths: list[str], extras: tuple[str, ...]) -> None:
    first_party = FIRST_PARTY | {"tests", "bench", "docs"}
    assert _undeclared(paths, _declared(*extras), first_party) == []


def test_the_check_sees_an_undeclared_import() -> None:
    assert _undeclared(["domain"], set(), FIRST_PARTY) == []  # domain/ imports nothing of theirs
    assert _undeclared(["schema"], set(), FIRST_PARTY)  # graphql, strawberry, cross_web...
