"""GraphQL over HTTP: the ``application/graphql-response+json`` media type.

The GraphQL-over-HTTP specification gives clients two response media types:

- ``application/graphql-response+json``: the status code tells a *request
  error* (the document does not parse or validate, an operation or variable
  cannot be used: nothing executed) from an executed operation. A request
  error is answered 400 with ``{"errors": [...]}`` and no ``data`` key; an
  operation that ran is answered 200, with field errors beside its ``data``.
- ``application/json`` (legacy): every well-formed request is answered 200,
  and a request error carries ``"data": null``. Clients that ask for it, send
  no ``Accept`` or accept anything (``*/*``) get exactly this, as before.

A request error is recognised by its result: no data, and no error points at a
field (``path``). Field errors always carry a path (GraphQL spec, "Errors");
parse, validation and variable-coercion errors never do.

``GraphQLResponseMedia`` is a mixin for strawberry's ASGI view: it picks the
media type from ``Accept`` once per request and applies it to the response.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from schema.context import Context

Media = Literal["application/graphql-response+json", "application/json"]
GRAPHQL_RESPONSE_JSON: Final = "application/graphql-response+json"
JSON: Final = "application/json"
MEDIA_HEADER: dict[Media, str] = {
    GRAPHQL_RESPONSE_JSON: "application/graphql-response+json; charset=utf-8",
    JSON: "application/json",
}
_MEDIA_ATTRIBUTE = "graphql_media"
_MAX_ACCEPT_LENGTH = 1_024


@lru_cache(maxsize=64)
def response_media(accept: str | None) -> Media:
    """The response media type for an ``Accept`` header.

    ``application/graphql-response+json`` when the client lists it with a
    quality at least as high as ``application/json`` (or any wildcard that
    covers JSON); otherwise ``application/json``. An absent, overlong or
    unparsable header means ``application/json``.
    """
    if not accept or len(accept) > _MAX_ACCEPT_LENGTH:
        return JSON
    best_graphql, best_json = 0.0, 0.0
    for item in accept.split(","):
        media, _, params = item.partition(";")
        media = media.strip().lower()
        quality = _quality(params)
        if media == GRAPHQL_RESPONSE_JSON:
            best_graphql = max(best_graphql, quality)
        elif media in (JSON, "application/*", "*/*"):
            best_json = max(best_json, quality)
    return GRAPHQL_RESPONSE_JSON if best_graphql > 0 and best_graphql >= best_json else JSON


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                return 0.0
            return quality if 0.0 <= quality <= 1.0 else 0.0
    return 1.0


def is_request_error(result: ExecutionResult) -> bool:
    """Nothing executed: no data, and errors none of which points at a field."""
    errors = result.errors
    return result.data is None and bool(errors) and all(e.path is None for e in errors or ())


class GraphQLResponseMedia(GraphQL[Context, None]):
    """strawberry's ASGI view honouring ``application/graphql-response+json``.

    The media type chosen for a request rides on its sub-response (the object
    strawberry hands from ``get_sub_response`` to ``create_response``).
    """

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        setattr(sub_response, _MEDIA_ATTRIBUTE, response_media(request.headers.get("accept")))
        return sub_response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        if is_request_error(result) and (
            response_media(request.headers.get("accept")) == GRAPHQL_RESPONSE_JSON
        ):
            processed.pop("data", None)
        return processed

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        media = getattr(sub_response, _MEDIA_ATTRIBUTE, JSON)
        if media == GRAPHQL_RESPONSE_JSON:
            response.headers["content-type"] = MEDIA_HEADER[GRAPHQL_RESPONSE_JSON]
            if (
                isinstance(response_data, dict)
                and "data" not in response_data
                and not sub_response.status_code
            ):
                response.status_code = 400
        return response
