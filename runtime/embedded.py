"""The embedded development database: nx-27017 as a child process.

Used when ``MONGODB_URL`` is unset, and by the test fixtures. The server speaks
the MongoDB wire protocol over loopback, so the service's real MongoDB code
runs against it with the real driver. Where it differs from MongoDB is listed in
docs/architecture.md ("What the embedded database taught us").
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Collection
from pathlib import Path
from types import TracebackType

from pymongo import MongoClient
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)

# The package ships no __main__; this is what its console script runs.
_LAUNCH = "import sys; from nx_27017.nx_27017 import main; sys.exit(main())"


class EmbeddedDatabaseError(RuntimeError):
    """The embedded database could not be started or is in use by another process."""


def free_port(avoid: Collection[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now, and not one of ``avoid``.

    ``avoid`` keeps the embedded database off the port the service itself is
    about to listen on: that port is free until uvicorn binds it, after start-up.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


class EmbeddedMongo:
    """Start, await and stop one nx-27017 process owning ``data_dir``.

    The pid and log files live inside ``data_dir`` (the defaults are one
    machine-wide path). A pid file left by a dead process is removed; one whose
    process still runs nx-27017 means another instance owns the directory.
    """

    def __init__(self, data_dir: Path | str, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.started: subprocess.Popen[bytes] | None = None  # kept after stop, for the last resort
        # start and stop exclude each other: a restart still running in a thread
        # when the service stops must not leave a database nobody stops.
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "nx-27017.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "nx-27017.log"

    def exit_code(self) -> int | None:
        """The exit status of a database this object started that has died; else None."""
        process = self.process
        return None if process is None else process.poll()

    def start(self, timeout: float = 20.0) -> None:
        """Start nx-27017 on ``port`` (again, after it died: the URL stays the same)."""
        with self._lock:
            self._start(timeout)

    def _start(self, timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._clear_stale_pid_file()
        command = [
            sys.executable, "-c", _LAUNCH,
            "--data-dir", str(self.data_dir / "db"),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--pid-file", str(self.pid_file),
            "--log-file", str(self.log_file),
        ]  # fmt: skip
        # Own process group: a Ctrl-C in the terminal reaches the service, which
        # then stops the database last, after draining its own work.
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.started = self.process
        self._wait_until_ready(timeout)
        log.warning(
            "Using the EMBEDDED DEVELOPMENT DATABASE (nx-27017, pid %s) at %s with data in %s. "
            "Set MONGODB_URL to use a real MongoDB.",
            self.process.pid,
            self.url,
            self.data_dir,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
        with self._lock:
            self._stop(timeout)

    def _stop(self, timeout: float) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the database, as a crash would (fault-injection tests)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def kill_if_running(self) -> None:
        """SIGKILL the last database this object started, if it still runs.

        Takes no lock: it is the last resort at exit, when a stop may still be
        waiting in another thread (the service's bounded stop gave up on it).
        """
        process = self.started
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _clear_stale_pid_file(self) -> None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            self.pid_file.unlink(missing_ok=True)
            return
        if is_nx_process(pid):
            raise EmbeddedDatabaseError(
                f"{self.data_dir} is in use by a running nx-27017 (pid {pid}); "
                "stop it or choose another DATA_DIR"
            )
        log.info("removing stale pid file %s (pid %s is gone)", self.pid_file, pid)
        self.pid_file.unlink(missing_ok=True)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise EmbeddedDatabaseError(
                    f"nx-27017 exited with code {self.process.returncode}; see {self.log_file}"
                )
            if answers_ping(self.url):
                return
            time.sleep(0.05)
        self._stop(10.0)
        raise EmbeddedDatabaseError(f"nx-27017 did not answer within {timeout}s")


def answers_ping(url: str) -> bool:
    """Whether a MongoDB server at ``url`` answers ``ping`` within about 200 ms (blocking).

    Never raises for an absent or unreachable server: that is ``False``.
    """
    client: MongoClient[dict[str, object]] = MongoClient(
        url, serverSelectionTimeoutMS=200, connectTimeoutMS=200
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def is_nx_process(pid: int) -> bool:
    """Whether ``pid`` is a live nx-27017 process (Linux ``/proc``; ``False`` if not visible).

    Used to tell a pid file left by a dead server from one owned by a running one.
    """
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ProcessLookupError, PermissionError, FileNotFoundError):
        return False
    return b"nx_27017" in cmdline or b"nx-27017" in cmdline
