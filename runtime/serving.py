"""Running an ASGI app under uvicorn in the foreground: ``python server.py``, ``ledger serve``.

uvicorn is configured from the settings: HOST/PORT, proxy headers trusted from
FORWARDED_ALLOW_IPS, a stop bounded by SHUTDOWN_TIMEOUT_SECONDS (``BoundedStop``), our own
(redacting) log handler instead of uvicorn's, the WebSocket frame limit equal
to the HTTP body limit, no permessage-deflate, request heads bounded in size
and time and bodies in time (``runtime/http_edge.py``). SIGTERM and Ctrl-C end in a
clean exit (status 0) after the app's lifespan has shut down; ``on_exit``
then runs in any case.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from runtime.http_edge import bounded_protocol
from runtime.logging import configure_logging
from runtime.settings import Settings

log = logging.getLogger("server")


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our handler, already installed, formats and redacts
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # Requests in flight get half of the stop's time; the lifespan's shutdown the rest.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_seconds / 2)),
        lifespan="on",
        ws_max_size=settings.max_body_bytes,
        # httptools with bounded request heads and deadlines for slow clients.
        http=bounded_protocol(
            settings.max_header_bytes,
            settings.header_timeout_seconds,
            settings.body_timeout_seconds,
        ),
        # Subscription messages are small and go to many sockets: compressing each
        # per connection costs more CPU (both ends) and memory than it saves.
        ws_per_message_deflate=False,
        server_header=False,
    )


def run(
    make_app: Callable[[Settings], ASGIApp],
    settings: Settings,
    on_exit: Callable[[ASGIApp], None] | None = None,
) -> None:
    """Log set-up, then serve ``make_app(settings)`` until a signal; exit 3 if it never started.

    A port already in use ends the run at once with exit status 1 and one line
    that says so, before anything starts (no database, no "serving on" line).
    """
    if port_in_use(settings.host, settings.port):
        raise SystemExit(
            f"ledger: port {settings.port} on {settings.host} is already in use "
            "(another server running?); choose another with --port N or PORT=N"
        )
    configure_logging(settings.effective_log_level, settings.effective_log_format)
    log.info("starting with %s", settings.describe())
    if settings.auth_mode == "dev":
        log.warning("AUTH_MODE=dev: every request acts as the admin user 'dev'")
    if settings.is_production and settings.metrics_token is None:
        log.warning("METRICS_TOKEN is unset: keep /metrics off the internet (docs/security.md)")
    app = make_app(settings)
    server = BoundedStop(
        uvicorn_config(app, settings),
        settings.shutdown_timeout_seconds,
        lambda: on_exit(app) if on_exit is not None else None,
    )
    # uvicorn re-raises the signal that stopped it once it has shut down cleanly;
    # turn that into a normal exit instead of a death by signal or a traceback.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(server.serve())
    finally:
        if on_exit is not None:
            on_exit(app)
    if not server.started:
        raise SystemExit(3)


class BoundedStop(uvicorn.Server):
    """uvicorn's server whose stop, once a signal asked for it, ends within ``limit`` seconds.

    Whatever hangs (a database that stopped answering, a task that ignores
    cancellation), a watchdog thread started by the first SIGTERM/SIGINT logs
    what happened, runs ``last_words`` (stopping the embedded database, a child
    process that must not be orphaned) and ends the process with status 1.
    """

    def __init__(self, config: uvicorn.Config, limit: float, last_words: Callable[[], None]):
        super().__init__(config)
        self._limit = limit
        self._last_words = last_words
        self._watchdog: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Timer(self._limit, self._overrun)
            self._watchdog.daemon = True
            self._watchdog.start()
        super().handle_exit(sig, frame)

    def _overrun(self) -> None:
        log.error("stopping took longer than %ss; exiting without finishing it", self._limit)
        try:
            self._last_words()
        finally:
            logging.shutdown()
            os._exit(1)


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails because something listens there already.

    Bound the way uvicorn binds (``SO_REUSEADDR``), so a port in TIME_WAIT is
    free. Any other bind failure is left for uvicorn to report.
    """
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)
