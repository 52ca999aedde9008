"""Run every benchmark at its default size and write BENCHMARKS.md (``make bench``).

Each benchmark rewrites only its own section of the file, so a failing one
leaves the others' figures in place; failures are reported at the end and
make the exit status non-zero. ``--only`` picks benchmarks; ``--quick`` runs
each at its reduced size (``QUICK`` in the module), which is what the smoke
test uses, and is not meant for published figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.report import DEFAULT_PATH, emit

BENCHMARKS = (
    "standard_workload",
    "rehydrate",
    "projection_rebuild",
    "http_mutation",
    "subscriptions",
    "idle",
    "roundtrips",
)


def build_parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    result.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    result.add_argument("--quick", action="store_true", help="reduced sizes (smoke test)")
    result.add_argument("--output", type=Path, default=DEFAULT_PATH)
    result.add_argument("--no-write", action="store_true", help="print only")
    return result


def run_one(name: str, args: argparse.Namespace) -> bool:
    """Run benchmark ``name``; whether it succeeded."""
    module = importlib.import_module(f"bench.{name}")
    argv = list(module.QUICK) if args.quick else []
    options = module.build_parser().parse_args(argv)
    print(f"== bench.{name} {' '.join(argv)}", flush=True)
    try:
        section = asyncio.run(module.run(options))
    except Exception:
        traceback.print_exc()
        return False
    emit(section, None if args.no_write else args.output)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    failed = [name for name in args.only if not run_one(name, args)]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
