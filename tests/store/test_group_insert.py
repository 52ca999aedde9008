"""Group commit in ``MongoEventStore``: concurrent appends share insert commands.

On the embedded server, with PyMongo's async client and with Motor. Every
append keeps the outcome it would have had alone: a stale version is a
conflict, a reused command id a duplicate, a document the driver cannot
encode fails only its own append, and an append cancelled before its
command was sent is not stored.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson.errors import InvalidDocument

from store.driver import close_client
from store.mongo_events import MongoEventStore
from store.protocol import CommitMetadata, ConcurrencyError, DuplicateCommandError, NewEvent
from tests.store.mongo_backends import make_client


@pytest.fixture(params=["pymongo", "motor"])
async def store(request: pytest.FixtureRequest, mongo_url: str) -> AsyncIterator[MongoEventStore]:
    client = make_client(request.param, mongo_url)
    try:
        made = MongoEventStore(client[f"t_{uuid.uuid4().hex[:12]}"])
        await made.ensure_indexes()
        yield made
    finally:
        await close_client(client)


def event(n: int, **data: Any) -> list[NewEvent]:
    return [NewEvent(f"e-{uuid.uuid4().hex}", "Happened", {"n": n, **data})]


async def outcome(task: asyncio.Future[Any]) -> str:
    try:
        await task
    except ConcurrencyError:
        return "conflict"
    except DuplicateCommandError:
        return "duplicate"
    except InvalidDocument:
        return "invalid"
    return "stored"


async def test_concurrent_appends_share_commands_and_keep_their_own_outcomes(
    store: MongoEventStore,
) -> None:
    await store.append("taken", "t", 0, event(0))
    await store.append("used", "t", 0, event(0), CommitMetadata(command_id="cmd-used"))
    sent_before = store.inserts.commands
    appends = [store.append(f"s-{n}", "t", 0, event(n)) for n in range(20)]
    appends.append(store.append("taken", "t", 0, event(1)))  # version 1 is taken
    appends.append(store.append("other", "t", 0, event(2), CommitMetadata(command_id="cmd-used")))
    outcomes = await asyncio.gather(*(outcome(asyncio.ensure_future(a)) for a in appends))

    assert outcomes == ["stored"] * 20 + ["conflict", "duplicate"]
    for n in range(20):
        [stored] = await store.read_stream(f"s-{n}")
        assert (stored.version, stored.data["n"]) == (1, n)
    assert await store.stream_version("other") == 0
    assert [e.data["n"] for e in await store.read_stream("taken")] == [0]
    # 22 appends, all waiting before the sender's first turn: one command.
    assert store.inserts.commands - sent_before == 1


async def test_a_document_the_driver_cannot_encode_fails_only_its_own_append(
    store: MongoEventStore,
) -> None:
    appends = [store.append(f"s-{n}", "t", 0, event(n)) for n in range(5)]
    appends.insert(3, store.append("bad", "t", 0, event(9, odd={1, 2})))  # a set: not BSON
    outcomes = await asyncio.gather(*(outcome(asyncio.ensure_future(a)) for a in appends))

    assert outcomes == ["stored"] * 3 + ["invalid"] + ["stored"] * 2
    assert await store.stream_version("bad") == 0
    for n in range(5):
        assert await store.stream_version(f"s-{n}") == 1


async def test_an_append_cancelled_before_its_command_is_sent_is_not_stored(
    store: MongoEventStore,
) -> None:
    first = asyncio.create_task(store.append("first", "t", 0, event(1)))
    await asyncio.sleep(0)  # its command is on its way: the next append has to wait
    second = asyncio.create_task(store.append("second", "t", 0, event(2)))
    await asyncio.sleep(0)
    second.cancel()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second
    assert await store.stream_version("first") == 1
    assert await store.stream_version("second") == 0


async def test_an_append_alone_is_sent_at_once_in_one_insert(store: MongoEventStore) -> None:
    sent_before = store.inserts.commands
    for n in range(1, 4):
        await store.append("alone", "t", n - 1, event(n))
    assert store.inserts.commands - sent_before == 3
    assert [e.version for e in await store.read_stream("alone")] == [1, 2, 3]
