"""Custom scalars: money as decimal strings, UTC timestamps, JSON.

Money crosses the API only as a decimal *string* ("12.30"); a JSON number is
refused so that no float ever carries an amount. The scalar checks only the
shape of the value; the amount rules (> 0, two decimals, bounds) live in
``domain.money.parse_amount`` and surface as the typed ``InvalidInput``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig

from domain.money import format_amount

DecimalString = NewType("DecimalString", str)
"""A decimal amount as text, e.g. "12.30" (GraphQL scalar ``Decimal``)."""


def money(minor: int) -> DecimalString:
    """An amount in int minor units (as read models and events hold it) as API text."""
    return DecimalString(format_amount(minor))


MAX_DECIMAL_TEXT = 64  # longer text cannot be a valid amount; refuse before parsing


def _serialize_decimal(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str):
        raise TypeError(f"Decimal values are served as strings, got {type(value).__name__}")
    return value


def _parse_decimal(value: Any) -> DecimalString:
    """Accept only strings: floats would already have lost precision."""
    if not isinstance(value, str):
        raise GraphQLError('Decimal must be a string such as "12.30", not a number')
    return DecimalString(value)


def _serialize_datetime(value: Any) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"DateTime expects a datetime, got {type(value).__name__}")
    return format_datetime(value)


def format_datetime(value: datetime) -> str:
    """ISO-8601 in UTC with millisecond precision and a ``Z`` suffix."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    text = aware.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_datetime(value: Any) -> datetime:
    """Parse ISO-8601 text with an explicit offset (``Z`` or ``+hh:mm``) into UTC."""
    if not isinstance(value, str) or len(value) > 40:
        raise GraphQLError("DateTime must be an ISO-8601 string such as 2026-01-31T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise GraphQLError(f"DateTime is not valid ISO-8601: {value!r}") from exc
    if parsed.tzinfo is None:
        raise GraphQLError("DateTime needs a time zone offset, e.g. a trailing 'Z' for UTC")
    return parsed.astimezone(UTC)


def to_datetime(value: datetime | str | int) -> datetime:
    """Read-model times arrive as ISO strings or epoch ms ints.

    Times written by update operators come back as strings on nx-27017, so
    read models store them as ISO strings or epoch milliseconds.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


DECIMAL = strawberry.scalar(
    name="Decimal",
    description='An exact decimal amount as a string, e.g. "12.30". Never a float.',
    serialize=_serialize_decimal,
    parse_value=_parse_decimal,
)
DATETIME = strawberry.scalar(
    name="DateTime",
    description="A UTC timestamp in ISO-8601, e.g. 2026-01-31T12:00:00.000Z.",
    serialize=_serialize_datetime,
    parse_value=parse_datetime,
)


def scalar_config() -> StrawberryConfig:
    """A schema's config with the service's scalars (``schema.app.build_schema``)."""
    return StrawberryConfig(scalar_map={DecimalString: DECIMAL, datetime: DATETIME})
