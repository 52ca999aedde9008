"""The pinned npm packages the frontend tests run (tests/frontend/package.json + lock).

``node_modules()`` installs them with ``npm ci`` into ``.cache/frontend-node/<lock hash>``
at the repository root (ignored by git): a fresh clone installs once, later runs
reuse the copy, and a changed lock file gets a fresh directory. Without node or
npm the caller skips (``Unavailable``), like the browser test without Chromium.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.ops.browser_support import Unavailable
from tests.runtime.processes import ROOT

HERE = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "frontend-node"
NPM_TIMEOUT_SECONDS = 600


def node() -> str:
    found = shutil.which("node")
    if found is None:
        raise Unavailable("node is not installed")
    return found


def npm_ci(package_dir: Path, cache: Path) -> Path:
    """``npm ci`` of ``package_dir``'s package.json and lock into ``cache/<lock hash>``.

    Returns the directory holding ``node_modules``. Installs into a temporary
    sibling first and renames it into place, so an interrupted install is never
    taken for a finished one and two runs at once do not share a half-made copy.
    """
    lock = (package_dir / "package-lock.json").read_bytes()
    target = cache / hashlib.sha256(lock).hexdigest()[:16]
    if (target / "node_modules" / ".package-lock.json").exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not installed")
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="install-", dir=cache))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(package_dir / name, scratch / name)
        done = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=scratch, capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS,
            env={**os.environ, "npm_config_update_notifier": "false"},
        )  # fmt: skip
        if done.returncode != 0:
            raise Unavailable(f"npm ci failed in {package_dir}: {done.stderr[-800:]}")
        try:
            scratch.rename(target)
        except OSError:  # another run finished first: use its copy
            if not (target / "node_modules").exists():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def node_modules() -> Path:
    """The directory whose ``node_modules`` holds the frontend tests' packages."""
    node()
    return npm_ci(HERE, CACHE)
