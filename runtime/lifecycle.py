"""Start-up steps that register their own stop on an ``AsyncExitStack``.

Each helper starts one thing and pushes the matching stop onto the stack, so
the stack unwinds them in the reverse order of start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from starlette.applications import Starlette

from runtime.asgi import LateApp
from runtime.components import Components, Monitoring
from runtime.database import DatabaseHandle, open_database, unreachable
from runtime.embedded import EmbeddedDatabaseError
from runtime.gc_tuning import tune_after_startup, undo
from runtime.health import Health, ping_check
from runtime.settings import Settings

log = logging.getLogger("server")


async def enter_database(settings: Settings, stack: AsyncExitStack) -> DatabaseHandle:
    """``open_database`` in a thread; its close is pushed first so it runs last.

    An embedded database this process started is supervised: if it dies, it is
    started again on the same port (``supervise_embedded``).
    """
    handle = await asyncio.to_thread(open_database, settings)
    # The first callback on the stack runs last: the embedded database stops last.
    stack.push_async_callback(asyncio.to_thread, handle.close)
    if handle.embedded is not None:
        task = asyncio.get_running_loop().create_task(
            supervise_embedded(handle), name="embedded database supervisor"
        )

        async def stop_supervising() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        stack.push_async_callback(stop_supervising)
    return handle


async def supervise_embedded(handle: DatabaseHandle, interval: float = 0.5) -> None:
    """Restart the embedded development database whenever it dies; log the gap.

    Development only: with ``MONGODB_URL`` the database is the operator's, and
    requests answer ``UNAVAILABLE`` while it is away. A restart that fails is
    tried again after ``interval``.
    """
    died_at: float | None = None
    while (embedded := handle.embedded) is not None:
        await asyncio.sleep(interval)
        code = embedded.exit_code()
        if code is None:
            continue
        if died_at is None:
            died_at = time.monotonic()
            log.error("the embedded database exited (status %s); starting it again", code)
        try:
            await asyncio.to_thread(embedded.start)
        except EmbeddedDatabaseError as error:
            log.error("the embedded database did not start again: %s", error)
            continue
        log.warning(
            "the embedded database is back after %.1fs without it", time.monotonic() - died_at
        )
        died_at = None


async def enter_mongo_client(
    url: str, stack: AsyncExitStack, health: Health, connect_seconds: float = 10.0
) -> AsyncMongoClient[dict[str, Any]]:
    """A connected PyMongo async client (pinged once), with a ``database`` readiness check.

    Raises ``DatabaseUnreachable`` (one line, hosts without credentials) when
    the first ping gets no answer within ``connect_seconds``.
    """
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=int(connect_seconds * 1000), tz_aware=True, appname="ledger"
    )
    stack.push_async_callback(client.close)
    started = time.monotonic()
    try:
        await client.admin.command("ping")
    except PyMongoError as error:
        raise unreachable(url, time.monotonic() - started, error) from None
    health.add("database", ping_check(lambda: client.admin.command("ping")))
    return client


def enter_background_task(
    stack: AsyncExitStack,
    name: str,
    run: Callable[[], Coroutine[Any, Any, None]],
    stop: Callable[[], None],
    timeout: float,
) -> asyncio.Task[None]:
    """Run ``run()`` as a task; on unwind call ``stop()``, wait ``timeout``, then cancel."""
    task = asyncio.get_running_loop().create_task(run(), name=name)

    async def stop_task() -> None:
        stop()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            log.warning("the %s did not stop in time; cancelling it", name)
            task.cancel()

    stack.push_async_callback(stop_task)
    return task


def stop_embedded_database(app: Any) -> None:
    """uvicorn's exit hook: stop the embedded database if the lifespan did not.

    Normally the lifespan has stopped it; after a forced exit (a second Ctrl-C, or the
    bounded stop giving up while a stop still waits in a thread) it has not.
    """
    components = getattr(app.state, "components", None)
    database: DatabaseHandle | None = getattr(components, "database", None)
    if database is not None:
        database.close()
        database.kill_leftover()


Start = Callable[[Settings, AsyncExitStack, Monitoring], Awaitable[Components]]
Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def serving_lifespan(
    settings: Settings, monitoring: Monitoring, graphql: LateApp, start: Start
) -> Lifespan:
    """Run ``start`` before serving, fill the GraphQL slot, unwind the stack on shutdown.

    ``/readyz`` follows the phase: "starting", "serving", then "stopping" before the unwind.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            components = await start(settings, stack, monitoring)
            app.state.components = components
            graphql.app = components.graphql
            # the start-up heap is not walked again by the collector (runtime.gc_tuning)
            stack.callback(undo, tune_after_startup())
            monitoring.health.phase = "serving"
            log.info("serving on http://%s:%s/graphql", settings.host, settings.port)
            try:
                yield
            finally:
                monitoring.health.phase = "stopping"
                log.info("shutting down")
        log.info("stopped")

    return lifespan
