"""/readyz follows the database: not ready while it is down, ready again once it is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from runtime.bootstrap import create_app
from runtime.embedded import EmbeddedMongo, free_port
from runtime.settings import load_settings


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[EmbeddedMongo]:
    server = EmbeddedMongo(tmp_path / "nx")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


TOKEN = "operator-token-for-readyz-details"


async def _ready(client: httpx.AsyncClient, want: bool, tries: int = 200) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(tries):  # 0.1 s apart
        response = await client.get("/readyz")
        body = response.json()
        if (response.status_code == 200) is want:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"readyz never became {'ready' if want else 'not ready'}: {body}")


async def test_readiness_follows_the_database(database: EmbeddedMongo, tmp_path: Path) -> None:
    port = free_port()
    settings = load_settings(None, mongodb_url=database.url, mongodb_database="readyz",
                             port=port, data_dir=str(tmp_path / "unused"),
                             metrics_token=TOKEN)  # fmt: skip
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        base_url, operator = f"http://127.0.0.1:{port}", {"authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=base_url, headers=operator) as client:
            for _ in range(200):
                if server.started:
                    break
                await asyncio.sleep(0.05)
            checks = (await _ready(client, True))["checks"]
            assert isinstance(checks, dict)
            assert checks["database"] == {"ok": True, "detail": "reachable"}
            # Anonymous callers learn whether each check passed, not lease owners or errors.
            anonymous = await client.get("/readyz", headers={"authorization": ""})
            assert all(set(check) == {"ok"} for check in anonymous.json()["checks"].values())

            await asyncio.to_thread(database.kill)
            down = await _ready(client, False)
            assert down["checks"]["database"]["ok"] is False
            assert (await client.get("/healthz")).status_code == 200  # alive, just not ready

            await asyncio.to_thread(database.start)  # same data dir and port
            await _ready(client, True, tries=400)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)
