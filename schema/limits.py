"""Limits that keep one request from costing the server too much.

``Limits`` mirrors the runtime settings of the same names (``MAX_QUERY_DEPTH``,
``MAX_ALIASES``...); ``server.py`` copies them over. ``limit_extensions`` turns
them into strawberry schema extensions: they reject a document while parsing
(token count) or validating (depth, aliases, introspection), before any
resolver runs, with an ordinary GraphQL validation error.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)


@dataclass(frozen=True)
class Limits:
    """Per-request and per-connection bounds; defaults suit development."""

    max_query_depth: int = 15
    max_aliases: int = 30
    max_tokens: int = 2_000
    max_page_size: int = 100
    default_page_size: int = 20
    max_subscriptions_per_connection: int = 20
    connection_init_timeout_seconds: float = 5.0
    max_body_bytes: int = 1_000_000
    consistency_timeout_seconds: float = 5.0
    introspection: bool = True
    graphiql: bool = True


class PageSizeError(ValueError):
    """``first`` is outside 1..max_page_size."""


def page_size(limits: Limits, first: int | None) -> int:
    """The page size to use for ``first``; raise ``PageSizeError`` when out of range."""
    if first is None:
        return min(limits.default_page_size, limits.max_page_size)
    if first < 1 or first > limits.max_page_size:
        raise PageSizeError(f"first must be between 1 and {limits.max_page_size}, got {first}")
    return first


def limit_extensions(limits: Limits) -> list[SchemaExtension]:
    """The strawberry extensions enforcing ``limits`` on every operation."""
    extensions: list[SchemaExtension] = [
        MaxTokensLimiter(max_token_count=limits.max_tokens),
        MaxAliasesLimiter(max_alias_count=limits.max_aliases),
        QueryDepthLimiter(max_depth=limits.max_query_depth),
    ]
    if not limits.introspection:
        extensions.append(AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return extensions
