"""GraphiQL served by the service itself, so the page works without internet access.

strawberry's GraphiQL page (``schema._engine.http.graphiql_template``)
loads React, GraphiQL and its explorer plugin from the unpkg CDN, each pinned
to an exact version with a subresource-integrity hash. ``graphiql_page``
rewrites each of those URLs to ``/graphql/assets/<package>@<version>/<path>``
when the service holds a local copy whose SHA-384 matches the page's own
integrity hash; a file that is missing or differs keeps its CDN URL (the
fallback), so a partial copy never breaks the page and a wrong file is never
served under a pinned name.

The local copies are fetched at install or build time from the npm registry
with the versions and lock in ``graphiql-assets/`` (``make graphiql-assets``,
the Dockerfile's ``graphiql-assets`` stage) into ``GRAPHIQL_ASSETS_DIR``, laid
out as the CDN's paths; ``copy-assets.cjs`` writes ``COMPLETE`` last, and a
directory without it is not used. ``asset_routes`` serves that directory with
long-lived caching, since every path names its version.

The page supports subscriptions over WebSocket (GraphiQL's ``graphql-ws``
client, subprotocol ``graphql-transport-ws``) and a headers editor: the
headers typed there (``{"Authorization": "Bearer <jwt>"}``) are sent with every
HTTP request and as the WebSocket's ``connection_init`` payload, which the
service reads for authentication.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
from os import PathLike
from pathlib import Path

from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from schema._engine.http import graphiql_template

log = logging.getLogger(__name__)

ASSETS_PATH = "/graphql/assets"
COMPLETE_MARKER = "COMPLETE"
_CDN_ASSET = re.compile(
    r'(?P<attr>src|href)="https://unpkg\.com/(?P<path>(?:@[\w.-]+/)?[\w.-]+@[\w.-]+/[\w./-]+)"'
    r'(?P<between>\s+)integrity="(?P<integrity>sha384-[A-Za-z0-9+/=]+)"'
)


def assets_ready(directory: Path) -> bool:
    """True when ``directory`` holds a finished copy (``COMPLETE`` written last)."""
    return (directory / COMPLETE_MARKER).is_file()


def _matches(file: Path, integrity: str) -> bool:
    try:
        digest = hashlib.sha384(file.read_bytes()).digest()
    except OSError:
        return False
    return "sha384-" + base64.b64encode(digest).decode() == integrity


def graphiql_page(directory: Path, html: str | None = None) -> tuple[str, list[str]]:
    """The GraphiQL page with each CDN asset held locally pointed at ``ASSETS_PATH``.

    ``html`` defaults to strawberry's page. Returns the page and the CDN paths
    that stay on the CDN (missing, or not matching the page's integrity hash).
    """
    template = html if html is not None else graphiql_template()
    ready = assets_ready(directory)
    remote: list[str] = []

    def local(match: re.Match[str]) -> str:
        path, integrity = match["path"], match["integrity"]
        if ready and _matches(directory / path, integrity):
            url = f"{ASSETS_PATH}/{path}"
        else:
            remote.append(path)
            url = f"https://unpkg.com/{path}"
        return f'{match["attr"]}="{url}"{match["between"]}integrity="{integrity}"'

    page = _CDN_ASSET.sub(local, template)
    return page, remote


def page_for(directory: Path) -> str:
    """``graphiql_page`` for the service, logging once which assets come from the CDN."""
    page, remote = graphiql_page(directory)
    if remote:
        log.warning(
            "GraphiQL loads %d file(s) from the CDN (no verified copy in %s; "
            "run `make graphiql-assets`): %s",
            len(remote), directory, ", ".join(remote),
        )  # fmt: skip
    return page


class _VersionedFiles(StaticFiles):
    """Static files whose paths name their version: cached by browsers for a year."""

    def file_response(
        self,
        full_path: str | PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = "public, max-age=31536000, immutable"
        return response


def asset_routes(directory: Path) -> list[BaseRoute]:
    """``/graphql/assets/...`` from ``directory`` when it holds a finished copy."""
    if not assets_ready(directory):
        return []
    return [Mount(ASSETS_PATH, app=_VersionedFiles(directory=directory), name="graphiql-assets")]
