"""Limits that keep one request from costing the server too much.

``Limits`` mirrors the runtime settings of the same names (``MAX_QUERY_DEPTH``,
``MAX_ALIASES``...); ``server.py`` copies them over. ``limit_extensions`` turns
them into strawberry schema extensions: they reject a document while parsing
(token count) or validating (depth, aliases, introspection), before any
resolver runs, with an ordinary GraphQL validation error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from graphql import ASTValidationRule
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension


@dataclass(frozen=True)
class Limits:
    """Per-request and per-connection bounds; defaults suit development.

    ``max_body_bytes`` is enforced in front of this app by the runtime's ASGI
    middleware (413); it is kept here so the whole set travels together.
    """

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


def validation_rules(limits: Limits) -> tuple[type[ASTValidationRule], ...]:
    """The validation rules enforcing depth, aliases and (optionally) no introspection.

    Built once per schema: the rule classes must stay the same objects across
    requests, or the validation cache (keyed by the rules) would never hit.
    """
    rules: list[type[ASTValidationRule]] = [
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
        *QueryDepthLimiter(max_depth=limits.max_query_depth).validation_rules,
    ]
    if not limits.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return tuple(rules)


class RequestLimits(SchemaExtension):
    """strawberry's ``MaxTokensLimiter`` and ``AddValidationRules`` in one hook.

    It sets the same parse option and adds the same rules; one extension
    instead of two saves a hook (a context manager built, entered and left)
    on every operation.
    """

    def __init__(self, max_tokens: int, rules: tuple[type[ASTValidationRule], ...]) -> None:
        self.max_tokens = max_tokens
        self.rules = rules

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = context.validation_rules + self.rules
        yield


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """Factories of the strawberry extensions enforcing ``limits`` on every operation."""
    return [partial(RequestLimits, limits.max_tokens, validation_rules(limits))]
