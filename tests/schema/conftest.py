from __future__ import annotations

import pytest

from tests.schema.wiring import Wiring, make_wiring


@pytest.fixture
async def wiring() -> Wiring:
    return await make_wiring()
