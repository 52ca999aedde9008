"""Run an ASGI app under uvicorn in a child process, with one fixed set of settings.

Both the service and the trivial baseline app are started through
``uvicorn_server`` so they differ only in the app: one worker, the settings
``runtime/bootstrap.py`` gives the service, no access log, loopback only. The
child is always stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from runtime.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent

# As runtime/bootstrap.py configures uvicorn for the service (auto loop/http/ws
# pick uvloop, httptools and the sans-io websockets protocol), minus its logging.
UVICORN_SETTINGS = (
    "--host", "127.0.0.1",
    "--workers", "1",
    "--loop", "auto",
    "--http", "auto",
    "--ws", "auto",
    "--ws-max-size", "1000000",
    "--ws-per-message-deflate", "false",  # as runtime/bootstrap.py configures the service
    "--proxy-headers",
    "--no-server-header",
    "--no-access-log",
    "--log-level", "warning",
)  # fmt: skip


@dataclass(frozen=True)
class RunningServer:
    url: str  # the GraphQL endpoint
    pid: int

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)


def uvicorn_command(app: str, port: int, *, factory: bool = False) -> list[str]:
    command = [sys.executable, "-m", "uvicorn", app, *UVICORN_SETTINGS, "--port", str(port)]
    if factory:
        command.append("--factory")
    return command


@contextlib.contextmanager
def uvicorn_server(
    app: str,
    *,
    env: Mapping[str, str] | None = None,
    path: str = "/graphql",
    factory: bool = False,
    log_file: Path | None = None,
    timeout: float = 60.0,
) -> Iterator[RunningServer]:
    """Start ``app`` (``module:attribute``) and yield once it answers HTTP."""
    port = free_port()
    with _served(
        uvicorn_command(app, port, factory=factory), port, env, path, log_file, timeout
    ) as s:
        yield s


@contextlib.contextmanager
def service_server(
    *,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    timeout: float = 60.0,
) -> Iterator[RunningServer]:
    """``python server.py`` as ``make run`` starts it (its own uvicorn configuration,
    ``runtime/bootstrap.py``), on a free loopback port; yield once it answers HTTP."""
    port = free_port()
    listen = {"HOST": "127.0.0.1", "PORT": str(port), **(env or {})}
    with _served([sys.executable, "server.py"], port, listen, "/graphql", log_file, timeout) as s:
        yield s


@contextlib.contextmanager
def _served(
    command: list[str],
    port: int,
    env: Mapping[str, str] | None,
    path: str,
    log_file: Path | None,
    timeout: float,
) -> Iterator[RunningServer]:
    child_env = {**os.environ, **(env or {})}
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(log_file, "ab")) if log_file else subprocess.DEVNULL
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}{path}"
            _wait_until_ready(process, url, timeout)
            yield RunningServer(url=url, pid=process.pid)
        finally:
            _stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before answering")
        try:
            httpx.post(url, json={"query": "{ __typename }"}, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer within {timeout}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
