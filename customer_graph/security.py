"""Browser safety for every route: bounded bodies, no CSRF-able GraphQL POSTs, CORS by allow-list.

Pure ASGI middleware, so a refused request is answered before any body is buffered:

- `BodyLimitMiddleware`: a body larger than `max_body_bytes` (by Content-Length, or counted while
  it streams in) gets 413; `gunzip_bounded` applies the same bound after decompression.
- `CsrfMiddleware`: a browser can send form-encoded, multipart or text/plain POSTs cross-origin
  without a preflight, so POSTs to /graphql must say `application/json` (or the GraphQL-over-HTTP
  media types); anything else gets 415. Mutations over GET are refused by Strawberry itself (405).
- CORS is off unless `cors_origins` lists origins; then only those origins may call, with the
  Authorization and Content-Type headers, and no cookies (keys travel as Bearer tokens).
"""

from __future__ import annotations

import json
import zlib
from typing import Final
from urllib.parse import parse_qs

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from customer_graph.settings import Settings

GRAPHQL_PATH: Final = "/graphql"
GRAPHQL_MEDIA_TYPES: Final = frozenset(
    {"application/json", "application/graphql-response+json", "application/graphql"}
)
SECURITY_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class BodyTooLargeError(Exception):
    """A request body (raw or decompressed) is over the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Decompress gzip `data`, refusing (BodyTooLargeError) output larger than `limit`.

    Decompresses at most limit + 1 bytes, so a gzip bomb costs no more memory than a plain
    body at the limit. Raises ValueError for data that is not valid gzip.
    """
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(data, limit + 1)
    except zlib.error as e:
        raise ValueError(f"invalid gzip body: {e}") from e
    if len(out) > limit or decompressor.unconsumed_tail:
        raise BodyTooLargeError(limit)
    if not decompressor.eof:
        raise ValueError("invalid gzip body: truncated")
    return out


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    path: str,
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """A JSON error: GraphQL-shaped on /graphql, `{"error", "code"}` elsewhere."""
    if path == GRAPHQL_PATH:
        payload: object = {"errors": [{"message": message, "extensions": {"code": code}}]}
    else:
        payload = {"success": False, "error": message, "code": code}
    body = json.dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class BodyLimitMiddleware:
    """413 for a body over `limit` bytes, whether declared by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await send_error(send, 400, "BAD_REQUEST", "invalid Content-Length", path)
                return
            if int(declared) > self.limit:
                await send_error(send, 413, "PAYLOAD_TOO_LARGE", self._message(), path)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLargeError(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", ()), *SECURITY_HEADERS]}
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            await send_error(send, 413, "PAYLOAD_TOO_LARGE", self._message(), path)

    def _message(self) -> str:
        return f"request body larger than {self.limit} bytes"


def _is_mutation_over_get(scope: Scope) -> bool:
    params = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    query = (params.get("query") or [""])[0]
    names = params.get("operationName")
    wanted = names[0] if names else None
    try:
        document = parse(query)
    except GraphQLError:
        return False  # Strawberry answers malformed queries
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    for operation in operations:
        name = operation.name.value if operation.name else None
        if (wanted is None and len(operations) == 1) or name == wanted:
            return operation.operation == OperationType.MUTATION
    return False


class CsrfMiddleware:
    """415 for a POST to /graphql that is not JSON (forms, multipart, text/plain, none);
    405 for a mutation over GET (GraphQL-over-HTTP; Strawberry itself would say 400)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != GRAPHQL_PATH:
            await self.app(scope, receive, send)
            return
        if scope.get("method") == "GET" and _is_mutation_over_get(scope):
            await send_error(
                send,
                405,
                "METHOD_NOT_ALLOWED",
                "mutations are not allowed over GET; use POST",
                GRAPHQL_PATH,
                extra_headers=((b"allow", b"POST"),),
            )
            return
        if scope.get("method") == "POST":
            content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if content_type not in GRAPHQL_MEDIA_TYPES:
                shown = content_type or "none"
                await send_error(
                    send,
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    f"POST /graphql takes application/json, not {shown}",
                    GRAPHQL_PATH,
                )
                return
        await self.app(scope, receive, send)


def security_middleware(settings: Settings) -> list[Middleware]:
    """The app's middleware stack, outermost first."""
    stack: list[Middleware] = []
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
                allow_credentials=False,
                max_age=600,
            )
        )
    stack.append(Middleware(BodyLimitMiddleware, limit=settings.max_body_bytes))
    stack.append(Middleware(CsrfMiddleware))
    return stack
