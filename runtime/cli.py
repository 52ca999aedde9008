"""``ledger``: the service's command line (also ``python -m runtime``).

Every subcommand reads the same settings as the server (environment variables
and an optional .env; see the README's configuration table). Without
``MONGODB_URL`` it uses the embedded development database under ``DATA_DIR``:
it attaches to the one a running ``make run`` started, or starts it for the
duration of the command. The commands start the service's pieces through
``runtime.bootstrap.start_components`` (without the HTTP API), run, and stop them.

Sections: the arguments and --help texts; ``events tail`` (the global event log, one
line per event); ``seed`` (demo data); the commands and ``main``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from application.service import ApplicationService, CommandContext
from domain.accounts import Deposit, OpenAccount, Withdraw
from domain.money import parse_amount
from domain.transfers import RequestTransfer
from runtime.database import DatabaseUnreachable
from runtime.logging import configure_logging
from runtime.operations import UnknownProjection
from runtime.settings import Settings, SettingsError, load_settings
from store.protocol import EventStore, RecordedEvent

if TYPE_CHECKING:  # imported when a command runs, so that --help stays fast
    from runtime.bootstrap import Components

log = logging.getLogger(__name__)


# -- arguments ----------------------------------------------------------------------

DESCRIPTION = """\
Run and operate the ledger service: an event-sourced bank ledger with a
GraphQL API. Start it with `ledger serve`, then open http://127.0.0.1:8000/graphql.

Configuration comes from environment variables (or a .env file): PORT, HOST,
MONGODB_URL (unset: an embedded development database under DATA_DIR), ...
"""

EPILOG = """\
examples:
  ledger serve                       start the service (same as `make run`)
  ledger seed                        add demo accounts and transfers
  ledger events tail --after 0       print every event, then follow new ones
  ledger projections status          how far behind each read model is
  ledger projections rebuild accounts
                                     rebuild one read model from all events
  ledger projections retry ledger    resume a consumer stopped on a failing event
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledger",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_arguments(commands)
    _seed_arguments(commands)
    _events_arguments(commands)
    _projections_arguments(commands)
    return parser


def _serve_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="start the HTTP/GraphQL server",
        description="Start the service in the foreground (Ctrl-C stops "
        "it cleanly). GraphiQL is at http://HOST:PORT/graphql.",
    )
    serve.add_argument("--host", help="address to listen on (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT or 8000)")


def _seed_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    seed = commands.add_parser(
        "seed",
        help="create demo accounts and transfers",
        description="Create five demo accounts with deposits and a few "
        "transfers, so GraphiQL has something to show. Safe to run "
        "again: it changes nothing the second time.",
    )
    seed.add_argument(
        "--wait",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="how long to wait for the transfers to settle (default 20)",
    )


def _events_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = commands.add_parser(
        "events",
        help="read the global event log",
        description="Read the event log in its global order.",
    )
    actions = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    tail = actions.add_parser(
        "tail",
        help="print events, one line each, and follow",
        description="Print each event as one line: position, time, "
        "stream@version, type, data. Keeps following new events "
        "until Ctrl-C unless --no-follow is given.",
    )
    tail.add_argument(
        "--after",
        type=int,
        default=None,
        metavar="N",
        help="start after global position N (default: only new events)",
    )
    tail.add_argument(
        "--no-follow",
        action="store_true",
        help="stop at the end of the log instead of waiting for more",
    )
    tail.add_argument(
        "--limit", type=int, default=None, metavar="N", help="stop after printing N events"
    )
    tail.add_argument("--json", action="store_true", help="print JSON objects instead of text")


def _projections_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    projections = commands.add_parser(
        "projections",
        help="inspect, rebuild or retry read models",
        description="Read models (projections) and the transfer "
        "process manager are consumers of the event log.",
    )
    actions = projections.add_subparsers(
        dest="projections_command", required=True, metavar="ACTION"
    )
    status = actions.add_parser("status", help="checkpoint, lag and state of every consumer")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rebuild = actions.add_parser(
        "rebuild",
        help="rebuild one read model from position 0",
        description="Replay every event into a fresh collection while "
        "the old one keeps serving, then swap it in.",
    )
    rebuild.add_argument("name", help="accounts, account_statement, transfers or ledger")
    retry = actions.add_parser(
        "retry",
        help="resume a consumer stopped on a failing event",
        description="A consumer that keeps failing on one event stops there "
        "(state stopped_on_error in `ledger projections status`) and never "
        "skips it. After fixing the cause, this asks it to try that event "
        "again; the request is stored in the database, so the server process "
        "running the consumer picks it up. Exits 1 for an unknown NAME.",
    )
    retry.add_argument(
        "name", help="accounts, account_statement, transfers, ledger or transfer_manager"
    )


# -- events tail --------------------------------------------------------------------

BATCH = 500  # events read per call while tailing


def format_event(event: RecordedEvent) -> str:
    """``<position> <recorded_at> <stream_id>@<version> <type> <data as JSON>``."""
    data = json.dumps(dict(event.data), sort_keys=True, separators=(",", ":"), default=str)
    moment = event.recorded_at.isoformat(timespec="milliseconds")
    return f"{event.position:>8} {moment} {event.stream_id}@{event.version} {event.type} {data}"


def event_json(event: RecordedEvent) -> str:
    return json.dumps(
        {
            "position": event.position,
            "recorded_at": event.recorded_at.isoformat(),
            "stream_id": event.stream_id,
            "stream_type": event.stream_type,
            "version": event.version,
            "type": event.type,
            "schema_version": event.schema_version,
            "data": dict(event.data),
            "command_id": event.metadata.command_id,
            "correlation_id": event.metadata.correlation_id,
        },
        default=str,
    )


async def follow_events(
    store: EventStore,
    out: TextIO,
    *,
    after: int | None = None,
    follow: bool = True,
    limit: int | None = None,
    as_json: bool = False,
    poll_seconds: float = 0.2,
    notices: TextIO | None = None,
) -> int:
    """Print events after ``after`` (default: the current head) in global order.

    Stops at the end of the log when ``follow`` is false, after ``limit``
    events when given, else runs until cancelled. Returns the events printed.
    Each time it reaches the end of the log and starts waiting, it says so
    once on ``notices`` (the CLI's stderr), so an operator knows it is alive.
    """
    position = await store.head_position() if after is None else max(after, 0)
    log.info("following events after position %s", position)
    printed = 0
    waiting = False
    while limit is None or printed < limit:
        wanted = BATCH if limit is None else min(BATCH, limit - printed)
        batch = await store.read_all(position, wanted)
        for event in batch:
            out.write((event_json(event) if as_json else format_event(event)) + "\n")
            position = event.position or position
        printed += len(batch)
        out.flush()
        if not batch:
            if not follow:
                break
            if notices is not None and not waiting:
                notices.write(f"waiting for new events after position {position} (Ctrl-C stops)\n")
                notices.flush()
            waiting = True
            await asyncio.sleep(poll_seconds)
        else:
            waiting = False
    return printed


# -- seed ---------------------------------------------------------------------------

# Every id and command id of the demo data is derived from a fixed name, so running
# the seed again changes nothing (the write side answers each repeated command id with
# its first outcome). The transfers cover every path of the process manager: completed
# ones, one refused for lack of funds, one whose credit is refused because the
# currencies differ (debited, refunded, failed).
_NAMESPACE = uuid.UUID("3b0d2c6e-8f43-4c1e-9d0a-5e2f7a9b1c44")
ACCOUNTS = (("alice", "EUR"), ("bob", "EUR"), ("carol", "EUR"), ("dave", "USD"), ("erin", "EUR"))
DEPOSITS = (
    ("alice", "1000.00"),
    ("bob", "250.00"),
    ("carol", "75.50"),
    ("dave", "500.00"),
    ("erin", "20.00"),
)
WITHDRAWALS = (("bob", "40.00"),)
TRANSFERS = (
    ("alice", "bob", "120.00"),  # completes
    ("bob", "carol", "30.25"),  # completes
    ("carol", "alice", "10.00"),  # completes
    ("alice", "dave", "5.00"),  # EUR -> USD: debited, credit refused, refunded, failed
    ("erin", "alice", "50.00"),  # insufficient funds: failed at the debit
)
FINAL = frozenset({"COMPLETED", "FAILED"})


def _hex(name: str) -> str:
    return uuid.uuid5(_NAMESPACE, name).hex


def account_id(owner: str) -> str:
    return f"acc-{_hex(f'account/{owner}')}"


def transfer_id(index: int) -> str:
    return f"trf-{_hex(f'transfer/{index}')}"


@dataclass(frozen=True)
class SeedReport:
    accounts: dict[str, str]  # owner -> account id
    commands: int
    duplicates: int
    transfers: dict[str, str]  # transfer id -> final status (or last seen)


def _commands() -> list[tuple[str, object]]:
    """(step name, command) in the order they are sent."""
    steps: list[tuple[str, object]] = []
    steps += [(f"open/{o}", OpenAccount(account_id(o), o, c)) for o, c in ACCOUNTS]
    steps += [(f"deposit/{o}", Deposit(account_id(o), parse_amount(a))) for o, a in DEPOSITS]
    steps += [(f"withdraw/{o}", Withdraw(account_id(o), parse_amount(a))) for o, a in WITHDRAWALS]
    steps += [
        (
            f"transfer/{i}",
            RequestTransfer(transfer_id(i), account_id(s), account_id(t), parse_amount(a)),
        )
        for i, (s, t, a) in enumerate(TRANSFERS)
    ]
    return steps


async def seed(
    service: ApplicationService, transfers_view: Any, *, wait_seconds: float = 20.0
) -> SeedReport:
    """Send the demo commands through ``service``; wait (bounded) for the transfers to settle."""
    duplicates = 0
    steps = _commands()
    for step, command in steps:
        context = CommandContext(
            command_id=f"seed-{_hex(step)}", correlation_id="seed", actor="seed"
        )
        outcome = await service.handle(command, context)
        duplicates += int(outcome.duplicate)
    statuses = await _settle(transfers_view, wait_seconds)
    accounts = {owner: account_id(owner) for owner, _ in ACCOUNTS}
    return SeedReport(accounts, len(steps), duplicates, statuses)


async def _settle(transfers_view: Any, wait_seconds: float) -> dict[str, str]:
    ids = [transfer_id(i) for i in range(len(TRANSFERS))]
    deadline = time.monotonic() + wait_seconds
    while True:
        statuses = {}
        for tid in ids:
            record = await transfers_view.get(tid)
            statuses[tid] = record.status if record is not None else "PENDING"
        if set(statuses.values()) <= FINAL or time.monotonic() >= deadline:
            return statuses
        await asyncio.sleep(0.1)


# -- commands -----------------------------------------------------------------------

Action = Callable[["Components", argparse.Namespace, TextIO], Awaitable[int]]


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


async def _seed(parts: Components, args: argparse.Namespace, out: TextIO) -> int:
    from projections.transfers import TransfersView

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


async def _status(parts: Components, args: argparse.Namespace, out: TextIO) -> int:
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


async def _rebuild(parts: Components, args: argparse.Namespace, out: TextIO) -> int:
    from projections.rebuild import RebuildError

    if parts.retrier.knows(args.name) and args.name not in parts.rebuilder.names:
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


async def _retry(parts: Components, args: argparse.Namespace, out: TextIO) -> int:
    try:
        await parts.retrier.retry(args.name)
    except UnknownProjection as error:
        sys.stderr.write(f"ledger: {error}\n")
        return 1
    rows = [r for r in await parts.status.report() if r.name == args.name]
    state = rows[0].state if rows else "unknown"
    out.write(f"retry requested for {args.name} (state now: {state})\n")
    return 0


async def _tail(parts: Components, args: argparse.Namespace, out: TextIO) -> int:
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
