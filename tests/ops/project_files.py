"""The project's own metadata, read from pyproject.toml, for tests that keep files in step."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def project() -> dict[str, Any]:
    """The ``[project]`` table of pyproject.toml."""
    table: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return table


def supported_pythons() -> list[str]:
    """The Python versions the project is tested on, oldest first: its version classifiers."""
    found = [
        match.group(1)
        for classifier in project()["classifiers"]
        if (match := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", classifier))
    ]
    return sorted(found, key=lambda version: int(version.split(".")[1]))
