"""Decimal and DateTime scalars, and the SDL export command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from graphql import GraphQLError

from schema import export
from schema.scalars import format_datetime, parse_datetime, to_datetime
from tests.schema.helpers import deposit, open_account
from tests.wiring import Wiring


def test_datetimes_are_utc_iso_with_z() -> None:
    moment = datetime(2026, 1, 31, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert format_datetime(moment) == "2026-01-31T12:00:00.123Z"
    assert parse_datetime("2026-01-31T13:00:00+01:00") == datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert parse_datetime("2026-01-31T12:00:00Z").tzinfo == UTC
    assert to_datetime(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert to_datetime("2026-01-31T12:00:00+00:00") == datetime(2026, 1, 31, 12, tzinfo=UTC)


@pytest.mark.parametrize("value", ["2026-01-31T12:00:00", "yesterday", "", 5, "9" * 100])
def test_bad_datetimes_are_refused(value: object) -> None:
    with pytest.raises(GraphQLError):
        parse_datetime(value)


async def test_money_is_served_as_strings(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    await deposit(wiring, account_id, "0.1")
    await deposit(wiring, account_id, "0.2")
    result = await wiring.data(
        "query($id: ID!) { account(id: $id, atVersion: 3) { balance } }", {"id": account_id}
    )
    assert result["account"]["balance"] == "0.30"


def test_export_writes_the_sdl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.graphql"
    assert export.main([str(target)]) == 0
    assert target.read_text(encoding="utf-8") == export.sdl()
    assert str(target) in capsys.readouterr().out
