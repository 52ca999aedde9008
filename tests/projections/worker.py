"""A consumer process for the multi-process tests: ``python -m tests.projections.worker``.

Runs every standard consumer (and a sequencer) against one database until
SIGTERM/SIGINT, then stops cleanly and releases its leases. A SIGKILL leaves
its leases to expire, as a crashed server would.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

from pymongo import AsyncMongoClient

from projections.consumer import ConsumerGroup, ConsumerSettings, consumer_group
from projections.projector import ConsumerDeps
from tests.projections.mongo_world import mongo_world
from tests.wiring import EVENTS, READ_SIDES, World


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--owner", required=True)
    parser.add_argument("--lease-ttl", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--checkpoint-interval", type=float, default=ConsumerSettings().checkpoint_interval
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(args.url)
    settings = ConsumerSettings(
        batch_size=args.batch_size,
        checkpoint_interval=args.checkpoint_interval,
        poll_interval=0.05,
        lease_ttl=args.lease_ttl,
        max_attempts=3,
        backoff_initial=0.01,
        backoff_max=0.2,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with mongo_world(client[args.database]) as world:
            group = _group(world, settings, args.owner)
            group.start()
            try:
                await stop.wait()
            finally:
                await group.stop()
    finally:
        await client.close()


def _group(world: World, settings: ConsumerSettings, owner: str) -> ConsumerGroup:
    deps = ConsumerDeps(world.documents, world.store, EVENTS, sender=world.service)
    handlers = READ_SIDES.handlers(deps)
    return consumer_group(
        handlers, world.store, world.checkpoints, world.leases, settings=settings, owner=owner
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(parse()))
