"""How many of the service's source modules one deposit passes through.

The real application (``runtime.bootstrap.create_app`` on the in-memory store) is served
in this process by uvicorn; one WebSocket client subscribes to
``accountChanged`` of an account and one HTTP client sends deposits to it. A
first deposit warms every path up; for the second, ``sys.setprofile`` records
each Python function called, from sending the mutation until the subscriber
has received the account's new version: the request, the command, the store,
the consumers and projector, the live read model and the subscription. The
modules those functions belong to are the deposit path.

Source modules are the ``.py`` files of domain/, store/, application/,
projections/, schema/, runtime/ and server.py, empty ``__init__.py`` files
excluded. Background work running in the same window (the consumers' polls,
the sequencer) counts too: it is how the change reaches the subscriber.

``python -m bench.modules [--list]`` prints ``deposit path: N of M source modules``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import uvicorn

from bench.wsclient import Subscriber

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("domain", "store", "application", "projections", "schema", "runtime")
ENTRY_POINTS = ("server.py",)
TIMEOUT = 30.0

OPEN = (
    "mutation Open($input: OpenAccountInput!) { openAccount(input: $input) "
    "{ ... on AccountPayload { accountId } } }"
)
DEPOSIT = (
    "mutation Deposit($input: AmountInput!) { deposit(input: $input) "
    "{ ... on AccountPayload { version } } }"
)
WATCH = "subscription Watch($id: ID!) { accountChanged(id: $id) { version balance } }"


def source_modules(root: Path = ROOT) -> dict[str, str]:
    """File path -> module name of every source module (see the module docstring)."""
    files = [root / name for name in ENTRY_POINTS]
    for layer in LAYERS:
        files.extend(sorted((root / layer).rglob("*.py")))
    modules: dict[str, str] = {}
    for path in files:
        if path.name == "__init__.py" and not path.read_text(encoding="utf-8").strip():
            continue
        parts = list(path.relative_to(root).with_suffix("").parts)
        modules[str(path)] = ".".join(parts)
    return modules


class CallTrace:
    """The source modules whose functions run while it is active (every thread)."""

    def __init__(self, modules: dict[str, str]) -> None:
        self._modules = modules
        self.seen: set[str] = set()

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            module = self._modules.get(frame.f_code.co_filename)
            if module is not None:
                self.seen.add(module)

    def __enter__(self) -> CallTrace:
        threading.setprofile(self._profile)
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)
        threading.setprofile(None)


async def graphql(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> Any:
    reply = await client.post("/graphql", json={"query": query, "variables": variables})
    reply.raise_for_status()
    body = reply.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


async def deposit_path() -> tuple[set[str], int]:
    """The modules the second of two deposits passes through, and how many modules exist."""
    from runtime.bootstrap import create_app
    from runtime.embedded import free_port
    from runtime.settings import load_settings

    settings = load_settings(None, store="memory", port=free_port())
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=settings.port, log_config=None
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    listening: asyncio.Task[None] | None = None
    try:
        for _ in range(int(TIMEOUT / 0.02)):
            if server.started:
                break
            await asyncio.sleep(0.02)
        else:
            raise TimeoutError("the server did not start")
        base = f"http://127.0.0.1:{settings.port}"
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as client:
            opened = await graphql(client, OPEN, {"input": {"owner": "ann", "currency": "EUR"}})
            account = opened["openAccount"]["accountId"]
            versions: asyncio.Queue[int] = asyncio.Queue()
            subscriber = Subscriber(
                f"ws://127.0.0.1:{settings.port}/graphql",
                WATCH,
                {"id": account},
                lambda payload, _: versions.put_nowait(
                    int(payload["data"]["accountChanged"]["version"])
                ),
            )
            await subscriber.open()
            listening = asyncio.create_task(subscriber.listen())
            modules = source_modules()

            async def deposit() -> None:
                sent = await graphql(
                    client, DEPOSIT, {"input": {"accountId": account, "amount": "1.00"}}
                )
                version = int(sent["deposit"]["version"])
                async with asyncio.timeout(TIMEOUT):
                    while await versions.get() < version:
                        pass

            await deposit()
            with CallTrace(modules) as trace:
                await deposit()
            await subscriber.close()
        return trace.seen, len(modules)
    finally:
        if listening is not None:
            listening.cancel()
        server.should_exit = True
        await asyncio.wait_for(serving, TIMEOUT)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--list", action="store_true", help="print the modules on the path")
    args = parser.parse_args(argv)
    seen, total = asyncio.run(deposit_path())
    print(f"deposit path: {len(seen)} of {total} source modules")
    if args.list:
        print("\n".join(sorted(seen)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
