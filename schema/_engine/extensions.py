"""The tuned schema: extension work skipped where it cannot change a result.

For every result of a subscription strawberry builds a context manager over
all extensions (looking each one's ``on_stream_result`` hook up again), and
for every operation it asks each extension for its ``get_results``. With many
subscribers that is paid once per subscriber and change although, in this
service, the only stream hook is error masking. ``TunedSchema`` keeps the
behaviour of ``LedgerSchema`` and drops that work:

- a result without errors skips the stream hooks when every extension that
  has one is a ``MaskErrors`` (masking only touches results with errors);
- ``get_extensions_results`` asks only the extensions that override
  ``get_results`` (the base one returns ``{}``);
- the operation, parsing, validation and execution stages run their hooks
  through ``schema._engine.hooks`` (looked up once per tuple of extension
  classes) instead of a ``contextlib`` wrapper and an ``ExitStack`` per hook
  and request.

``TunedMaskErrors`` masks exactly as ``LedgerMaskErrors`` does, but looks at a
result's ``errors`` attribute directly instead of strawberry's
runtime-checkable ``Protocol`` check (an ``isinstance`` that inspects the
class's attributes on every operation), and its operation hook is one
generator where ``LedgerMaskErrors`` nests strawberry's in its own (a
subscription keeps its operation hooks suspended for as long as it lasts).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from types import TracebackType
from typing import Any, NamedTuple

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLSchema
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    OperationContextManager,
    ParsingContextManager,
    StreamResultContextManager,
    ValidationContextManager,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext, ExecutionResult, StreamExecutionResult
from strawberry.utils.await_maybe import await_maybe

from schema._engine.hooks import HookPlan
from schema.masking import LedgerMaskErrors, LedgerSchema


class _NoStreamHooks(StreamResultContextManager):
    """Entering and leaving it does nothing: no extension needs to see this result."""

    def __init__(self) -> None:  # no hooks to look up
        pass

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        return None

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        return None


_NO_STREAM_HOOKS = _NoStreamHooks()


def _overrides(cls: type[SchemaExtension], name: str) -> bool:
    return getattr(cls, name) is not getattr(SchemaExtension, name)


class _Plan(NamedTuple):
    """What the runner needs to know about a tuple of extension classes."""

    hooks: HookPlan
    masking_only: bool  # every class with a stream hook is a MaskErrors
    reporting: tuple[int, ...]  # positions of the classes overriding get_results


@lru_cache(maxsize=64)
def _plan(classes: tuple[type[SchemaExtension], ...]) -> _Plan:
    stream_hooks = [cls for cls in classes if _overrides(cls, "on_stream_result")]
    return _Plan(
        HookPlan(classes),
        masking_only=all(issubclass(cls, MaskErrors) for cls in stream_hooks),
        reporting=tuple(i for i, cls in enumerate(classes) if _overrides(cls, "get_results")),
    )


class TunedExtensionsRunner(SchemaExtensionsRunner):
    """``SchemaExtensionsRunner`` that skips hooks which cannot do anything; see the module."""

    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None
    ) -> None:
        super().__init__(execution_context, extensions)
        self.plan = _plan(tuple(map(type, self.extensions)))

    def operation(self) -> OperationContextManager:
        return self.plan.hooks.stage("on_operation", self.extensions) or super().operation()

    def parsing(self) -> ParsingContextManager:
        return self.plan.hooks.stage("on_parse", self.extensions) or super().parsing()

    def validation(self) -> ValidationContextManager:
        return self.plan.hooks.stage("on_validate", self.extensions) or super().validation()

    def executing(self) -> ExecutingContextManager:
        return self.plan.hooks.stage("on_execute", self.extensions) or super().executing()

    def on_stream_result(self, result: StreamExecutionResult) -> StreamResultContextManager:
        if self.plan.masking_only and not getattr(result, "errors", None):
            return _NO_STREAM_HOOKS
        return super().on_stream_result(result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for position in self.plan.reporting:
            data.update(await await_maybe(self.extensions[position].get_results()))
        data.update(ctx.extensions_results)
        return data


class TunedSchema(LedgerSchema):
    """``LedgerSchema`` running its extensions through ``TunedExtensionsRunner``."""

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return TunedExtensionsRunner(execution_context, extensions)


def core_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema strawberry built (its private ``_schema``; no public accessor)."""
    return schema._schema


class TunedMaskErrors(LedgerMaskErrors):
    """``LedgerMaskErrors`` whose result check is one attribute read (see the module)."""

    def on_operation(self) -> Iterator[None]:
        """``LedgerMaskErrors.on_operation`` (strawberry's, then the codes) as one generator."""
        self._stream_result_processed = False
        yield
        result = self.execution_context.result
        # strawberry's: a streamed operation's results were masked one by one.
        if not self._stream_result_processed:
            if isinstance(result, GraphQLExecutionResult | ExecutionResult):
                self._process_result(result)
            elif initial_result := getattr(result, "initial_result", None):
                self._process_result(initial_result)
        self.code_errors(result)

    def _process_result(self, result: object) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]
