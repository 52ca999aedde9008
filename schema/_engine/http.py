"""The HTTP view's overrides that need strawberry's non-public API.

strawberry's ``execute_single`` maps the schema's operation-type errors to
HTTP 400 through exceptions of ``strawberry.schema.exceptions``; ``HTTPView``
does the same but refuses a subscription with a message saying it needs a
WebSocket. ``should_render_graphql_ide`` takes a request of
``strawberry.http.base``'s protocol: a GET naming a persisted query by hash
(no ``query``) is a query, not the IDE. Both stay on with either engine
(UPGRADING.md). ``graphiql_template`` is strawberry's GraphiQL page.
"""

from __future__ import annotations

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.ides import get_graphql_ide_html
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from schema.context import Context

SUBSCRIPTION_OVER_HTTP = (
    "subscriptions need a WebSocket: connect to this URL with the "
    "graphql-transport-ws (or legacy graphql-ws) subprotocol"
)


def graphiql_template() -> str:
    """strawberry's GraphiQL page (assets on the unpkg CDN)."""
    return get_graphql_ide_html("graphiql")


class HTTPView(GraphQL[Context, None]):
    """strawberry's ASGI view: subscriptions over HTTP refused, persisted GETs not the IDE."""

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # strawberry's check (a GET asking for HTML) first: it spares every POST the
        # parsing of the query string.
        return super().should_render_graphql_ide(request) and (
            "extensions" not in request.query_params
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """strawberry's ``execute_single``, but a subscription is refused with 400."""
        method = request_adapter.method
        allowed = OperationType.from_http(method) - {OperationType.SUBSCRIPTION}
        if not self.allow_queries_via_get and method == "GET":
            allowed -= {OperationType.QUERY}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            if error.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(400, SUBSCRIPTION_OVER_HTTP) from error
            raise HTTPException(400, error.as_http_error_reason(method)) from error
        except MissingQueryError as error:
            raise HTTPException(400, "No GraphQL query found in the request") from error
