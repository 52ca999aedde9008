"""What a client sees of an error, and what the log says about it.

Every error in a response carries ``extensions.code`` (``error_code``):

- ``GRAPHQL_PARSE_FAILED``: a syntax error, or a document over the token limit;
- ``GRAPHQL_VALIDATION_FAILED``: the document does not validate;
- ``BAD_USER_INPUT``: a variable's value cannot be used (and every ``ClientError``
  that says so; a ``ClientError`` brings its own code, e.g. ``FORBIDDEN``);
- ``INTERNAL_SERVER_ERROR``: a server fault. An error caused by an unexpected
  exception is masked ("Unexpected error.") and logged once at ERROR with its
  traceback (``schema.app.should_mask``); an execution error that no resolver
  classified (graphql-core's own, e.g. a null for a non-null field) keeps its
  message, and ``LedgerSchema`` logs it at ERROR.

Client mistakes are logged by ``LedgerSchema`` at INFO, one line without a
traceback: they are not server errors. With introspection off, "Did you
mean ...?" hints are removed from messages, since they reveal the schema
piece by piece.

``LedgerMaskErrors`` is strawberry's ``MaskErrors`` plus the codes, through its
public hooks only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext, ExecutionResult, StreamExecutionResult

from schema.errors import (
    BAD_USER_INPUT,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
    ClientError,
)

log = logging.getLogger(__name__)

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
_LOGGED_MESSAGE_CHARS = 300


def unexpected(error: GraphQLError) -> bool:
    """The error comes from an exception no one meant a client to see (it is masked)."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError | ClientError)


def error_code(error: GraphQLError) -> str:
    """The ``extensions.code`` for ``error`` (see the module)."""
    extensions = error.extensions
    code = extensions.get("code") if extensions else None
    if isinstance(code, str):
        return code
    if isinstance(error, GraphQLSyntaxError):
        return GRAPHQL_PARSE_FAILED
    if unexpected(error):
        return INTERNAL_SERVER_ERROR
    if error.path is None:  # nothing executed: the request itself is wrong
        coercion = error.message.startswith("Variable '$")
        return BAD_USER_INPUT if coercion else GRAPHQL_VALIDATION_FAILED
    return INTERNAL_SERVER_ERROR


def without_suggestions(message: str) -> str:
    """``message`` without graphql-core's "Did you mean ...?" hints."""
    return _SUGGESTION.sub("", message) if "Did you mean" in message else message


class LedgerMaskErrors(MaskErrors):
    """``MaskErrors`` that also sets every error's code (see the module).

    ``hide_suggestions`` removes "Did you mean ...?" from messages (for a
    schema whose introspection is off). Masking runs first (strawberry's
    hooks), then every remaining error gets its code; coding an error twice
    changes nothing.
    """

    def __init__(
        self,
        should_mask_error: Callable[[GraphQLError], bool],
        error_message: str = "Unexpected error.",
        *,
        hide_suggestions: bool = False,
    ) -> None:
        super().__init__(should_mask_error, error_message)
        self.hide_suggestions = hide_suggestions

    def on_operation(self) -> Iterator[None]:
        yield from super().on_operation()
        self.code_errors(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        masking = super().on_stream_result(result)
        next(masking)
        self.code_errors(result)
        yield None
        next(masking, None)

    def code_errors(self, result: object) -> None:
        """Give each error of an execution result its code."""
        if isinstance(result, GraphQLExecutionResult | ExecutionResult) and result.errors:
            result.errors = [self.coded(error) for error in result.errors]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_SERVER_ERROR}
        return masked

    def coded(self, error: GraphQLError) -> GraphQLError:
        """``error`` with its ``extensions.code`` (and without hints when they are hidden)."""
        code = error_code(error)
        message = without_suggestions(error.message) if self.hide_suggestions else error.message
        extensions = error.extensions
        if message == error.message and extensions and extensions.get("code") == code:
            return error
        # A new error: a cached validation result or a shared subscription result
        # may hand the same error object to other requests.
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=error.original_error,
            extensions={**(extensions or {}), "code": code},
        )


class LedgerSchema(strawberry.Schema):
    """The service's schema class: logs each error by whose fault it is (see the module)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if unexpected(error):
                continue  # masked, and logged with its traceback by the masking extension
            code = error_code(error)
            message = error.message[:_LOGGED_MESSAGE_CHARS]
            if code == INTERNAL_SERVER_ERROR:
                where = ".".join(str(p) for p in error.path or ()) or "operation"
                log.error("server error in %s: %s", where, message)
            else:
                log.info("client error %s: %s", code, message)
