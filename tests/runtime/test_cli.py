"""The ``ledger`` command line against a real embedded database.

Most commands run in-process (``runtime.cli.main`` with an output stream),
which is fast; ``--help`` and a following ``events tail`` run as real
processes, the way an operator runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import pty
import socket
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from projections.checkpoints import Checkpoint, CheckpointStore
from projections.documents_mongo import MongoDocumentStore
from runtime.cli import main
from tests.runtime.processes import ROOT, clean_env, run_cli


@pytest.fixture
def db_env(mongo_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Settings for a fresh database on the session's embedded server."""
    env = {"MONGODB_URL": mongo_url, "MONGODB_DATABASE": f"cli_{uuid.uuid4().hex[:10]}",
           "POLL_INTERVAL_SECONDS": "0.05"}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return env


@pytest.fixture(autouse=True)
def keep_root_logging() -> Iterator[None]:
    """``main`` installs its log handler on the root logger; put things back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _run(*argv: str) -> str:
    out = io.StringIO()
    assert main(list(argv), out) == 0
    return out.getvalue()


def test_console_script_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["ledger"] == "runtime.cli:main"


def test_help_explains_every_command(tmp_path: Path) -> None:
    done = run_cli("--help", env={}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for word in ("serve", "seed", "events", "projections", "MONGODB_URL", "examples:"):
        assert word in done.stdout
    commands = (["events", "tail"], ["projections"], ["projections", "rebuild"], ["seed"],
                ["projections", "retry"])  # fmt: skip
    for argv in commands:
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--help"])
        assert exited.value.code == 0


def test_bad_settings_are_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORT", "not-a-port")
    assert main(["projections", "status"]) == 2
    assert "PORT:" in capsys.readouterr().err


def test_seed_status_tail_and_rebuild(db_env: dict[str, str]) -> None:
    seeded = _run("seed", "--wait", "30")
    assert "seeded 5 accounts with 16 commands (0 already applied before)" in seeded
    assert seeded.count(": COMPLETED") == 3
    assert seeded.count(": FAILED") == 2
    assert "(16 already applied before)" in _run("seed", "--wait", "5")

    lines = _run("events", "tail", "--after", "0", "--no-follow").splitlines()
    positions = [int(line.split()[0]) for line in lines]
    assert positions == list(range(1, len(lines) + 1))
    assert "AccountOpened" in lines[0]
    assert len(_run("events", "tail", "--after", "0", "--limit", "3").splitlines()) == 3
    first = json.loads(_run("events", "tail", "--after", "0", "--limit", "1", "--json"))
    assert first["position"] == 1
    assert first["correlation_id"] == "seed"

    status = json.loads(_run("projections", "status", "--json"))
    assert {row["name"] for row in status} == {
        "accounts", "account_statement", "transfers", "ledger", "transfer_manager"
    }  # fmt: skip
    assert all(row["checkpoint"] == len(lines) for row in status)
    table = _run("projections", "status")
    assert table.startswith("CONSUMER")

    rebuilt = _run("projections", "rebuild", "accounts")
    assert f"rebuilt accounts: {len(lines)} events up to position {len(lines)}" in rebuilt


def test_rebuild_of_an_unknown_projection_fails_clearly(
    db_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["projections", "rebuild", "nonsense"], io.StringIO()) == 1
    assert "nonsense" in capsys.readouterr().err


def _on_checkpoints(env: dict[str, str], name: str, stop: bool = False) -> Checkpoint:
    """``name``'s durable checkpoint (first reporting it stopped on an error if ``stop``)."""

    async def run() -> Checkpoint:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(env["MONGODB_URL"])
        try:
            store = CheckpointStore(MongoDocumentStore(client[env["MONGODB_DATABASE"]]))
            if stop:
                await store.report(name, "stopped_on_error", "RuntimeError: boom", 3)
            return await store.load(name)
        finally:
            await client.close()

    return asyncio.run(run())


def test_retry_asks_a_stopped_projection_to_try_again(db_env: dict[str, str]) -> None:
    stopped = _on_checkpoints(db_env, "ledger", stop=True)
    assert not stopped.retry_requested()
    assert "retry requested for ledger" in _run("projections", "retry", "ledger")
    # the consumer, in whatever process holds it, resumes on this durable flag
    assert _on_checkpoints(db_env, "ledger").retry_requested()


def test_retry_of_an_unknown_projection_fails_clearly(
    db_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["projections", "retry", "nonsense"], io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "unknown projection 'nonsense'" in err
    assert "transfer_manager" in err  # names the known ones
    assert not _on_checkpoints(db_env, "nonsense").retry_requested()


def test_retry_help_says_what_it_is_for(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["projections", "retry", "--help"])
    assert "stopped_on_error" in capsys.readouterr().out


def test_events_tail_follows_new_events(db_env: dict[str, str], tmp_path: Path) -> None:
    """A real ``python -m runtime events tail`` prints events appended after it started."""
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime", "-v", "events", "tail", "--after", "0", "--limit", "2"],
        cwd=tmp_path, env=clean_env(PYTHONPATH=str(ROOT), **db_env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        for line in process.stderr:  # ends at EOF if the process dies
            if "following events after position 0" in line:
                break
        _run("seed", "--wait", "0")  # appends while the tail is following
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, err
    assert [line.split()[0] for line in out.splitlines()] == ["1", "2"]


def test_rebuild_of_a_process_manager_says_why_and_lists_the_read_models(
    db_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["projections", "rebuild", "transfer_manager"], io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "process manager" in err
    assert "accounts, account_statement, transfers, ledger" in err


def test_rebuild_of_an_unknown_name_lists_the_read_models(
    db_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["projections", "rebuild", "acounts"], io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "'acounts'" in err
    assert "accounts, account_statement, transfers, ledger" in err


def test_events_tail_says_when_it_waits(db_env: dict[str, str], tmp_path: Path) -> None:
    """At the end of the log ``events tail`` says, once, that it waits for more."""
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime", "events", "tail", "--after", "0"],
        cwd=tmp_path, env=clean_env(PYTHONPATH=str(ROOT), **db_env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # ends at EOF if the process dies
    finally:
        process.kill()
        process.communicate(timeout=10)  # reaps it and closes both pipes
    assert line.startswith("waiting for new events after position 0"), line


def test_serve_on_a_busy_port_says_so_before_starting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(PYTHONPATH=str(ROOT), DATA_DIR=str(tmp_path / "data"))
        done = subprocess.run(
            [sys.executable, "-m", "runtime", "serve", "--port", str(port)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "--port" in done.stderr
    assert "serving on" not in done.stderr + done.stdout
    assert not (tmp_path / "data").exists()  # nothing started, not even the database


def test_an_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {
        "MONGODB_URL": f"mongodb://olga:hunter2@127.0.0.1:{port}/",
        "MONGODB_CONNECT_TIMEOUT_SECONDS": "0.5",
    }
    done = run_cli("projections", "status", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(f"ledger: cannot reach MongoDB at 127.0.0.1:{port} after waiting")
    assert done.stderr.count("\n") == 1
    assert "hunter2" not in done.stderr


def test_rebuild_shows_progress_on_a_terminal_only(
    db_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run("seed", "--wait", "0")
    capsys.readouterr()
    _run("projections", "rebuild", "accounts")
    assert "rebuilding" not in capsys.readouterr().err  # not a terminal: quiet

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "runtime", "projections", "rebuild", "accounts"],
            cwd=tmp_path, env=clean_env(PYTHONPATH=str(ROOT), **db_env),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower,
            text=True, timeout=60,
        )  # fmt: skip
        os.close(follower)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once everything written was read
            while chunk := os.read(leader, 4096):
                shown += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert "rebuilt accounts:" in done.stdout
    line = shown.decode().replace("\r\n", "\n").split("\r")[-1]
    assert line.startswith("rebuilding accounts: "), shown
    assert "of " in line
    assert "(100%)" in line
    assert "events/s" in line
