"""GraphiQL's files come from the service itself when a verified local copy exists."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import pytest

from runtime.graphiql import ASSETS_PATH, graphiql_page
from tests.frontend.serving import served
from tests.ops.browser_support import Unavailable, ensure_graphiql_assets
from tests.runtime.processes import ROOT

CDN = re.compile(r'(?:src|href)="https://unpkg\.com/([^"]+)"')
LOCAL = re.compile(rf'(?:src|href)="{ASSETS_PATH}/([^"]+)"')
HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def assets() -> Path:
    try:
        return ensure_graphiql_assets()
    except Unavailable as reason:
        pytest.skip(str(reason))


def test_the_pinned_versions_are_those_of_the_page() -> None:
    """graphiql-assets/package.json pins every file the page names, at its version."""
    cdn_paths = set(CDN.findall(graphiql_page(Path("/nonexistent"))[0]))
    manifest = json.loads((ROOT / "graphiql-assets" / "package.json").read_text())
    pinned = set()
    for asset in manifest["assets"]:
        parts = asset.split("/")
        count = 2 if asset.startswith("@") else 1
        name = "/".join(parts[:count])
        pinned.add(f"{name}@{manifest['dependencies'][name]}/{'/'.join(parts[count:])}")
    assert pinned == cdn_paths


def test_every_verified_file_is_local(assets: Path) -> None:
    page, remote = graphiql_page(assets)
    assert remote == []
    assert CDN.findall(page) == []
    assert len(LOCAL.findall(page)) == 7
    assert page.count('integrity="sha384-') == 7  # the browser checks them too


def test_a_missing_or_altered_file_falls_back_to_the_cdn(assets: Path, tmp_path: Path) -> None:
    copy = tmp_path / "assets"
    shutil.copytree(assets, copy)
    (copy / "react@18.2.0" / "umd" / "react.production.min.js").write_text("alert('owned')")
    (copy / "graphiql@3.8.3" / "graphiql.min.css").unlink()
    page, remote = graphiql_page(copy)
    assert sorted(remote) == [
        "graphiql@3.8.3/graphiql.min.css",
        "react@18.2.0/umd/react.production.min.js",
    ]
    assert len(LOCAL.findall(page)) == 5
    (copy / "COMPLETE").unlink()  # an interrupted fetch: nothing is used
    assert len(graphiql_page(copy)[1]) == 7


async def test_the_service_serves_the_page_and_its_files(assets: Path) -> None:
    async with served(graphiql_assets_dir=assets) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/graphql", headers=HTML)
        assert page.status_code == 200
        local = LOCAL.findall(page.text)
        assert len(local) == 7
        assert CDN.findall(page.text) == []
        for path in local:
            file = await http.get(f"{ASSETS_PATH}/{path}")
            assert file.status_code == 200
            assert file.content == (assets / path).read_bytes()
            assert "immutable" in file.headers["cache-control"]
        assert (await http.get(f"{ASSETS_PATH}/../../server.py")).status_code == 404
        assert (await http.get(f"{ASSETS_PATH}/nope.js")).status_code == 404


async def test_without_a_local_copy_the_page_uses_the_cdn(tmp_path: Path) -> None:
    async with served(graphiql_assets_dir=tmp_path) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/graphql", headers=HTML)
        assert len(CDN.findall(page.text)) == 7
        assert (
            await http.get(f"{ASSETS_PATH}/react@18.2.0/umd/react.production.min.js")
        ).status_code == 404


async def test_no_graphiql_no_assets(assets: Path) -> None:
    async with (
        served(graphiql=False, graphiql_assets_dir=assets) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert (await http.get("/graphql", headers=HTML)).status_code == 404
        assert (
            await http.get(f"{ASSETS_PATH}/react@18.2.0/umd/react.production.min.js")
        ).status_code == 404
