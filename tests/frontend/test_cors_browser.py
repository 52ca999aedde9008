"""A page on a second local origin queries, mutates and subscribes; an unlisted one cannot.

``python server.py`` listens on 127.0.0.1:A with ``CORS_ORIGINS=http://localhost:B``.
Two static servers serve the same page (``cors_page.html``) and graphql-ws's browser
build (the npm package pinned in tests/frontend/package.json): one on
http://localhost:B (listed), one on http://127.0.0.1:C (not listed). In headless
Chromium the listed page runs a query and mutations with ``fetch`` and a live
subscription with graphql-ws (``graphql-transport-ws``); the other page's
``fetch`` and WebSocket are refused by the browser (no CORS permission) and the
server (handshake 403).
"""

from __future__ import annotations

import functools
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from runtime.embedded import free_port
from tests.frontend.node_support import HERE, node_modules
from tests.ops.browser_support import CHROMIUM_ARGS, Unavailable, ensure_chromium
from tests.runtime.processes import running_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1200)]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _static_site(root: Path, port: int) -> Iterator[None]:
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _report(page: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report: dict[str, Any] = page.evaluate("window.report")
        if report.get("done"):
            return report
        time.sleep(0.2)
    raise AssertionError(f"the page did not finish: {page.evaluate('window.report')}")


def test_a_listed_origin_works_and_another_is_refused(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev extra")
    try:
        chromium = ensure_chromium()
        modules = node_modules() / "node_modules"
    except Unavailable as reason:
        pytest.skip(str(reason))
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(HERE / "cors_page.html", site / "index.html")
    shutil.copy(modules / "graphql-ws" / "umd" / "graphql-ws.min.js", site / "graphql-ws.min.js")
    listed, unlisted = free_port(), free_port()
    env = {"CORS_ORIGINS": f"http://localhost:{listed}", "STORE": "memory"}
    with (
        running_server(tmp_path, env) as server,
        _static_site(site, listed),
        _static_site(site, unlisted),
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"http://localhost:{listed}/index.html?api={quote(server.http)}")
            report = _report(page)
            assert "error" not in report, report
            assert report["query"] == {"__typename": "Query"}
            assert report["requestId"] == "from-the-page"  # exposed to the page's script
            assert report["deposit"]["deposit"]["__typename"] == "AccountPayload"
            assert [u["version"] for u in report["updates"]][:1] == [1]
            assert report["updates"][-1]["balance"] == "4.20"
            assert not errors, errors

            stranger = browser.new_page()
            stranger.goto(
                f"http://127.0.0.1:{unlisted}/index.html?mode=refused&api={quote(server.http)}"
            )
            refused = _report(stranger)
            assert refused["fetch"] == "refused"
            assert refused["socket"] == "refused"
        finally:
            browser.close()
    assert "Rejected WebSocket connection from origin" in server.log()
