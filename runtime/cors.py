"""Which browser pages on other origins may use the API, over HTTP and WebSocket.

One list, ``Settings.effective_cors_origins``, governs both:

- HTTP: Starlette's ``CORSMiddleware`` answers preflight ``OPTIONS`` requests
  and adds ``Access-Control-Allow-*`` headers for the listed origins (methods
  GET and POST, the configured request headers; ``X-Request-ID`` is exposed to
  scripts).
- WebSocket: strawberry's ``allowed_origins`` (``schema.app.LedgerGraphQL``)
  refuses a cross-origin handshake (HTTP 403) from any other origin, for both
  subprotocols. Handshakes without ``Origin`` (non-browser clients) and
  same-origin pages are always accepted: they carry no ambient credentials a
  foreign page could borrow.

CORS is a browser-side protection only: it decides what a page on another
origin may read, not who may call the API; authentication stays the JWT's job.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from runtime.settings import Settings

EXPOSED_HEADERS = ("X-Request-ID",)
PREFLIGHT_MAX_AGE_SECONDS = 600


def cors_middleware(settings: Settings) -> list[Middleware]:
    """``CORSMiddleware`` for the configured origins; none when no origin is allowed."""
    origins = settings.effective_cors_origins
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            allow_headers=list(settings.cors_allow_headers),
            allow_credentials=settings.cors_allow_credentials,
            expose_headers=list(EXPOSED_HEADERS),
            max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )
    ]
