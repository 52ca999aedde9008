"""Helpers to run ``python server.py`` and the CLI as real processes in tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from runtime.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 40.0
STOP_TIMEOUT = 30.0
# GRAPHQL_ENGINE: a server started by a plain-engine run (make test-plain-engine) runs that engine.
_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "GRAPHQL_ENGINE")


def clean_env(**values: str) -> dict[str, str]:
    """A minimal environment: nothing from the developer's settings leaks in."""
    env = {k: v for k, v in os.environ.items() if k in _KEEP}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


@dataclass
class ServerProcess:
    """A running ``python server.py`` on a loopback ``port``, its output in ``log_path``."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"{self.url}/graphql"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, path: str = "/healthz", within: float = START_TIMEOUT) -> None:
        """Until ``path`` answers 200; raise (with the log) if it exits or time runs out."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not answering {path} within {within}s:\n{self.log()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def start_server(
    workdir: Path, env: Mapping[str, str], *, cwd: Path | None = None, new_session: bool = False
) -> ServerProcess:
    """Start ``python server.py`` on a free port (``PORT`` added to ``env``); does not wait.

    The output goes to ``workdir/server-<port>.log``; ``cwd`` defaults to ``workdir``.
    The caller stops it (``stop()``) in a finally.
    """
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "server.py")],
            cwd=cwd or workdir,
            env={**env, "PORT": str(port)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )
    return ServerProcess(process, port, log_path)


@contextmanager
def serving(
    workdir: Path, env: Mapping[str, str], *, ready: str = "/healthz", within: float = START_TIMEOUT
) -> Iterator[ServerProcess]:
    """``start_server``, wait until ``ready`` answers 200, stop it in finally."""
    server = start_server(workdir, env)
    try:
        server.wait_until(ready, within)
        yield server
    finally:
        server.stop()


@contextmanager
def running_server(tmp_path: Path, env: Mapping[str, str] | None = None) -> Iterator[ServerProcess]:
    """``python server.py`` in a clean environment, ``DATA_DIR`` in ``tmp_path``, until healthy."""
    values = {"DATA_DIR": str(tmp_path / "data"), **(env or {})}
    with serving(tmp_path, clean_env(**values)) as server:
        yield server


def run_cli(
    *args: str, env: Mapping[str, str], cwd: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``python -m runtime ARGS`` to completion (bounded in time)."""
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        cwd=cwd,
        env=clean_env(PYTHONPATH=str(ROOT), **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
