"""Run the real service (``python server.py``) on a free loopback port for e2e tests.

The process handling is ``tests/runtime/processes.py``; this module adds the e2e
environment: the caller's environment plus a fresh database on ``mongo_url``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.runtime.processes import ROOT, ServerProcess, serving

START_TIMEOUT = 60.0
Server = ServerProcess

__all__ = ["Server", "e2e_env", "running_server"]


def e2e_env(workdir: Path, mongo_url: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment plus a server on ``mongo_url`` with a fresh database, dev auth."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOST": "127.0.0.1",
        "MONGODB_URL": mongo_url,
        "MONGODB_DATABASE": f"e2e_{uuid.uuid4().hex[:12]}",
        "DATA_DIR": str(workdir / "data"),
        "AUTH_MODE": "dev",
        "LOG_FORMAT": "text",
        **(env or {}),
    }


@contextmanager
def running_server(
    workdir: Path, mongo_url: str, env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Start ``server.py`` against ``mongo_url`` (a fresh database); stop it in finally."""
    environment = e2e_env(workdir, mongo_url, env)
    with serving(workdir, environment, ready="/readyz", within=START_TIMEOUT) as server:
        yield server
