"""``ledger``: the service's command line (also ``python -m runtime``).

Every subcommand reads the same settings as the server (environment variables
and an optional .env; see the README's configuration table). Without
``MONGODB_URL`` it uses the embedded development database under ``DATA_DIR``:
it attaches to the one a running ``make run`` started, or starts it for the
duration of the command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, TextIO

from runtime.cli_parser import build_parser
from runtime.database import DatabaseUnreachable
from runtime.logging import configure_logging
from runtime.settings import Settings, SettingsError, load_settings
from runtime.tail import follow_events

# -- commands ------------------------------------------------------------------------

Action = Callable[[Any, argparse.Namespace, TextIO], Awaitable[int]]


async def _run_with(
    settings: Settings,
    action: Action,
    args: argparse.Namespace,
    out: TextIO,
    *,
    workers: bool,
    sequencer: bool = False,
) -> int:
    """Start the service's pieces (no HTTP), run ``action``, stop everything."""
    from runtime.bootstrap import Monitoring, start_components  # late: --help stays fast

    async with AsyncExitStack() as stack:
        parts = await start_components(
            settings,
            stack,
            Monitoring(),
            workers=workers,
            api=False,
            sequencer=sequencer or workers,
        )
        return await action(parts, args, out)


async def _seed(parts: Any, args: argparse.Namespace, out: TextIO) -> int:
    from projections.readmodels import TransfersView
    from runtime.seed import seed

    report = await seed(
        parts.service, TransfersView(parts.stores.documents), wait_seconds=args.wait
    )
    out.write(
        f"seeded {len(report.accounts)} accounts with {report.commands} commands "
        f"({report.duplicates} already applied before)\n"
    )
    for owner, account in report.accounts.items():
        out.write(f"  account {account}: {owner}\n")
    for tid, state in report.transfers.items():
        out.write(f"  transfer {tid}: {state}\n")
    out.write("try in GraphiQL: { accounts { edges { node { id owner balance } } } }\n")
    return 0


async def _status(parts: Any, args: argparse.Namespace, out: TextIO) -> int:
    rows = await parts.status.report()
    if args.json:
        out.write(json.dumps([_status_dict(r) for r in rows], indent=2) + "\n")
        return 0
    out.write(
        f"{'CONSUMER':<18} {'STATE':<17} {'CHECKPOINT':>10} {'HEAD':>8} "
        f"{'LAG':>6} {'LAG(s)':>8} {'PARKED':>6}  ERROR\n"
    )
    for r in rows:
        out.write(
            f"{r.name:<18} {r.state:<17} {r.checkpoint:>10} {r.head:>8} "
            f"{r.lag_events:>6} {r.lag_seconds:>8.1f} {r.needs_attention:>6}  "
            f"{r.last_error or ''}\n"
        )
    return 0


def _status_dict(row: Any) -> dict[str, object]:
    return {
        key: getattr(row, key)
        for key in (
            "name",
            "state",
            "checkpoint",
            "head",
            "lag_events",
            "lag_seconds",
            "last_error",
            "needs_attention",
        )
    }


async def _rebuild(parts: Any, args: argparse.Namespace, out: TextIO) -> int:
    from projections.catalog import PROCESS_MANAGERS
    from projections.rebuild import RebuildError

    if args.name in PROCESS_MANAGERS:
        known = ", ".join(parts.rebuilder.names)
        sys.stderr.write(
            f"ledger: {args.name!r} is a process manager, not a read model: it sends commands, "
            f"and a rebuild would send them again. Read models that can be rebuilt: {known}\n"
        )
        return 1
    progress = None
    if sys.stderr.isatty():  # a terminal watches; a log file or a pipe gets the result only
        progress = ProgressLine(sys.stderr, args.name, await parts.events.head_position())
    try:
        result = await parts.rebuilder.rebuild(args.name, progress)
    except RebuildError as error:
        sys.stderr.write(f"ledger: {error}\n")
        return 1
    finally:
        if progress is not None:
            progress.end()
    out.write(
        f"rebuilt {result.name}: {result.events} events up to position "
        f"{result.position} in {result.seconds:.2f}s "
        f"({result.old_collection} -> {result.new_collection})\n"
    )
    return 0


class ProgressLine:
    """One self-overwriting line: events done of the head, events/s, time left.

    Redrawn at most every ``every`` seconds; ``end`` finishes the line.
    """

    def __init__(self, stream: TextIO, name: str, head: int, every: float = 0.2) -> None:
        self._stream, self._name, self._head, self._every = stream, name, max(head, 1), every
        self._started = time.monotonic()
        self._drawn = 0.0
        self._position = 0

    def __call__(self, position: int) -> None:
        self._position = position
        now = time.monotonic()
        if now - self._drawn >= self._every:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        done = min(self._position, self._head)
        rate = done / max(now - self._started, 1e-6)
        left = f"{(self._head - done) / rate:,.0f}s left" if rate > 0 else "time left unknown"
        self._stream.write(
            f"\rrebuilding {self._name}: {done:,} of {self._head:,} events "
            f"({done * 100 // self._head}%), {rate:,.0f} events/s, {left}  "
        )
        self._stream.flush()

    def end(self) -> None:
        self._draw(time.monotonic())
        self._stream.write("\n")
        self._stream.flush()


async def _retry(parts: Any, args: argparse.Namespace, out: TextIO) -> int:
    from runtime.operations import UnknownProjection

    try:
        await parts.retrier.retry(args.name)
    except UnknownProjection as error:
        sys.stderr.write(f"ledger: {error}\n")
        return 1
    rows = [r for r in await parts.status.report() if r.name == args.name]
    state = rows[0].state if rows else "unknown"
    out.write(f"retry requested for {args.name} (state now: {state})\n")
    return 0


async def _tail(parts: Any, args: argparse.Namespace, out: TextIO) -> int:
    await follow_events(
        parts.events,
        out,
        after=args.after,
        follow=not args.no_follow,
        limit=args.limit,
        as_json=args.json,
        poll_seconds=parts.settings.poll_interval_seconds,
        notices=sys.stderr,
    )
    return 0


def _dispatch(args: argparse.Namespace) -> tuple[Action, dict[str, bool]]:
    table: dict[tuple[str, str | None], tuple[Action, dict[str, bool]]] = {
        ("seed", None): (_seed, {"workers": True}),
        ("events", "tail"): (_tail, {"workers": False, "sequencer": True}),
        ("projections", "status"): (_status, {"workers": False}),
        ("projections", "rebuild"): (_rebuild, {"workers": False}),
        ("projections", "retry"): (_retry, {"workers": False}),
    }
    sub = getattr(args, "events_command", None) or getattr(args, "projections_command", None)
    return table[(args.command, sub)]


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``ledger`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    overrides: dict[str, Any] = {}
    if args.command == "serve":
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = load_settings(**overrides)
    except SettingsError as error:
        sys.stderr.write(f"ledger: {error}\n")
        return 2
    if args.command == "serve":
        from runtime.bootstrap import serve

        serve(settings)
        return 0
    level = "INFO" if args.verbose else "WARNING"
    configure_logging(level, settings.effective_log_format)
    logging.getLogger("runtime.embedded").setLevel(level)  # the dev-database banner is noise here
    action, flags = _dispatch(args)
    try:
        return asyncio.run(_run_with(settings, action, args, out, **flags))
    except DatabaseUnreachable as error:
        sys.stderr.write(f"ledger: {error}\n")
        return 1
    except KeyboardInterrupt:
        return 130
