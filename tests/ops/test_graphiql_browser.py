"""GraphiQL in headless Chromium against a real server: a query, a subscription, a live update.

The page is served by ``python server.py`` (embedded database); the
subscription runs over GraphiQL's own WebSocket client; the deposit that must
appear live is sent by another client (httpx). The final screenshot is kept
in test-artifacts/.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.ops.browser_support import (
    CHROMIUM_ARGS,
    Unavailable,
    content_type,
    ensure_chromium,
    ensure_graphiql_assets,
)
from tests.runtime.processes import ROOT, ServerProcess, running_server

# Installing Chromium on a fresh machine (apt-get) can take minutes: allow for it.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(1200)]

ARTIFACTS = ROOT / "test-artifacts"
OPEN = 'mutation { openAccount(input: {owner: "grace", currency: "EUR"}) { ... on AccountPayload { account { id } } } }'  # noqa: E501
QUERY = "query Owners { accounts { edges { node { owner balance } } } }"
SUBSCRIPTION = 'subscription Live { accountChanged(id: "%s") { owner balance version } }'
DEPOSIT = 'mutation { deposit(input: {accountId: "%s", amount: "12.30"}) { __typename } }'


def _post(server: ServerProcess, query: str) -> Any:
    response = httpx.post(server.url + "/graphql", json={"query": query}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _router(assets: dict[str, Path]) -> Any:
    """Loopback goes through; the CDN is answered from the local copies; the rest is refused."""

    def route(handle: Any) -> None:
        url = handle.request.url
        if urlsplit(url).hostname in ("127.0.0.1", "localhost"):
            handle.continue_()
        elif (path := assets.get(url.split("?")[0])) is not None:
            headers = {"content-type": content_type(path), "access-control-allow-origin": "*"}
            handle.fulfill(status=200, body=path.read_bytes(), headers=headers)
        else:
            handle.abort()

    return route


def _wait_for_text(page: Any, selector: str, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = page.locator(selector).first.inner_text() if page.locator(selector).count() else ""
        if text in seen:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in {selector}; last seen: {seen!r}")


def _run_in_graphiql(page: Any, server: ServerProcess, document: str) -> None:
    page.goto(f"{server.url}/graphql?q={quote(document)}")
    page.locator(".graphiql-execute-button").click(timeout=30_000)


def test_graphiql_query_subscription_and_live_mutation(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev extra")
    try:
        chromium = ensure_chromium()
        assets = ensure_graphiql_assets()
    except Unavailable as reason:
        pytest.skip(str(reason))
    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(tmp_path) as server:
        account = _post(server, OPEN)["data"]["openAccount"]["account"]["id"]
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                context.route("**/*", _router(assets))
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))

                _run_in_graphiql(page, server, QUERY)
                _wait_for_text(page, ".graphiql-response", '"grace"')

                _run_in_graphiql(page, server, SUBSCRIPTION % account)
                _wait_for_text(page, ".graphiql-response", '"version": 1')
                _post(server, DEPOSIT % account)  # another client changes the account
                shown = _wait_for_text(page, ".graphiql-response", '"12.30"')
                assert '"version": 2' in shown
                page.screenshot(path=str(ARTIFACTS / "graphiql-subscription.png"), full_page=True)
                assert not errors, errors
            finally:
                browser.close()
