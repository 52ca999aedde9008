"""A schema whose extension hooks cost nothing per streamed result that no hook needs.

For every result of a subscription strawberry builds a fresh context manager
over all extensions (looking each one's ``on_stream_result`` hook up again)
and asks each extension for its ``get_results``. With a thousand subscribers
that is paid a thousand times per change although, in this service, the only
stream hook is error masking and no extension reports results.

``LeanSchema`` keeps the behaviour and drops the cost:

- a result without errors skips the stream hooks when every extension that
  has one is a ``MaskErrors`` (masking only touches results with errors);
- ``get_extensions_results`` asks only the extensions that override
  ``get_results`` (the base one returns ``{}``).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import strawberry
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.extensions.context import StreamResultContextManager
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext
from strawberry.types.execution import StreamExecutionResult
from strawberry.utils.await_maybe import await_maybe


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


def _overrides(extension: SchemaExtension, name: str) -> bool:
    return getattr(type(extension), name) is not getattr(SchemaExtension, name)


class LeanExtensionsRunner(SchemaExtensionsRunner):
    """``SchemaExtensionsRunner`` that skips hooks which cannot do anything; see the module."""

    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None
    ) -> None:
        super().__init__(execution_context, extensions)
        stream_hooks = [e for e in self.extensions if _overrides(e, "on_stream_result")]
        self.masking_only = all(isinstance(e, MaskErrors) for e in stream_hooks)
        self.reporting = [e for e in self.extensions if _overrides(e, "get_results")]

    def on_stream_result(self, result: StreamExecutionResult) -> StreamResultContextManager:
        if self.masking_only and not getattr(result, "errors", None):
            return _NO_STREAM_HOOKS
        return super().on_stream_result(result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self.reporting:
            data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data


class LeanSchema(strawberry.Schema):
    """``strawberry.Schema`` running its extensions through ``LeanExtensionsRunner``."""

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return LeanExtensionsRunner(execution_context, extensions)
