"""The small differences between PyMongo's async API and Motor, in one place.

The Mongo backends accept either a ``pymongo.asynchronous.database.AsyncDatabase``
or a Motor ``AsyncIOMotorDatabase``. Both expose the same awaitable collection
methods we use (``insert_one``, ``find_one``, ``update_one``, ``delete_one``,
``find_one_and_update``, ``create_index``) and a synchronous ``find`` returning a
cursor; they differ in ``to_list`` (Motor wants the length argument) and in
``close()`` (awaited on PyMongo's client, plain on Motor's).
"""

from __future__ import annotations

import inspect
from typing import Any

from pymongo.errors import DuplicateKeyError, PyMongoError

#: A database handle: PyMongo ``AsyncDatabase`` or Motor ``AsyncIOMotorDatabase``.
Database = Any
#: A collection handle of either driver.
Collection = Any
Document = dict[str, Any]

DUPLICATE_KEY = 11000
#: What nx-27017 (the embedded development server) names itself in ``buildInfo``.
EMBEDDED_PROCESS = "nx_27017"


async def to_list(cursor: Any, length: int | None = None) -> list[Document]:
    """Drain ``cursor``; the length is passed positionally, as Motor requires."""
    documents: list[Document] = await cursor.to_list(length)
    return documents


async def close_client(client: Any) -> None:
    """Close a PyMongo async client (awaitable) or a Motor client (synchronous)."""
    outcome = client.close()
    if inspect.isawaitable(outcome):
        await outcome


def is_duplicate_key(error: PyMongoError) -> bool:
    """Whether ``error`` is a duplicate-key failure (11000), whatever its class."""
    return isinstance(error, DuplicateKeyError) or getattr(error, "code", None) == DUPLICATE_KEY


async def is_embedded_server(database: Database) -> bool:
    """Whether ``database`` is served by nx-27017 (its ``buildInfo`` names the process).

    Only for choosing between query shapes that mean the same thing on every
    server: a wrong answer may cost speed, never correctness. MongoDB answers
    ``buildInfo`` to any client and names no process.
    """
    try:
        info: Document = await database.command("buildInfo")
    except PyMongoError:
        return False
    return info.get("process") == EMBEDDED_PROCESS
