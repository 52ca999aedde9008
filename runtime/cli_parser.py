"""The ``ledger`` command line's arguments and --help texts (see ``runtime.cli``)."""

from __future__ import annotations

import argparse

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
    _serve(commands)
    _seed(commands)
    _events(commands)
    _projections(commands)
    return parser


def _serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="start the HTTP/GraphQL server",
        description="Start the service in the foreground (Ctrl-C stops "
        "it cleanly). GraphiQL is at http://HOST:PORT/graphql.",
    )
    serve.add_argument("--host", help="address to listen on (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT or 8000)")


def _seed(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _events(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _projections(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
