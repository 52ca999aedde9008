"""One read-model change, many subscribers: the work is done once, not once per subscriber.

A thousand subscribers of ``accountChanged(id)`` all receive the same
``ReadModelChange`` object from the hub. Without help, each of them would
convert it to an ``Account``, execute its selection set with graphql-core and
JSON-encode the result. Here:

- ``FanoutCache.convert(source, convert)`` converts a source object (by
  identity) once and marks the result as a *shared payload*;
- ``SharingExecutor`` (the schema's graphql-core executor class) executes a
  subscription event whose payload is shared once per *sharing key*
  (document text, operation name, variables, user) and replays that result to every
  other subscriber with the same key. A result with errors is never shared:
  each subscriber then executes, masks and logs for itself;
- the data of a shared result is an ``EncodedData`` dict that JSON-encodes
  itself once; ``encode_message`` builds a protocol message around it
  (``next`` of graphql-transport-ws, ``data`` of graphql-ws) without
  encoding the document again.

Contract for shared payloads: their fields may depend on the arguments, the
variables and the caller (``context.user``) but on nothing else of the
context. Each subscriber's own authorization check runs in its subscription
resolver, at subscribe time, before it receives any payload.

Both caches are small LRUs keyed by identity that keep their keys alive (an
id is never reused while its object is cached). A miss only costs sharing:
the payload is then executed for that subscriber alone. With the plain engine
(``GRAPHQL_ENGINE=plain``) the schema runs strawberry's own executor: payloads
are still converted once, but every subscriber executes and encodes its own.
"""

from __future__ import annotations

import functools
import json
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from graphql import ExecutionResult, Executor, GraphQLResolveInfoHelpers, OperationType
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

T = TypeVar("T")
SharingKey = tuple[object, str, str, str, Hashable]  # schema, document, operation, variables, user
DEFAULT_ENTRIES = 256
# One encoder for all: json.dumps with options builds a new one per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


class EncodedData(dict[str, Any]):
    """A result's ``data`` that serializes itself to JSON once (it must not change after)."""

    __slots__ = ("_json",)

    def json(self) -> str:
        try:
            return self._json
        except AttributeError:
            self._json: str = _COMPACT.encode(self)
            return self._json


class _Results:
    """Results of one shared payload, by sharing key."""

    __slots__ = ("by_key", "payload")

    def __init__(self, payload: object) -> None:
        self.payload = payload
        self.by_key: dict[SharingKey, ExecutionResult] = {}


class FanoutCache:
    """Converted payloads by source identity, and executed results by payload identity."""

    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self.entries = entries
        self._converted: OrderedDict[tuple[int, object], tuple[object, Any]] = OrderedDict()
        self._results: OrderedDict[int, _Results] = OrderedDict()

    def convert(self, source: object, convert: Callable[[Any], T]) -> T:
        """``convert(source)``, computed once per source object and marked shared."""
        key = (id(source), convert)
        cached = self._converted.get(key)
        if cached is not None and cached[0] is source:
            self._converted.move_to_end(key)
            payload: T = cached[1]
            return payload
        payload = convert(source)
        self._remember(self._converted, key, (source, payload))
        self._remember(self._results, id(payload), _Results(payload))
        return payload

    def results_of(self, payload: object) -> _Results | None:
        """The result table of a shared payload; None for any other object."""
        results = self._results.get(id(payload))
        return results if results is not None and results.payload is payload else None

    def clear(self) -> None:
        self._converted.clear()
        self._results.clear()

    def _remember(self, table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.entries:
            table.popitem(last=False)


SHARED = FanoutCache()
"""The process-wide cache the subscription resolvers and ``SharingExecutor`` use."""


def shared(source: object, convert: Callable[[Any], T]) -> T:
    """``convert(source)`` as a payload every subscriber of ``source`` shares."""
    return SHARED.convert(source, convert)


def _weak_helpers(executor: Executor[Any]) -> GraphQLResolveInfoHelpers:
    """Resolver helpers (``info.async_helpers``) that reach ``executor`` by a weak reference.

    graphql-core stores helpers made of the executor's own bound methods on the
    executor: a reference cycle. Every operation's executor, and what it holds
    (context, request, response, variables, collected fields: about fifty
    objects), was then left to the cycle collector instead of being freed when
    the operation ended, and those collections took over a tenth of a deposit's
    CPU. These helpers behave the same while the operation runs, which is the
    only time resolvers may call them.
    """
    ref = weakref.ref(executor)

    def alive() -> Executor[Any]:
        found = ref()
        if found is None:
            raise RuntimeError("info.async_helpers used after its operation ended")
        return found

    def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
        return alive().gather_async_work(values)

    def track(values: Sequence[Any]) -> None:
        alive().track_async_work(values)

    return GraphQLResolveInfoHelpers(gather=gather, track=track)


class SharingExecutor(StrawberryGraphQLCoreExecutionContext):
    """Executes a shared subscription payload once per sharing key; see the module docstring.

    ``build_per_event_executor`` is called on the subscription's executor and
    its result's ``execute_operation(False)`` right after, synchronously, by
    graphql-core's ``map_source_to_response_event``. On a hit the subscription's
    own executor is returned with the result to replay, which skips the
    per-event copy as well as the execution.
    """

    _replay: ExecutionResult | None = None
    _record: tuple[_Results, SharingKey] | None = None
    _sharing_key: SharingKey | None = None
    _sharing_key_known = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = _weak_helpers(self)
        if self.operation.operation is OperationType.SUBSCRIPTION:
            # A subscription's executor lives as long as the subscription. Its
            # thirty-odd attributes, set one by one, leave the instance dict with
            # room for about ninety; a dict built from them at once holds the
            # same attributes in about half the memory.
            self.__dict__ = dict(self.__dict__)
            self.subscribed()

    def subscribed(self) -> None:
        """Called when built for a subscription (``schema._engine.parking`` hooks it)."""

    def sharing_key(self) -> SharingKey | None:
        """This operation's sharing key; None when its results cannot be shared."""
        return self._key()

    def share_as(self, payload: object, key: SharingKey) -> None:
        """Share this executor's result for ``payload`` under ``key`` (an executor built for it).

        Nothing is recorded when ``payload`` is not a shared payload.
        """
        results = SHARED.results_of(payload)
        if results is not None:
            self._record = (results, key)

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        results = SHARED.results_of(payload)
        key = self._key() if results is not None else None
        if results is None or key is None:
            return super().build_per_event_executor(payload)
        hit = results.by_key.get(key)
        if hit is not None:
            self._replay = hit
            return self
        executor = super().build_per_event_executor(payload)
        assert isinstance(executor, SharingExecutor)
        executor._record = (results, key)
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        replay, self._replay = self._replay, None
        if replay is not None:
            return replay
        result = super().execute_operation(serially)
        if self._record is None:
            return result
        if self.is_awaitable(result):
            return self._recorded(result)
        return self._store(result)

    async def _recorded(self, result: Awaitable[Any]) -> Any:
        return self._store(await result)

    def _store(self, result: Any) -> Any:
        """Share an error-free result (its data re-wrapped to encode once)."""
        record, self._record = self._record, None
        if record is None or not isinstance(result, ExecutionResult) or result.errors:
            return result
        if not isinstance(result.data, dict) or result.extensions:
            return result
        shared_result = ExecutionResult(EncodedData(result.data))
        results, key = record
        results.by_key[key] = shared_result
        return shared_result

    def _key(self) -> SharingKey | None:
        """(schema, document text, operation name, variables, user); None when it cannot share."""
        if not self._sharing_key_known:
            self._sharing_key_known = True
            self._sharing_key = self._compute_key()
        return self._sharing_key

    def _compute_key(self) -> SharingKey | None:
        user = getattr(self.context_value, "user", None)
        location = self.operation.loc
        if location is None:
            return None
        name = self.operation.name.value if self.operation.name else ""
        try:
            hash(user)
            variables = json.dumps(self.variable_values.coerced, sort_keys=True, default=repr)
        except (TypeError, ValueError):
            return None
        return (self.schema, location.source.body, name, variables, user)


def shared_result(payload: object, key: SharingKey) -> ExecutionResult | None:
    """The result already shared for ``payload`` under ``key``, if any."""
    results = SHARED.results_of(payload)
    return None if results is None else results.by_key.get(key)


def encode_message(message: object) -> str | None:
    """JSON of a protocol message whose payload is shared data; None for any other.

    Matches ``{"id", "type", "payload": {"data": EncodedData}}``, optionally
    with the result's ``extensions`` beside the data (a small per-operation
    dict, such as the query cost, encoded on its own): the ``next``
    (graphql-transport-ws) and ``data`` (graphql-ws) messages of a shared
    result. Anything with errors is encoded normally.
    """
    if type(message) is not dict or len(message) != 3:
        return None
    payload = message.get("payload")
    if type(payload) is not dict or not 1 <= len(payload) <= 2:
        return None
    data = payload.get("data")
    if type(data) is not EncodedData or "id" not in message or "type" not in message:
        return None
    extensions = ""
    if len(payload) == 2:
        if "extensions" not in payload:
            return None
        extensions = f',"extensions":{_COMPACT.encode(payload["extensions"])}'
    op_id, kind = message["id"], message["type"]
    if type(op_id) is str and type(kind) is str:
        head = _head(op_id, kind)
    else:
        head = f'{{"id":{json.dumps(op_id)},"type":{json.dumps(kind)}'
    return f'{head},"payload":{{"data":{data.json()}{extensions}}}}}'


@functools.lru_cache(maxsize=4096)
def _head(op_id: str, kind: str) -> str:
    """The start of a message with this operation id and type (ids repeat: cached)."""
    return f'{{"id":{json.dumps(op_id)},"type":{json.dumps(kind)}'
