"""Run the real service (``python server.py``) on a free loopback port for e2e tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.output()}")
        try:
            if httpx.get(f"http://127.0.0.1:{server.port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready in {START_TIMEOUT}s:\n{server.output()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def running_server(
    workdir: Path, mongo_url: str, env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Start ``server.py`` against ``mongo_url`` (a fresh database); stop it in finally."""
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MONGODB_URL": mongo_url,
        "MONGODB_DATABASE": f"e2e_{uuid.uuid4().hex[:12]}",
        "DATA_DIR": str(workdir / "data"),
        "AUTH_MODE": "dev",
        "LOG_FORMAT": "text",
        **(env or {}),
    }
    log = workdir / f"server-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "server.py")],
            cwd=workdir,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(port, process, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(process)
