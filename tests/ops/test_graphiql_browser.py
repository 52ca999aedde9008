"""GraphiQL in headless Chromium with every non-loopback request blocked.

The page is served by ``python server.py`` (embedded database, JWT auth) with
GraphiQL's files from its own ``/graphql/assets`` (fetched from the npm
registry into ``.cache/graphiql`` like ``make graphiql-assets``). A request
to anything but loopback is aborted and recorded: the page must load, run a
query and show a live subscription update without one. The JWT is typed into
GraphiQL's headers editor (through the page's ``headers`` URL parameter): it
goes with the HTTP query and as the WebSocket's ``connection_init`` payload.
The deposit that must appear live is sent by another client (httpx). The
final screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import jwt
import pytest

from tests.ops.browser_support import (
    CHROMIUM_ARGS,
    Unavailable,
    ensure_chromium,
    ensure_graphiql_assets,
)
from tests.runtime.processes import ROOT, ServerProcess, running_server

# Installing Chromium on a fresh machine (apt-get) can take minutes: allow for it.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(1200)]

ARTIFACTS = ROOT / "test-artifacts"
SECRET = "graphiql-browser-test-secret-0123456789"
OPEN = 'mutation { openAccount(input: {owner: "grace", currency: "EUR"}) { ... on AccountPayload { account { id } } } }'  # noqa: E501
QUERY = "query Owners { accounts { edges { node { owner balance } } } }"
SUBSCRIPTION = 'subscription Live { accountChanged(id: "%s") { owner balance version } }'
DEPOSIT = 'mutation { deposit(input: {accountId: "%s", amount: "12.30"}) { __typename } }'


def _token(user: str) -> str:
    claims = {"sub": user, "roles": [], "exp": int(time.time() + 600)}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def _post(server: ServerProcess, query: str, token: str) -> Any:
    headers = {"authorization": f"Bearer {token}"}
    response = httpx.post(server.http, json={"query": query}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _offline_router(blocked: list[str]) -> Any:
    """Loopback goes through; every other request is aborted and recorded."""

    def route(handle: Any) -> None:
        url = handle.request.url
        if urlsplit(url).hostname in ("127.0.0.1", "localhost"):
            handle.continue_()
        else:
            blocked.append(url)
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


def _run_in_graphiql(page: Any, server: ServerProcess, document: str, token: str) -> None:
    headers = json.dumps({"Authorization": f"Bearer {token}"})
    page.goto(f"{server.http}?q={quote(document)}&headers={quote(headers)}")
    page.locator(".graphiql-execute-button").click(timeout=30_000)


def test_graphiql_offline_query_subscription_and_live_mutation(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev extra")
    try:
        chromium = ensure_chromium()
        assets = ensure_graphiql_assets()
    except Unavailable as reason:
        pytest.skip(str(reason))
    ARTIFACTS.mkdir(exist_ok=True)
    env = {"AUTH_MODE": "jwt", "JWT_SECRET": SECRET, "GRAPHIQL_ASSETS_DIR": str(assets)}
    token = _token("grace")
    with running_server(tmp_path, env) as server:
        account = _post(server, OPEN, token)["data"]["openAccount"]["account"]["id"]
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                blocked: list[str] = []
                context.route("**/*", _offline_router(blocked))
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))

                _run_in_graphiql(page, server, QUERY, token)
                _wait_for_text(page, ".graphiql-response", '"grace"')

                _run_in_graphiql(page, server, SUBSCRIPTION % account, token)
                _wait_for_text(page, ".graphiql-response", '"version": 1')
                _post(server, DEPOSIT % account, token)  # another client changes the account
                shown = _wait_for_text(page, ".graphiql-response", '"12.30"')
                assert '"version": 2' in shown
                page.screenshot(path=str(ARTIFACTS / "graphiql-subscription.png"), full_page=True)
                assert not errors, errors
                assert blocked == [], f"the page reached beyond loopback: {blocked}"
            finally:
                browser.close()
