"""Deposits over HTTP with each GraphQL engine: server CPU time per deposit.

``runtime.bootstrap:create_app`` (``STORE=memory``, dev auth) runs under uvicorn once
per engine (``GRAPHQL_ENGINE=tuned|plain``, ``schema/_engine``); the engines
are loaded alternately, ``--runs`` times each, by the same generator as
``bench.http_mutation``. Each run reads the server process's CPU time
(user + system, ``/proc/<pid>/stat``) before and after the load and divides
by the deposits answered: CPU per deposit depends far less on what else the
machine runs than requests per second does, although a busy machine still
raises it (caches, frequency). ``--env NAME=VALUE`` adds a variable to every
server.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.http_mutation import DEPOSIT, SERVER_ENV, VARIABLES, check_deposit, open_accounts
from bench.idle import cpu_seconds
from bench.loadgen import ensure_wrk, lua_script, run_httpx, run_wrk
from bench.servers import uvicorn_server

ENGINES = ("tuned", "plain")


@dataclass(frozen=True)
class Run:
    engine: str
    deposits: int
    cpu_us_per_deposit: float
    requests_per_s: float


def server_cpu(pid: int) -> float:
    """User plus system CPU seconds of the server process (and any children) so far."""
    return sum(cpu_seconds([pid]).values())


def build_parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        description=(__doc__ or "").strip().splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    result.add_argument("--runs", type=int, default=3, help="alternated runs per engine")
    result.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    result.add_argument("--connections", type=int, default=8, help="open HTTP connections")
    result.add_argument("--accounts", type=int, default=20, help="accounts deposits rotate over")
    result.add_argument("--env", action="append", default=[], help="NAME=VALUE for every server")
    result.add_argument("--engines", nargs="+", default=list(ENGINES), help="engines to compare")
    return result


async def one_run(engine: str, args: argparse.Namespace, wrk: str | None) -> Run:
    extra = dict(item.split("=", 1) for item in args.env)
    env = {**SERVER_ENV, **extra, "GRAPHQL_ENGINE": engine}
    with uvicorn_server("runtime.bootstrap:create_app", env=env, factory=True) as server:
        ids = await open_accounts(server.url, args.accounts)
        await check_deposit(server.url, ids[0])
        script = lua_script(DEPOSIT, VARIABLES, ids)
        warm = max(args.seconds / 5, 1.0)
        if wrk is not None:
            await asyncio.to_thread(
                run_wrk, wrk, server.url, script, connections=args.connections, seconds=warm
            )
        before = server_cpu(server.pid)
        if wrk is not None:
            result = await asyncio.to_thread(
                run_wrk,
                wrk,
                server.url,
                script,
                connections=args.connections,
                seconds=args.seconds,
            )
        else:
            result = await run_httpx(
                server.url,
                DEPOSIT,
                VARIABLES,
                ids,
                connections=args.connections,
                seconds=args.seconds,
            )
        used = server_cpu(server.pid) - before
    answered = max(result.requests - result.bad_responses, 1)
    return Run(engine, answered, used / answered * 1e6, result.requests_per_s)


async def run(args: argparse.Namespace) -> list[Run]:
    wrk = ensure_wrk()
    runs: list[Run] = []
    for _ in range(args.runs):
        for engine in args.engines:
            runs.append(await one_run(engine, args, wrk))
            last = runs[-1]
            print(
                f"{engine}: {last.cpu_us_per_deposit:.0f} us CPU per deposit, "
                f"{last.requests_per_s:.0f} req/s ({last.deposits} deposits)",
                flush=True,
            )
    return runs


def summary(runs: Sequence[Run], engines: Sequence[str]) -> str:
    lines = ["| engine | server CPU per deposit (median) | requests/s (median) | runs |"]
    lines.append("|---|---|---|---|")
    for engine in engines:
        mine = [r for r in runs if r.engine == engine]
        cpu = statistics.median(r.cpu_us_per_deposit for r in mine)
        rate = statistics.median(r.requests_per_s for r in mine)
        lines.append(f"| {engine} | {cpu:.0f} us | {rate:.0f} | {len(mine)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runs = asyncio.run(run(args))
    print(summary(runs, args.engines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
