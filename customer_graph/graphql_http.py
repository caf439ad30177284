"""The GraphQL endpoint's HTTP layer, following the GraphQL-over-HTTP specification.

Strawberry's view does the parsing and execution; this adds what the specification asks of the
HTTP around it, checked by the graphql-http audit suite (tests/e2e/test_graphql_http_audit.py):

- `Accept` negotiation between `application/graphql-response+json` and `application/json`
  (the default, also for `*/*` or no header); 406 when neither is acceptable.
- With `application/graphql-response+json`, a request error (the document does not parse or
  validate, variables do not coerce: no execution happened) is a 400 without `data`.
- Mutations over GET are refused with 405 and `Allow: POST` (security.py's CSRF middleware
  already refuses them, and non-JSON POST bodies, before the view; this keeps the view right
  on its own).
- Errors of the HTTP layer are GraphQL responses too, `{"errors": [...]}` with an
  `extensions.code`, never plain text.
- GraphiQL for a browser that opens the endpoint, when `graphiql_enabled`.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import orjson
from cross_web import HTTPException, StarletteRequestAdapter
from graphql import GraphQLError, get_operation_ast, parse
from graphql import OperationType as GraphQLOperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from customer_graph.graphiql import graphiql_page
from customer_graph.resolvers.context import Context

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


SUBSCRIPTION_OVER_HTTP = (
    "Subscriptions are served over WebSocket (graphql-transport-ws) at this path, not over HTTP"
)


def is_subscription(request_data: GraphQLRequestData) -> bool:
    """Whether the operation to run is a subscription (a document that does not parse is not)."""
    query = request_data.query
    if not query or "subscription" not in query:  # cheap test first: most requests are queries
        return False
    try:
        operation = get_operation_ast(parse(query), request_data.operation_name)
    except GraphQLError:
        return False
    return operation is not None and operation.operation is GraphQLOperationType.SUBSCRIPTION


class MethodNotAllowedError(HTTPException):
    """A mutation sent with GET: the specification asks for 405 and the methods that work."""

    def __init__(self, reason: str, allow: str = "POST") -> None:
        super().__init__(HTTPStatus.METHOD_NOT_ALLOWED, reason)
        self.allow = allow


def negotiate(accept: str | None) -> str | None:
    """The response media type for an `Accept` header, or None when none of ours is acceptable.

    `application/graphql-response+json` only when the client names it (at a quality at least
    that of `application/json`); wildcards and a missing header mean `application/json`.
    """
    if not accept or not accept.strip():
        return JSON
    ranges = _parse_accept(accept)
    named = ranges.get(GRAPHQL_RESPONSE_JSON)
    json_q = _quality(ranges, JSON)
    if named is not None and named > 0 and named >= json_q:
        return GRAPHQL_RESPONSE_JSON
    if json_q > 0:
        return JSON
    if _quality(ranges, GRAPHQL_RESPONSE_JSON) > 0:
        return GRAPHQL_RESPONSE_JSON
    return None


def _parse_accept(accept: str) -> dict[str, float]:
    ranges: dict[str, float] = {}
    for item in accept.split(","):
        media, _, params = item.partition(";")
        media = media.strip().lower()
        if not media:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges[media] = max(quality, ranges.get(media, 0.0))
    return ranges


def _quality(ranges: dict[str, float], media: str) -> float:
    """The quality of `media` under the most specific range that matches it (RFC 9110)."""
    kind = media.split("/")[0]
    for candidate in (media, f"{kind}/*", "*/*"):
        if candidate in ranges:
            return ranges[candidate]
    return 0.0


def is_request_error(data: GraphQLHTTPResponse) -> bool:
    """True when execution never started: no data, and no error is tied to a field path."""
    errors = data.get("errors")
    if data.get("data") is not None or not errors:
        return False
    return all(isinstance(e, dict) and "path" not in e for e in errors)


def error_body(status: int, message: str) -> dict[str, Any]:
    code = HTTPStatus(status).name
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


class GraphQLHTTPView(GraphQL[Context, None]):
    """Strawberry's ASGI view with the HTTP behaviour of the GraphQL-over-HTTP specification."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        media_type = negotiate(request.headers.get("accept"))
        try:
            if media_type is None and not self.should_render_graphql_ide(
                StarletteRequestAdapter(request)
            ):
                raise HTTPException(
                    HTTPStatus.NOT_ACCEPTABLE,
                    f"Acceptable response types: {GRAPHQL_RESPONSE_JSON}, {JSON}",
                )
            response = await self.run(request)
        except HTTPException as e:
            response = self.http_error_response(e, media_type or JSON)
        await response(scope, receive, send)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: the websocket transport sends bytes as binary frames, which
        # graphql-transport-ws clients refuse. Integers beyond 64 bits (possible in a JSON trait)
        # are beyond orjson; the standard encoder writes them.
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return json.dumps(data, separators=(",", ":"))

    def http_error_response(self, error: HTTPException, media_type: str) -> Response:
        response = Response(
            self.encode_json(error_body(error.status_code, error.reason)),
            status_code=error.status_code,
            headers={"Content-Type": f"{media_type}; charset=utf-8", "Vary": "Accept"},
        )
        if isinstance(error, MethodNotAllowedError):
            response.headers["Allow"] = error.allow
        return response

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # With GraphiQL off, a browser's GET is an ordinary request without a query: a 400.
        return self.graphql_ide is not None and super().should_render_graphql_ide(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page(request)

    async def get_sub_response(self, request: Request | Any) -> Response:
        sub_response = await super().get_sub_response(request)
        # Remembered for `create_response`, which does not see the request.
        sub_response.media_type = negotiate(request.headers.get("accept")) or JSON
        return sub_response

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # Executed as a plain request, a subscription would fail inside; say where it belongs.
        if is_subscription(request_data):
            raise HTTPException(HTTPStatus.BAD_REQUEST, SUBSCRIPTION_OVER_HTTP)
        try:
            return await super().execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=request_data,
            )
        except HTTPException as e:
            cause = e.__cause__
            if (
                isinstance(cause, InvalidOperationTypeError)
                and cause.operation_type is OperationType.MUTATION
                and request_adapter.method == "GET"
            ):
                raise MethodNotAllowedError("Mutations must be sent with POST") from cause
            raise

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or JSON
        request_error = isinstance(response_data, dict) and is_request_error(response_data)
        if request_error and isinstance(response_data, dict):
            # The GraphQL spec: when an error is raised before execution, `data` is absent.
            response_data = response_data.copy()
            response_data.pop("data", None)
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = f"{media_type}; charset=utf-8"
        response.headers["Vary"] = "Accept"
        if request_error and media_type == GRAPHQL_RESPONSE_JSON and not sub_response.status_code:
            response.status_code = HTTPStatus.BAD_REQUEST
        return response
