"""The committed schema/schema.graphql equals the code (regenerate: python -m schema.export),
and every name of the public contract frontends rely on is in the built schema.
"""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)

from schema._engine.extensions import core_schema
from schema.app import build_schema
from schema.export import BANK, SDL_PATH, sdl

# type -> "field:NamedType ..." (object, interface and input types)
FIELDS = {
    "Account": "id:ID owner:String currency:String balance:Decimal status:AccountStatus "
    "version:Int openedAt:DateTime updatedAt:DateTime statement:StatementConnection",
    "Transfer": "id:ID fromAccountId:ID toAccountId:ID amount:Decimal status:TransferStatus "
    "reason:String version:Int position:Int",
    "Ledger": "currency:String openAccounts:Int totalBalance:Decimal totalDeposited:Decimal "
    "totalWithdrawn:Decimal position:Int",
    "Event": "position:Int streamId:ID version:Int type:String data:JSON recordedAt:DateTime "
    "metadata:EventMetadata",
    "EventMetadata": "commandId:String correlationId:String causationId:String actor:String",
    "ProjectionStatus": "name:String state:String checkpoint:Int head:Int lagEvents:Int "
    "lagSeconds:Float lastError:String",
    "AccountHistoryEntry": "event:Event account:Account",
    "AccountConnection": "edges:AccountEdge pageInfo:PageInfo",
    "AccountEdge": "cursor:String node:Account",
    "TransferConnection": "edges:TransferEdge pageInfo:PageInfo",
    "TransferEdge": "cursor:String node:Transfer",
    "StatementConnection": "edges:StatementEdge pageInfo:PageInfo",
    "StatementEdge": "cursor:String node:StatementEntry",
    "EventConnection": "edges:EventEdge pageInfo:PageInfo",
    "EventEdge": "cursor:String node:Event",
    "PageInfo": "hasNextPage:Boolean endCursor:String hasPreviousPage:Boolean startCursor:String",
    "Node": "id:ID",
    "AccountPayload": "account:Account version:Int position:Int",
    "TransferPayload": "transfer:Transfer version:Int position:Int",
    "Error": "message:String",
    "InsufficientFunds": "message:String",
    "AccountNotFound": "message:String",
    "AccountClosed": "message:String",
    "TransferNotFound": "message:String",
    "ConcurrencyConflict": "message:String actualVersion:Int",
    "InvalidInput": "message:String field:String",
    "Forbidden": "message:String",
    "OpenAccountInput": "owner:String currency:String commandId:String",
    "AmountInput": "accountId:ID amount:Decimal commandId:String expectedVersion:Int",
    "CloseAccountInput": "accountId:ID commandId:String expectedVersion:Int",
    "RequestTransferInput": "fromAccountId:ID toAccountId:ID amount:Decimal commandId:String",
}

# "Root.field" -> "argument ..." (and the result's named type after "->")
OPERATIONS = {
    "Mutation.openAccount": "input -> AccountResult",
    "Mutation.deposit": "input -> AccountResult",
    "Mutation.withdraw": "input -> AccountResult",
    "Mutation.closeAccount": "input -> AccountResult",
    "Mutation.requestTransfer": "input -> TransferResult",
    "Query.account": "id atVersion asOf consistency -> Account",
    "Query.accounts": "first after last before owner consistency -> AccountConnection",
    "Query.transfer": "id consistency -> Transfer",
    "Query.transfers": "first after last before status accountId consistency -> TransferConnection",
    "Query.node": "id -> Node",
    "Query.ledger": "consistency -> Ledger",
    "Query.events": "after first streamId types -> EventConnection",
    "Query.accountHistory": "id -> AccountHistoryEntry",
    "Query.projections": " -> ProjectionStatus",
    "Account.statement": "first after last before -> StatementConnection",
    "Subscription.events": "after streamId types -> Event",
    "Subscription.accountChanged": "id -> Account",
    "Subscription.transferChanged": "id -> Transfer",
    "Subscription.ledgerChanged": " -> Ledger",
}

ERRORS = "InsufficientFunds AccountNotFound AccountClosed TransferNotFound ConcurrencyConflict "
ERRORS += "InvalidInput Forbidden"
UNIONS = {
    "AccountResult": "AccountPayload " + ERRORS,
    "TransferResult": "TransferPayload " + ERRORS,
}
ENUMS = {
    "AccountStatus": "OPEN CLOSED",
    "TransferStatus": "REQUESTED DEBITED COMPLETED FAILED NEEDS_ATTENTION",
}
SCALARS = ("Decimal", "DateTime", "JSON")


def test_committed_sdl_equals_the_code() -> None:
    committed = SDL_PATH.read_text(encoding="utf-8")
    assert committed == sdl(), "schema changed: run `python -m schema.export` and commit"


def _graphql_schema() -> GraphQLSchema:
    built = core_schema(build_schema(BANK))
    assert isinstance(built, GraphQLSchema)
    return built


def _type(schema: GraphQLSchema, name: str) -> GraphQLNamedType:
    found = schema.get_type(name)
    assert found is not None, f"type {name} is missing"
    return found


def _fields_of(schema: GraphQLSchema, name: str) -> dict[str, str]:
    kind = _type(schema, name)
    assert isinstance(kind, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType)
    return {field: get_named_type(spec.type).name for field, spec in kind.fields.items()}


def _field(schema: GraphQLSchema, path: str) -> GraphQLField:
    owner, name = path.split(".")
    kind = _type(schema, owner)
    assert isinstance(kind, GraphQLObjectType), owner
    assert name in kind.fields, f"{path} is missing"
    found: GraphQLField = kind.fields[name]
    return found


def test_public_contract_names_are_present() -> None:
    """Types and their fields; the tests below cover arguments, unions, enums, scalars."""
    schema = _graphql_schema()
    for name, spec in FIELDS.items():
        present = _fields_of(schema, name)
        for item in spec.split():
            field, type_name = item.split(":")
            assert present.get(field) == type_name, f"{name}.{field}: {type_name} expected"


def test_operations_take_their_arguments() -> None:
    schema = _graphql_schema()
    for path, spec in OPERATIONS.items():
        arguments, result = spec.split("->")
        field = _field(schema, path)
        for argument in arguments.split():
            assert argument in field.args, f"{path}({argument}) is missing"
        assert get_named_type(field.type).name == result.strip(), path


def test_errors_share_the_interface_and_unions_hold_them() -> None:
    schema = _graphql_schema()
    for name in ERRORS.split():
        kind = _type(schema, name)
        assert isinstance(kind, GraphQLObjectType)
        assert "Error" in {interface.name for interface in kind.interfaces}, name
    for union, members in UNIONS.items():
        kind = _type(schema, union)
        assert isinstance(kind, GraphQLUnionType)
        assert set(members.split()) <= {member.name for member in kind.types}, union


def test_accounts_and_transfers_are_relay_nodes() -> None:
    schema = _graphql_schema()
    for name in ("Account", "Transfer"):
        kind = _type(schema, name)
        assert isinstance(kind, GraphQLObjectType)
        assert "Node" in {interface.name for interface in kind.interfaces}, name


def test_enums_and_scalars() -> None:
    schema = _graphql_schema()
    for name, values in ENUMS.items():
        kind = _type(schema, name)
        assert isinstance(kind, GraphQLEnumType)
        assert set(kind.values) == set(values.split()), name
    for name in SCALARS:
        _type(schema, name)
