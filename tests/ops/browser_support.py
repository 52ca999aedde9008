"""What the browser tests need besides Python packages: Chromium and GraphiQL's assets.

- Chromium: Debian's ``chromium`` at /usr/bin/chromium, installed with apt-get
  when missing and possible (root, apt-get present), else the test skips.
- GraphiQL's assets: fetched from the npm registry by ``graphiql-assets/fetch.py``
  (what ``make graphiql-assets`` runs) into ``.cache/graphiql``, where the
  service looks for them by default; the page then loads nothing from the CDN.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
GRAPHIQL_ASSETS = ROOT / ".cache" / "graphiql"


class Unavailable(RuntimeError):
    """A prerequisite cannot be provided on this machine (the reason is the message)."""


def ensure_chromium() -> str:
    """The Chromium executable, installing Debian's package if needed."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise Unavailable("Chromium is missing and apt-get cannot install it here (not root)")
    for command in (["apt-get", "install", "-y", "-q", "chromium"],
                    ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "chromium"]):  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if command[1] == "install" and done.returncode == 0 and Path(CHROMIUM).exists():
            return CHROMIUM
    raise Unavailable(f"apt-get could not install chromium: {done.stderr[-500:]}")


def ensure_graphiql_assets(out: Path = GRAPHIQL_ASSETS) -> Path:
    """GraphiQL's files in ``out``, fetched from the npm registry when missing."""
    if not (out / "COMPLETE").is_file():
        done = subprocess.run(
            [sys.executable, str(ROOT / "graphiql-assets" / "fetch.py"), str(out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise Unavailable(f"GraphiQL's assets could not be fetched: {done.stderr[-500:]}")
    return out


def content_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
