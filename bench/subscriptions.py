"""1,000 WebSocket subscribers on accountChanged of one account while 50 deposits/s arrive.

The real server (``python server.py``, configured as ``make run`` starts it) runs on the in-memory
store and on the embedded database (``STORE=mongo`` with its own nx-27017
child, every consumer and the sequencer running: what ``make run`` gives);
one asyncio process (this one) holds every subscriber (``websockets``, the
graphql-transport-ws protocol) and sends the deposits over HTTP on a fixed
schedule. Delivery latency of a message = its receipt by a subscriber minus
the moment the deposit that produced its version was sent (so it includes
the mutation itself, the projector, the feed tail and the WebSocket push).
Subscribers are latest-only: skipped intermediate versions are counted, not
timed. Absolute figures (target p99 < 500 ms; < 1 s from 10,000 subscribers on),
plus messages/s sustained.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import tempfile
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import cli
from bench.harness import percentile
from bench.http_mutation import DEPOSIT, SERVER_ENV, open_accounts
from bench.idle import cpu_seconds as tree_cpu_seconds
from bench.report import Section, table
from bench.servers import RunningServer, service_server
from bench.wsclient import Subscriber

WATCH = "subscription Watch($id: ID!) { accountChanged(id: $id) { version balance } }"


QUICK = ["--subscribers", "5", "--rate", "5", "--seconds", "1", "--runs", "1", "--drain", "5"]
"""Toy sizes for the smoke test (``run_all --quick``)."""


def build_parser() -> argparse.ArgumentParser:
    result = cli.parser(__doc__, runs=3)
    result.add_argument("--subscribers", type=int, default=1000, help="WebSocket subscribers")
    result.add_argument("--rate", type=float, default=50.0, help="deposits per second")
    result.add_argument("--seconds", type=float, default=20.0, help="length of each deposit phase")
    result.add_argument(
        "--store", choices=("both", "memory", "mongo"), default="both",
        help="the server's store (mongo: the embedded nx-27017 it starts)",
    )  # fmt: skip
    result.add_argument("--url", help="use the running server with this GraphQL URL")
    result.add_argument("--server-pid", type=int, default=0, help="its pid, for CPU figures")
    result.add_argument("--drain", type=float, default=15.0, help="max wait for the last version")
    result.add_argument(
        "--accounts", type=int, default=1,
        help="accounts the subscribers watch (subscriber i watches account i mod N) and the "
        "deposits rotate over",
    )  # fmt: skip
    return result


_SLOT = 10_000_000  # receipts and sends are keyed by account slot * _SLOT + version


def key(slot: int, version: int) -> int:
    return slot * _SLOT + version


@dataclass
class Recorder:
    """Receipt times per version (compact arrays: a run can hold a million receipts)."""

    received: dict[int, array[float]] = field(default_factory=dict)
    sent: dict[int, float] = field(default_factory=dict)
    last_seen: list[int] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)  # the account slot of each subscriber
    failures: dict[str, int] = field(default_factory=dict)  # deposits refused, by kind
    messages: int = 0  # every ``next`` message, repeats included
    round_trips: list[float] = field(default_factory=list)  # ms per successful deposit

    def watcher(self, index: int, slot: int = 0) -> Any:
        self.last_seen.append(0)
        self.slots.append(slot)

        def on_next(payload: dict[str, Any], at: float) -> None:
            self.messages += 1
            version = int(payload["data"]["accountChanged"]["version"])
            if version <= self.last_seen[index]:
                return  # not news to this subscriber (a repeat): counted, not timed
            self.received.setdefault(key(slot, version), array("d")).append(at)
            self.last_seen[index] = version

        return on_next

    def reset(self) -> None:
        self.received.clear()
        self.sent.clear()
        self.messages = 0
        self.round_trips.clear()

    def latencies_ms(self) -> list[float]:
        return [
            (at - self.sent[version]) * 1000
            for version, times in self.received.items()
            if version in self.sent
            for at in times
        ]


async def connect_all(
    url: str, accounts: Sequence[str], count: int, recorder: Recorder
) -> list[Any]:
    """Open ``count`` subscribers, 50 handshakes at a time; their listening tasks."""
    gate = asyncio.Semaphore(50)
    subscribers = [
        Subscriber(
            url, WATCH, {"id": accounts[i % len(accounts)]},
            recorder.watcher(i, i % len(accounts)),
        )
        for i in range(count)
    ]  # fmt: skip

    async def open_one(subscriber: Subscriber) -> None:
        async with gate:
            await subscriber.open()

    await asyncio.gather(*(open_one(s) for s in subscribers))
    tasks = [asyncio.create_task(s.listen()) for s in subscribers]
    return [subscribers, tasks]


async def send_deposits(
    url: str, accounts: Sequence[str], args: argparse.Namespace, rec: Recorder
) -> list[int]:
    """Deposits on a fixed schedule (not waiting for replies), rotating over ``accounts``;
    the last version reached per account."""
    total = int(args.rate * args.seconds)
    last = [0] * len(accounts)

    async def deposit(client: httpx.AsyncClient, slot: int) -> None:
        variables = {"input": {"accountId": accounts[slot], "amount": "1.00"}}
        body = {"query": DEPOSIT, "variables": variables}
        sent = time.perf_counter()
        try:
            reply = (await client.post(url, json=body)).json()
        except httpx.HTTPError as error:
            kind = type(error).__name__
            rec.failures[kind] = rec.failures.get(kind, 0) + 1
            return
        result = (reply.get("data") or {}).get("deposit") or {}
        if "version" not in result:
            kind = result.get("__typename") or str(reply.get("errors"))[:80]
            rec.failures[kind] = rec.failures.get(kind, 0) + 1
            return
        version = int(result["version"])
        rec.sent[key(slot, version)] = sent
        rec.round_trips.append((time.perf_counter() - sent) * 1000)
        last[slot] = max(last[slot], version)

    async with httpx.AsyncClient(timeout=30.0) as client, asyncio.TaskGroup() as group:
        start = time.perf_counter()
        for number in range(total):
            await asyncio.sleep(max(0.0, start + number / args.rate - time.perf_counter()))
            group.create_task(deposit(client, number % len(accounts)))
    return last


async def drain(rec: Recorder, final: list[int], seconds: float) -> bool:
    """Wait, bounded, until every subscriber has seen the last version of its account."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(seen >= final[slot] for seen, slot in zip(rec.last_seen, rec.slots, strict=True)):
            return True
        await asyncio.sleep(0.05)
    return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (the embedded database); NaN
    when unknown."""
    if pid <= 0:
        return float("nan")
    return sum(tree_cpu_seconds([pid]).values())


async def one_run(
    url: str, accounts: Sequence[str], args: argparse.Namespace, rec: Recorder, pid: int
) -> dict[str, float]:
    rec.reset()
    rec.failures.clear()
    server_cpu, client_cpu, started = cpu_seconds(pid), time.process_time(), time.perf_counter()
    final = await send_deposits(url.replace("ws://", "http://"), accounts, args, rec)
    drained = await drain(rec, final, args.drain)
    elapsed = time.perf_counter() - started
    latencies = rec.latencies_ms() or [float("nan")]
    fresh = sum(len(times) for v, times in rec.received.items() if v in rec.sent)
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "mutation p50": percentile(rec.round_trips or [float("nan")], 50),
        "mutation p99": percentile(rec.round_trips or [float("nan")], 99),
        "max": max(latencies),
        "messages/s": rec.messages / elapsed,
        "deposits/s": len(rec.sent) / elapsed,
        "seen share": fresh / max(1, _deliverable(rec)),
        "drained": float(drained),
        "server cpu": (cpu_seconds(pid) - server_cpu) / elapsed,
        "client cpu": (time.process_time() - client_cpu) / elapsed,
        "failed deposits": float(sum(rec.failures.values())),
    }


def _deliverable(rec: Recorder) -> int:
    """(subscriber, deposit) pairs where the deposit went to the subscriber's account."""
    per_slot: dict[int, int] = {}
    for sent in rec.sent:
        per_slot[sent // _SLOT] = per_slot.get(sent // _SLOT, 0) + 1
    return sum(per_slot.get(slot, 0) for slot in rec.slots)


def rss_kib(pid: int) -> float:
    """Resident memory of process ``pid`` alone (not its children), KiB; NaN when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@contextlib.contextmanager
def target_server(args: argparse.Namespace, store: str) -> Iterator[RunningServer]:
    """The server under test: one started here, or the running one at ``--url``."""
    if args.url:
        yield RunningServer(url=args.url, pid=args.server_pid)
        return
    with tempfile.TemporaryDirectory(prefix="bench-subscriptions-") as data_dir:
        env = {**SERVER_ENV, "STORE": store, "DATA_DIR": data_dir}
        with service_server(env=env) as server:
            yield server


async def run(args: argparse.Namespace) -> Section:
    raise_file_limit()  # before the server starts: it inherits the limit
    stores = ["memory", "mongo"] if args.store == "both" and not args.url else [args.store]
    section: Section | None = None
    for store in stores:
        part = report(args, store, *await run_on(args, store))
        if section is None:
            section = part
        else:
            section.lines += part.lines
    assert section is not None
    return section


async def run_on(
    args: argparse.Namespace, store: str
) -> tuple[list[dict[str, float]], int, dict[str, int]]:
    rec = Recorder()
    results: list[dict[str, float]] = []
    refused: dict[str, int] = {}
    with target_server(args, store) as server:
        accounts = await open_accounts(server.url, args.accounts)
        await asyncio.sleep(1.0)
        before = rss_kib(server.pid)
        subscribers, tasks = await connect_all(server.ws_url, accounts, args.subscribers, rec)
        await asyncio.sleep(2.0)  # every subscription started and idle
        memory = (rss_kib(server.pid) - before) * 1024 / max(args.subscribers, 1)
        try:
            for _ in range(args.runs):
                results.append(await one_run(server.url, accounts, args, rec, server.pid))
                results[-1]["bytes per idle subscriber"] = memory
                for kind, count in rec.failures.items():
                    refused[kind] = refused.get(kind, 0) + count
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*(s.close() for s in subscribers), return_exceptions=True)
    errors = sum(1 for s in subscribers if s.error)
    return results, errors, refused


STORES = {
    "memory": "STORE=memory",
    "mongo": "STORE=mongo: the embedded nx-27017 it starts, every consumer and the sequencer",
}


def target_p99_ms(subscribers: int) -> float:
    """The p99 delivery target: 500 ms, and 1 s for the 10,000-subscriber run."""
    return 1000.0 if subscribers >= 10_000 else 500.0


def report(
    args: argparse.Namespace,
    store: str,
    results: list[dict[str, float]],
    errors: int,
    refused: dict[str, int],
) -> Section:
    section = Section("subscriptions", "Live subscriptions: accountChanged fan-out")
    section.add(f"### {STORES.get(store, store)}")
    section.add()
    watched = "one account" if args.accounts == 1 else f"{args.accounts} accounts (evenly)"
    section.add(
        f"{args.subscribers} subscribers (one WebSocket each, one asyncio client process) on "
        f"{watched}; {args.rate:g} deposits/s for {args.seconds:g} s per run, {args.runs} runs on "
        f"the same connections; server `python server.py` (as `make run` starts it) with "
        f"{STORES.get(store, store)}. "
        "**The client process shares the machine's cores with the server.** Server CPU "
        "includes the processes it started (the database)."
    )
    section.add()
    rows = []
    target = target_p99_ms(args.subscribers)
    for number, metrics in enumerate(results, 1):
        p99 = metrics["p99"]
        rows.append([
            str(number),
            f"{metrics['p50']:.0f}",
            f"{p99:.0f} ({'MET' if p99 < target else 'MISSED'})",
            f"{metrics['max']:.0f}",
            f"{metrics['mutation p50']:.0f} / {metrics['mutation p99']:.0f}",
            f"{metrics['deposits/s']:.1f}",
            f"{metrics['messages/s']:,.0f}",
            f"{metrics['seen share']:.0%}",
            "yes" if metrics["drained"] else "NO",
            f"{metrics['failed deposits']:.0f}",
            f"{metrics['server cpu']:.0%} / {metrics['client cpu']:.0%}",
        ])  # fmt: skip
    header = (
        "run", "p50 ms", f"p99 ms (target < {target:g})", "max ms",
        "deposit round trip p50 / p99 ms", "deposits/s", "messages/s delivered",
        "versions seen", "all reached last version", "deposits refused", "CPU server / client",
    )  # fmt: skip
    section.lines += table(header, rows)
    section.add()
    section.add(
        "Latency: deposit sent -> a subscriber received the message carrying its version "
        "(versions a latest-only stream skipped are not timed). `versions seen`: share of "
        "(subscriber, deposit) pairs delivered. `messages/s delivered`: every `next` message "
        "over all subscribers, repeats included. CPU: share of one core over the run."
    )
    section.add()
    section.add(
        f"Subscribers that ended with an error: {errors}. Refused deposits: {refused or 0}."
    )
    if results and args.subscribers:
        memory = results[0]["bytes per idle subscriber"]
        section.add()
        section.add(
            f"Server memory per idle subscriber (resident memory of the server process after "
            f"connecting every subscriber and 2 s idle, minus before, over subscribers): "
            f"{memory / 1024:.1f} KiB."
        )
    section.add()
    return section


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
