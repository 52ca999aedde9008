"""What the browser test needs besides Python packages: Chromium and GraphiQL's assets.

- Chromium: Debian's ``chromium`` at /usr/bin/chromium, installed with apt-get
  when missing and possible (root, apt-get present), else the test skips.
- GraphiQL's page (strawberry's template) loads React and GraphiQL from the
  unpkg CDN, which these machines cannot reach (loopback only). The test
  serves the very same files from their npm packages instead: ``npm pack`` of
  each ``package@version`` the template names, unpacked into a cache; the
  browser's requests to unpkg are answered from there (the template's
  subresource-integrity hashes still apply, so the files must be identical).
"""

from __future__ import annotations

import mimetypes
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import strawberry

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
ASSET_CACHE = Path(tempfile.gettempdir()) / "ledger-es-graphiql-assets"
_UNPKG = re.compile(r"https://unpkg\.com/((?:@[\w.-]+/)?[\w.-]+)@([\w.-]+)/([\w./-]+)")


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


def graphiql_asset_urls() -> list[str]:
    """The CDN URLs strawberry's GraphiQL page loads."""
    template = Path(strawberry.__file__).parent / "static" / "graphiql.html"
    return sorted({m.group(0) for m in _UNPKG.finditer(template.read_text())})


def ensure_graphiql_assets(cache: Path = ASSET_CACHE) -> dict[str, Path]:
    """Map each CDN URL of the GraphiQL page to a local copy, fetching packages with npm."""
    assets: dict[str, Path] = {}
    for url in graphiql_asset_urls():
        match = _UNPKG.match(url)
        assert match is not None
        package, version, path = match.groups()
        root = cache / f"{package.replace('/', '__')}@{version}"
        if not (root / "package" / path).exists():
            _unpack(package, version, root)
        assets[url] = root / "package" / path
        if not assets[url].exists():
            raise Unavailable(f"{package}@{version} has no file {path}")
    return assets


def _unpack(package: str, version: str, root: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not installed: cannot fetch GraphiQL's assets")
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [npm, "pack", f"{package}@{version}", "--pack-destination", scratch, "--silent"],
            capture_output=True, text=True, timeout=300, cwd=scratch,
        )  # fmt: skip
        tarballs = list(Path(scratch).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise Unavailable(f"npm pack {package}@{version} failed: {done.stderr[-500:]}")
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarballs[0]) as archive:
            archive.extractall(root, filter="data")


def content_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
