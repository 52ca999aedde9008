"""The GraphiQL page the view serves, when the runtime gives it one (``runtime/graphiql.py``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.asgi import GraphQL

from schema.context import Context


class GraphiQLPageView(GraphQL[Context, None]):
    """strawberry's ASGI view serving ``graphiql_html`` as its IDE page when it is set."""

    graphiql_html: str | None = None

    async def render_graphql_ide(self, request: Request) -> Response:
        if self.graphiql_html is not None:
            return HTMLResponse(self.graphiql_html)
        return await super().render_graphql_ide(request)
