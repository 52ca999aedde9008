"""Fetch GraphiQL's browser files from the npm registry at install or build time.

    python graphiql-assets/fetch.py OUT

For each package named in ``package.json``'s ``assets`` it downloads the
tarball of the version pinned in ``package-lock.json`` (Python's standard
library only: no node needed in a build stage), checks it against the lock's
``integrity`` hash, and copies the listed files to
``OUT/<package>@<version>/<path>``, the CDN's layout, which the service
serves at ``/graphql/assets/`` (``runtime/graphiql.py``). ``COMPLETE`` is
written last; a directory without it is not used. Re-running with the files
already in place downloads nothing.

To change a version: edit ``package.json``, run ``npm install
--package-lock-only`` here (``.npmrc`` keeps peers out of the lock), and keep
the versions equal to those of strawberry's GraphiQL page (a test checks).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REGISTRY = os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")
COMPLETE = "COMPLETE"
MAX_TARBALL_BYTES = 50_000_000
TIMEOUT_SECONDS = 60


def split_asset(asset: str) -> tuple[str, str]:
    """``@scope/name/dir/file`` -> (``@scope/name``, ``dir/file``)."""
    parts = asset.split("/")
    count = 2 if asset.startswith("@") else 1
    return "/".join(parts[:count]), "/".join(parts[count:])


def wanted() -> dict[tuple[str, str, str], list[str]]:
    """(package, version, integrity) -> the files to copy out of its tarball."""
    manifest = json.loads((HERE / "package.json").read_text())
    lock = json.loads((HERE / "package-lock.json").read_text())["packages"]
    files: dict[tuple[str, str, str], list[str]] = {}
    for asset in manifest["assets"]:
        name, path = split_asset(asset)
        entry = lock[f"node_modules/{name}"]
        if entry["version"] != manifest["dependencies"][name]:
            raise SystemExit(f"{name}: package.json and package-lock.json disagree")
        files.setdefault((name, entry["version"], entry["integrity"]), []).append(path)
    return files


def download(name: str, version: str, integrity: str) -> bytes:
    url = f"{REGISTRY}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        data: bytes = response.read(MAX_TARBALL_BYTES + 1)
    if len(data) > MAX_TARBALL_BYTES:
        raise SystemExit(f"{url}: larger than {MAX_TARBALL_BYTES} bytes")
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise SystemExit(f"{url}: {algorithm} does not match package-lock.json")
    return data


def fetch(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / COMPLETE).unlink(missing_ok=True)
    for (name, version, integrity), paths in wanted().items():
        root = out / f"{name}@{version}"
        if all((root / path).is_file() for path in paths):
            continue
        with tarfile.open(fileobj=io.BytesIO(download(name, version, integrity))) as archive:
            for path in paths:
                member = archive.extractfile(f"package/{path}")
                if member is None:
                    raise SystemExit(f"{name}@{version} has no file {path}")
                target = root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as scratch:
                    shutil.copyfileobj(member, scratch)
                Path(scratch.name).replace(target)
        print(f"{name}@{version}: {', '.join(paths)}")
    (out / COMPLETE).write_text("")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python graphiql-assets/fetch.py OUT")
    fetch(Path(sys.argv[1]))
