"""Which MongoDB to talk to: ``MONGODB_URL``, or the embedded development database.

With ``MONGODB_URL`` unset, ``open_database`` starts nx-27017 owning
``DATA_DIR`` (see ``runtime/embedded.py``) and writes its URL next to its pid
file, so that a second process on the same ``DATA_DIR`` (``ledger seed`` or
``ledger events tail`` while ``make run`` serves, or a second server) attaches
to the running database instead of failing on "already running". Only the
process that started the database stops it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import ConfigurationError, PyMongoError
from pymongo.uri_parser import parse_uri

from runtime.embedded import EmbeddedMongo, answers_ping, free_port, is_nx_process
from runtime.settings import Settings

log = logging.getLogger(__name__)

URL_FILE = "nx-27017.url"


@dataclass
class DatabaseHandle:
    """The URL to connect to and, when this process started it, the embedded server."""

    url: str
    embedded: EmbeddedMongo | None = None
    attached: bool = False

    def __post_init__(self) -> None:
        self._owned = self.embedded  # kept after close, for ``kill_leftover``

    def kill_leftover(self) -> None:
        """SIGKILL the database this process started if it still runs (last resort at exit)."""
        if self._owned is not None:
            self._owned.kill_if_running()

    def close(self) -> None:
        """Stop the embedded server if this process started it (blocking)."""
        embedded, self.embedded = self.embedded, None
        if embedded is None:
            return
        (embedded.data_dir / URL_FILE).unlink(missing_ok=True)
        # A short grace: nx-27017 keeps acknowledged writes across SIGKILL, and on
        # Python 3.12+ its SIGTERM can wait seconds for connections to drain, which
        # would eat the service's bounded stop (SHUTDOWN_TIMEOUT_SECONDS).
        embedded.stop(timeout=2.0)
        log.info("embedded database stopped")


def open_database(settings: Settings, timeout: float = 30.0) -> DatabaseHandle:
    """The database for ``settings`` (blocking: call it in a thread from async code)."""
    url = settings.mongodb_url_value()
    if url is not None:
        return DatabaseHandle(url)
    data_dir = Path(settings.data_dir).resolve()
    running = running_embedded_url(data_dir)
    if running is not None:
        log.warning("attaching to the embedded development database already serving %s", data_dir)
        return DatabaseHandle(running, attached=True)
    # Not on the service's own port: it is still free now, while the app starts.
    embedded = EmbeddedMongo(data_dir, port=free_port(avoid={settings.port}))
    embedded.start(timeout)
    (data_dir / URL_FILE).write_text(embedded.url)
    return DatabaseHandle(embedded.url, embedded)


class DatabaseUnreachable(RuntimeError):
    """The configured MongoDB did not answer in time; the message is one line for operators."""


def database_hosts(url: str) -> str:
    """The hosts a MongoDB URL names, without credentials or options ("h1:27017,h2:27017")."""
    try:
        nodes = parse_uri(url, validate=False)["nodelist"]
    except (ConfigurationError, ValueError):
        return "the host in MONGODB_URL (unparseable)"
    return ",".join(f"{host}:{port}" for host, port in nodes) or "MONGODB_URL"


def unreachable(url: str, waited: float, error: BaseException) -> DatabaseUnreachable:
    reason = str(error).split(" (configured timeouts", 1)[0].split(", Timeout:", 1)[0]
    hosts = database_hosts(url)
    return DatabaseUnreachable(
        f"cannot reach MongoDB at {hosts} after waiting {waited:.1f}s ({reason}); "
        "check MONGODB_URL and that the database is running"
    )


def check_reachable(settings: Settings) -> None:
    """Raise ``DatabaseUnreachable`` unless ``MONGODB_URL`` (when set) answers a ping in time.

    Blocking; used before serving so that a wrong URL ends start-up with one
    clear line instead of a failed ASGI lifespan and its traceback.
    """
    url = settings.mongodb_url_value()
    if url is None or settings.store != "mongo":
        return
    timeout_ms = int(settings.mongodb_connect_timeout_seconds * 1000)
    started = time.monotonic()
    client: MongoClient[dict[str, Any]] = MongoClient(
        url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    try:
        client.admin.command("ping")
    except PyMongoError as error:
        raise unreachable(url, time.monotonic() - started, error) from None
    finally:
        client.close()


def running_embedded_url(data_dir: Path) -> str | None:
    """The URL of a live nx-27017 owning ``data_dir``, if there is one that answers."""
    try:
        pid = int((data_dir / "nx-27017.pid").read_text().strip())
        url = (data_dir / URL_FILE).read_text().strip()
    except (FileNotFoundError, ValueError):
        return None
    if is_nx_process(pid) and answers_ping(url):
        return url
    return None
