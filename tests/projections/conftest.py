"""Document stores for the projection tests: in memory and on the embedded MongoDB."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from projections.documents import DocumentStore, InMemoryDocumentStore
from projections.documents_mongo import MongoDocumentStore


@pytest.fixture(params=["memory", "mongo"])
def documents(request: pytest.FixtureRequest) -> DocumentStore:
    if request.param == "memory":
        return InMemoryDocumentStore()
    database: AsyncDatabase[dict[str, Any]] = request.getfixturevalue("mongo_db")
    return MongoDocumentStore(database, alias_ttl=0.0)
