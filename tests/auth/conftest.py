from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth.idp import IdP


@pytest.fixture
def idp() -> Iterator[IdP]:
    """A fresh identity provider on a loopback port, publishing one RS256 key."""
    provider = IdP()
    provider.add_key("RS256")
    with provider.running() as running:
        yield running
