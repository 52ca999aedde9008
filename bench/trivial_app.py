"""The ceiling of the HTTP stack: a trivial strawberry mutation on Starlette.

It accepts the same GraphQL request as the service's ``deposit`` mutation
(``AmountInput`` in, ``AccountResult`` union out, same field names) but only
counts versions in a dict: what is left of a request's cost is strawberry,
Starlette and uvicorn. Served with
the same uvicorn settings as ``server.py`` (``bench/servers.py``).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

_versions: dict[str, int] = {}


@strawberry.input
class AmountInput:
    account_id: strawberry.ID
    amount: str
    command_id: str | None = None
    expected_version: int | None = None


@strawberry.type
class AccountPayload:
    account_id: strawberry.ID
    version: int
    position: int | None
    duplicate: bool


@strawberry.type
class InvalidInput:
    message: str
    field: str


AccountResult = Annotated[AccountPayload | InvalidInput, strawberry.union("AccountResult")]


@strawberry.type
class Query:
    @strawberry.field
    def ok(self) -> bool:
        return True


@strawberry.type
class Mutation:
    @strawberry.mutation
    def deposit(self, input: AmountInput) -> AccountResult:
        """Count the deposit; no parsing, no storage, no events."""
        if not input.amount:
            return InvalidInput(message="amount is empty", field="amount")
        account_id = str(input.account_id)
        version = _versions.get(account_id, 1) + 1
        _versions[account_id] = version
        return AccountPayload(
            account_id=input.account_id, version=version, position=None, duplicate=False
        )


# The service's schema caches parsed and validated documents; so does the ceiling.
schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[partial(ParserCache, maxsize=256), partial(ValidationCache, maxsize=256)],
)
app = Starlette(routes=[Route("/graphql", GraphQL(schema), methods=["GET", "POST"])])
