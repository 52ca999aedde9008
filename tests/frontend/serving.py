"""``create_app`` served in-process by uvicorn on a loopback port, for the frontend tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from runtime.bootstrap import create_app
from runtime.embedded import free_port
from runtime.settings import load_settings


@asynccontextmanager
async def served(**settings: Any) -> AsyncIterator[str]:
    """The service on the in-memory store with ``settings``; yields its base URL."""
    values: dict[str, Any] = {"store": "memory", "port": free_port(), **settings}
    config = load_settings(None, **values)
    app = create_app(config)
    options: dict[str, Any] = {"log_config": None, "lifespan": "on"}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=config.port, **options))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(400):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            raise RuntimeError("the in-process server did not start")
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
