"""Persisted queries: automatic (APQ, as Apollo Client and urql send them) and trusted documents.

A request names its document by hash in ``extensions.persistedQuery``
(``{"version": 1, "sha256Hash": "<hex>"}``), over POST or GET (Apollo's
``useGETForHashedQueries`` sends cacheable queries as a GET with the hash
only). Modes (``PERSISTED_QUERIES``):

- ``apq`` (default): a hash the service does not hold is answered with the
  error ``PersistedQueryNotFound`` (code ``PERSISTED_QUERY_NOT_FOUND``); the
  client retries with the document and the hash, and the service keeps the
  document once it has parsed and validated (so only a usable document is
  ever stored, and storing one costs its sender a full parse and validation).
  A document whose SHA-256 is not the hash sent is refused.
- ``trusted``: only documents listed in the manifest ``TRUSTED_DOCUMENTS_FILE``
  run; a request naming another hash, or sending a document that is not in
  the manifest, is refused (``PERSISTED_QUERY_NOT_TRUSTED``). Nothing is
  learnt from requests.
- ``off``: ``extensions.persistedQuery`` is refused (``PERSISTED_QUERY_NOT_SUPPORTED``).

The APQ store is an LRU bounded in entries (``APQ_MAX_ENTRIES``) and in the
size of each document (``APQ_MAX_DOCUMENT_BYTES``, larger ones are simply not
kept): memory stays bounded whatever clients send. An anonymous client can
push other clients' documents out of the LRU by registering many valid
documents; the cost to them is one ``PersistedQueryNotFound`` and a retry
with the document, never a wrong answer. Trusted documents live apart from
the LRU and are never evicted.

In trusted mode a schema extension (``TrustedDocumentsOnly``) also refuses,
before validation, any operation over any transport (WebSocket subscriptions
included) whose document text is not in the manifest.

Persisted documents run exactly as sent ones do: the resolved text becomes the
request's ``query`` before execution, so the parser, token, depth, alias and
cost limits and validation all apply.

Manifest formats (JSON), both checked at start-up (every id must be the
SHA-256 of its body):

- Apollo's ``generate-persisted-query-manifest``:
  ``{"format": "apollo-persisted-query-manifest", "version": 1,
  "operations": [{"id": "<sha256>", "name": "...", "type": "query", "body": "..."}]}``
- a plain map, as GraphQL Code Generator's client preset writes
  (``persisted-documents.json``): ``{"<sha256>": "<document>", ...}``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from cross_web import AsyncHTTPRequestAdapter
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from schema.context import Context
from schema.graphql_http import is_request_error

Mode = Literal["apq", "trusted", "off"]
NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
NOT_TRUSTED = "PERSISTED_QUERY_NOT_TRUSTED"
BAD_HASH = "PERSISTED_QUERY_HASH_MISMATCH"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(ValueError):
    """The trusted-documents manifest cannot be used (the message says why)."""


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


class DocumentLRU:
    """Documents by hash, at most ``max_entries``, each at most ``max_document_bytes``."""

    def __init__(self, max_entries: int, max_document_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_document_bytes = max_document_bytes
        self._documents: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._documents)

    def get(self, digest: str) -> str | None:
        document = self._documents.get(digest)
        if document is not None:
            self._documents.move_to_end(digest)
        return document

    def put(self, digest: str, document: str) -> bool:
        """Keep ``document`` (False when it is too large to keep)."""
        if len(document.encode("utf-8")) > self.max_document_bytes:
            return False
        self._documents[digest] = document
        self._documents.move_to_end(digest)
        while len(self._documents) > self.max_entries:
            self._documents.popitem(last=False)
        return True


def load_manifest(path: Path) -> dict[str, str]:
    """The trusted documents of a manifest file (either format above), by SHA-256."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path}: {error}") from None
    if isinstance(data, dict) and data.get("format") == "apollo-persisted-query-manifest":
        if data.get("version") != 1:
            raise ManifestError(f"{path}: only version 1 of Apollo's manifest is known")
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise ManifestError(f"{path}: `operations` must be a list")
        pairs = [(op.get("id"), op.get("body")) for op in operations if isinstance(op, dict)]
        if len(pairs) != len(operations):
            raise ManifestError(f"{path}: every operation must be an object")
    elif isinstance(data, dict):
        pairs = list(data.items())
    else:
        raise ManifestError(f"{path}: expected Apollo's manifest or a map of hash to document")
    documents: dict[str, str] = {}
    for digest, body in pairs:
        if not isinstance(digest, str) or not isinstance(body, str):
            raise ManifestError(f"{path}: ids and bodies must be strings")
        if sha256_hex(body) != digest.lower():
            raise ManifestError(f"{path}: {digest} is not the SHA-256 of its document")
        documents[digest.lower()] = body
    return documents


@dataclass(frozen=True)
class PersistedQueries:
    """How this service treats ``extensions.persistedQuery`` (see the module docstring)."""

    mode: Mode = "apq"
    store: DocumentLRU | None = None
    trusted: dict[str, str] | None = None

    @classmethod
    def automatic(cls, max_entries: int, max_document_bytes: int) -> PersistedQueries:
        return cls("apq", DocumentLRU(max_entries, max_document_bytes))

    @classmethod
    def trusted_only(cls, manifest: Path) -> PersistedQueries:
        return cls("trusted", trusted=load_manifest(manifest))


class Refused(Exception):
    """A persisted-query request refused with a GraphQL error (``code``) before execution."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _hash_of(extensions: dict[str, object] | None) -> str | None:
    """The ``sha256Hash`` a request names; ``Refused`` for a malformed ``persistedQuery``."""
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise Refused("Unsupported persisted query version", NOT_SUPPORTED)
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256.match(digest.lower()):
        raise Refused("persistedQuery.sha256Hash must be 64 hexadecimal digits", NOT_SUPPORTED)
    return digest.lower()


def resolve(
    policy: PersistedQueries, query: str | None, extensions: dict[str, object] | None
) -> tuple[str | None, str | None]:
    """The document to run and the hash to remember it under (None: nothing to remember)."""
    digest = _hash_of(extensions)
    if policy.mode == "trusted":
        trusted = policy.trusted or {}
        key = digest or (sha256_hex(query) if query is not None else None)
        if key is None or key not in trusted or (query is not None and sha256_hex(query) != key):
            raise Refused("only trusted documents are accepted here", NOT_TRUSTED)
        return trusted[key], None
    if digest is None:
        return query, None
    if policy.mode == "off" or policy.store is None:
        raise Refused("persisted queries are not supported here", NOT_SUPPORTED)
    if query is None:
        stored = policy.store.get(digest)
        if stored is None:
            raise Refused("PersistedQueryNotFound", NOT_FOUND)
        return stored, None
    if sha256_hex(query) != digest:
        raise Refused("provided sha256Hash does not match the query", BAD_HASH)
    return query, digest


class TrustedDocumentsOnly(SchemaExtension):
    """Refuses, before validation, any operation whose document is not a trusted one.

    The view already resolves HTTP requests to trusted texts; this check covers
    every transport the schema runs for, WebSocket subscriptions included.
    """

    def __init__(self, trusted: frozenset[str]) -> None:
        self.trusted = trusted

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is None or sha256_hex(context.query) not in self.trusted:
            refusal = GraphQLError(
                "only trusted documents are accepted here", extensions={"code": NOT_TRUSTED}
            )
            context.pre_execution_errors = [refusal]
        yield


def persisted_extensions(policy: PersistedQueries) -> list[Callable[[], SchemaExtension]]:
    """The schema extensions ``policy`` needs: the trusted-documents check in trusted mode."""
    if policy.mode != "trusted":
        return []
    trusted = frozenset(policy.trusted or ())
    return [lambda: TrustedDocumentsOnly(trusted)]


class PersistedQueryView(GraphQL[Context, None]):
    """strawberry's ASGI view resolving persisted queries before execution.

    A GET naming a persisted query by hash is not taken for the IDE page
    (``schema._engine.http.HTTPView``).
    """

    persisted_queries: PersistedQueries = PersistedQueries()

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            query, remember = resolve(
                self.persisted_queries, request_data.query, request_data.extensions
            )
        except Refused as refusal:
            error = GraphQLError(str(refusal), extensions={"code": refusal.code})
            return ExecutionResult(data=None, errors=[error])
        if query is not request_data.query:
            request_data = replace(request_data, query=query)
        result = await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )
        store = self.persisted_queries.store
        if remember and store is not None and query is not None and not is_request_error(result):
            store.put(remember, query)  # it parsed and validated: worth keeping
        return result
