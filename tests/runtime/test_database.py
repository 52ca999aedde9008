"""The embedded development database as the service opens it (``runtime.database``).

Real nx-27017 processes in temporary directories: start, stop, a stale pid
file, data that survives a restart, and a second process attaching instead of
fighting over the directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from runtime.database import URL_FILE, DatabaseHandle, open_database, running_embedded_url
from runtime.embedded import EmbeddedDatabaseError, EmbeddedMongo, free_port
from runtime.settings import load_settings


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def handles() -> Iterator[list[DatabaseHandle]]:
    opened: list[DatabaseHandle] = []
    try:
        yield opened
    finally:
        for handle in reversed(opened):
            handle.close()


def _open(data_dir: Path, handles: list[DatabaseHandle]) -> DatabaseHandle:
    handle = open_database(load_settings(None, data_dir=str(data_dir)))
    handles.append(handle)
    return handle


def _client(url: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(url, serverSelectionTimeoutMS=3000)


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_data_survives_a_restart(data_dir: Path, handles: list[DatabaseHandle]) -> None:
    first = _open(data_dir, handles)
    assert first.embedded is not None
    with _client(first.url) as client:
        client["ledger"]["things"].insert_one({"_id": "kept", "n": 1})
    first.close()
    assert not (data_dir / URL_FILE).exists()
    assert running_embedded_url(data_dir) is None

    second = _open(data_dir, handles)
    with _client(second.url) as client:
        assert client["ledger"]["things"].find_one({"_id": "kept"}) == {"_id": "kept", "n": 1}


def test_a_stale_pid_file_does_not_block_start(
    data_dir: Path, handles: list[DatabaseHandle]
) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "nx-27017.pid").write_text(str(_dead_pid()))
    (data_dir / URL_FILE).write_text("mongodb://127.0.0.1:1/?directConnection=true")
    handle = _open(data_dir, handles)
    assert handle.embedded is not None
    with _client(handle.url) as client:
        assert client.admin.command("ping")["ok"] == 1


def test_a_second_process_attaches_and_never_stops_it(
    data_dir: Path, handles: list[DatabaseHandle]
) -> None:
    owner = _open(data_dir, handles)
    guest = _open(data_dir, handles)
    assert guest.attached
    assert guest.embedded is None
    assert guest.url == owner.url
    guest.close()
    with _client(owner.url) as client:
        assert client.admin.command("ping")["ok"] == 1


def test_a_live_owner_is_not_mistaken_for_stale(
    data_dir: Path, handles: list[DatabaseHandle]
) -> None:
    _open(data_dir, handles)
    with pytest.raises(EmbeddedDatabaseError, match="in use"):
        EmbeddedMongo(data_dir).start()


def test_stop_ends_the_process(data_dir: Path, handles: list[DatabaseHandle]) -> None:
    handle = _open(data_dir, handles)
    assert handle.embedded is not None
    assert handle.embedded.process is not None
    pid = handle.embedded.process.pid
    handle.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_mongodb_url_starts_nothing(tmp_path: Path, mongo_url: str) -> None:
    handle = open_database(load_settings(None, data_dir=str(tmp_path), mongodb_url=mongo_url))
    assert handle.embedded is None
    assert handle.url == mongo_url
    assert not any(tmp_path.iterdir())


def test_free_port_never_picks_an_avoided_port() -> None:
    """The embedded database keeps off the port the service is about to bind."""
    taken = {free_port() for _ in range(20)}
    for _ in range(50):
        assert free_port(avoid=taken) not in taken


def test_the_last_resort_ends_a_database_whose_stop_still_waits(tmp_path: Path) -> None:
    """The bounded stop gave up while a stop waits in a thread: nothing is left behind."""
    embedded = EmbeddedMongo(tmp_path / "data")
    embedded.start()
    process = embedded.process
    assert process is not None
    os.kill(process.pid, signal.SIGSTOP)  # it will not act on SIGTERM
    waiting = threading.Thread(target=embedded.stop, kwargs={"timeout": 60})
    waiting.start()
    try:
        time.sleep(0.2)
        assert waiting.is_alive()
        DatabaseHandle(embedded.url, embedded).kill_leftover()
        waiting.join(10)
        assert not waiting.is_alive()
        assert process.poll() is not None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
