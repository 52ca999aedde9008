"""Command-line plumbing shared by the benchmark modules.

Every benchmark module offers ``add_arguments(parser)`` (its sizes, with the
plan's defaults), ``async run(args) -> Section`` and ``main(argv)``; this
module holds the common options (``--runs``, ``--output``, ``--no-write``) and
the ``main`` body, so ``python -m bench.<name>`` and ``bench.run_all`` behave
alike.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from bench.report import DEFAULT_PATH, Section, emit

Runner = Callable[[argparse.Namespace], Coroutine[Any, Any, Section]]


def parser(description: str | None, *, runs: int) -> argparse.ArgumentParser:
    """A parser with the common options; ``runs`` is this benchmark's default."""
    result = argparse.ArgumentParser(
        description=(description or "").strip().splitlines()[0] if description else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_common(result, runs=runs)
    return result


def add_common(target: argparse.ArgumentParser, *, runs: int) -> None:
    target.add_argument(
        "--runs", type=int, default=runs, help="alternated runs per contender (median taken)"
    )
    target.add_argument("--output", type=Path, default=DEFAULT_PATH, help="Markdown file to update")
    target.add_argument(
        "--no-write", action="store_true", help="print the figures, leave the file alone"
    )


def main(
    build: Callable[[], argparse.ArgumentParser], run: Runner, argv: Sequence[str] | None
) -> int:
    args = build().parse_args(argv)
    section = asyncio.run(run(args))
    emit(section, None if args.no_write else args.output)
    return 0
