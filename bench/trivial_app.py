"""The ceiling of the HTTP stack: a trivial strawberry mutation on Starlette.

It parses the same GraphQL request as the service's ``deposit`` mutation and
answers with a payload of the same size, but keeps balances in a dict: what
is left of a request's cost is strawberry, Starlette and uvicorn. Served with
the same uvicorn settings as ``server.py`` (``bench/servers.py``).
"""

from __future__ import annotations

import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL

_balances: dict[str, int] = {}


@strawberry.input
class DepositInput:
    account_id: strawberry.ID
    amount: str
    command_id: str | None = None


@strawberry.type
class AccountPayload:
    id: strawberry.ID
    balance: str
    version: int


@strawberry.type
class DepositSucceeded:
    account: AccountPayload
    version: int


@strawberry.type
class Query:
    @strawberry.field
    def ok(self) -> bool:
        return True


@strawberry.type
class Mutation:
    @strawberry.mutation
    def deposit(self, input: DepositInput) -> DepositSucceeded:
        minor = round(float(input.amount) * 100)  # a toy: the real service never uses floats
        balance = _balances.get(str(input.account_id), 0) + minor
        _balances[str(input.account_id)] = balance
        account = AccountPayload(id=input.account_id, balance=f"{balance / 100:.2f}", version=1)
        return DepositSucceeded(account=account, version=1)


schema = strawberry.Schema(query=Query, mutation=Mutation)
app = Starlette(routes=[Route("/graphql", GraphQL(schema), methods=["GET", "POST"])])
