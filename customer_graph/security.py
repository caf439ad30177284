"""HTTP-level safety for every route: bounded bodies, CSRF, CORS, and a key for every GraphQL call.

Pure ASGI middleware, so a refused request is answered before any body is buffered:

- `BodyLimitMiddleware`: a body larger than `max_body_bytes` (by Content-Length, or counted while
  it streams in) gets 413; `gunzip_bounded` applies the same bound after decompression.
- `CsrfMiddleware`: a browser can send form-encoded, multipart or text/plain POSTs cross-origin
  without a preflight, so POSTs to /graphql must say `application/json` (or the GraphQL-over-HTTP
  media types); anything else gets 415. A mutation over GET gets 405 (GraphQL-over-HTTP).
- CORS is off unless `cors_origins` lists origins; then only those origins may call, with the
  Authorization and Content-Type headers, and no cookies (keys travel as Bearer tokens).
- `GraphQLAuthMiddleware`: every GraphQL operation over HTTP needs a valid key (401 otherwise);
  a websocket may present it in its handshake or in `connection_init`
  (`authenticate_connection`). Scopes are then checked per field (resolvers/permissions.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from itertools import accumulate
from typing import Any, Final, Protocol
from urllib.parse import parse_qs

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from neo4j import AsyncDriver
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.exceptions import ConnectionRejectionError

from customer_graph.auth import (
    DEV_KEY_ID,
    Principal,
    authenticate,
    hash_key,
    key_from_authorization,
    principal_of,
)
from customer_graph.graph.errors import GraphUnavailableError
from customer_graph.graph.keys import key_row
from customer_graph.settings import Settings

GRAPHQL_PATH: Final = "/graphql"
UNAUTHENTICATED: Final = "UNAUTHENTICATED"
# Keys seen valid whose principals a process keeps, to run their requests beside the check.
REMEMBERED_KEYS: Final = 4096
GRAPHQL_MEDIA_TYPES: Final = frozenset(
    {"application/json", "application/graphql-response+json", "application/graphql"}
)
SECURITY_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


MAX_JSON_DEPTH: Final = 64
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_STEP: Final = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _bracket_depth(raw: bytes) -> int:
    return max(accumulate(map(_STEP.__getitem__, raw.translate(None, _NOT_BRACKETS))), default=0)


def json_depth(data: str | bytes) -> int:
    """How deeply arrays and objects nest in JSON `data` (brackets in strings do not count)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    rough = _bracket_depth(raw)  # C-speed upper bound; brackets inside strings are rare
    return rough if rough == 0 else _bracket_depth(_JSON_STRING.sub(b"", raw))


# A `\ud800`-style escape without its pair decodes to a lone surrogate: a Python string the
# driver cannot encode, so it would fail far from the request instead of with a 400.
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def loads_bounded(data: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` for request bodies; JSONDecodeError (a ValueError, so a 400) also for JSON
    nested deeper than `max_depth` (which would exhaust the parser's recursion), for invalid
    UTF-8, and for escaped lone surrogates (text that is not Unicode)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if _bracket_depth(raw) > max_depth and json_depth(raw) > max_depth:
        raise json.JSONDecodeError(f"nested deeper than {max_depth} levels", "", 0)
    if (b"\\ud" in raw or b"\\uD" in raw) and (lone := _LONE_SURROGATE.search(raw)):
        raise json.JSONDecodeError("lone surrogate escape: not Unicode text", "", lone.start())
    try:
        return json.loads(raw)
    except UnicodeDecodeError as e:
        raise json.JSONDecodeError(f"not UTF-8 text at byte {e.start}", "", 0) from e
    except RecursionError as e:
        raise json.JSONDecodeError(f"nested deeper than {max_depth} levels", "", 0) from e


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
    """A JSON error: GraphQL-shaped on /graphql; elsewhere the tracking API's shape, which
    Segment's and RudderStack's SDKs read (`{"success": false, "code", "message"}`)."""
    if path == GRAPHQL_PATH:
        payload: object = {"errors": [{"message": message, "extensions": {"code": code}}]}
    else:
        payload = {"success": False, "code": code, "message": message}
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


def _principal_state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


async def _authenticate(scope: Scope, key: str | None) -> Principal | None:
    app_state = scope["app"].state.cg
    return await authenticate(app_state.driver, app_state.settings, key)


def _needs_key(scope: Scope) -> bool:
    """Every GraphQL operation needs a key; GraphiQL's page (a GET without a query) does not."""
    if scope["type"] == "websocket":
        return True
    if scope.get("method") == "GET":
        return b"query=" in bytes(scope.get("query_string", b""))
    return scope.get("method") == "POST"


class KeyConfirmation:
    """The graph's answer, for one request, about a key this process has seen valid.

    It comes from the first of: a read of the request that carries the key's lookup in its own
    statement (the profile page does: graph/reads.py `KeyCheck`), so that the request costs one
    round trip instead of two; a lookup of its own, started beside the request's first read
    that does not carry it; or a lookup started when the answer is needed and no read has
    asked yet (a request that reads nothing), or when the read that claimed it failed.
    """

    def __init__(self, key_hash: str, lookup: Callable[[], Awaitable[Principal | None]]) -> None:
        self.key_hash = key_hash
        self._lookup = lookup
        self._claimed = False
        self._task: asyncio.Future[None] | None = None
        self.answer: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()

    def claim(self) -> str | None:
        if self._claimed:
            return None
        self._claimed = True
        return self.key_hash

    def carried(self, key: Mapping[str, Any] | None) -> None:
        if not self.answer.done():
            self.answer.set_result(principal_of(key_row(key) if key is not None else None))

    def not_carried(self) -> None:
        self._start()

    def look_up(self) -> None:
        if not self._claimed:
            self._claimed = True
            self._start()

    async def principal(self) -> Principal | None:
        """The key's principal now (None: unknown or revoked); GraphUnavailableError if the
        graph cannot say. Cancelling the caller does not cancel the lookup."""
        self.look_up()
        return await asyncio.shield(self.answer)

    async def close(self) -> None:
        """At the end of the request: let a lookup in flight end, drop an answer never needed."""
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task])
        if not self.answer.done():
            self.answer.cancel()
        elif not self.answer.cancelled():
            self.answer.exception()  # retrieved here, whatever became of the request

    def _start(self) -> None:
        if self._task is None and not self.answer.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            principal = await self._lookup()
        except asyncio.CancelledError:
            self.answer.cancel()
            raise
        except Exception as e:  # handed to whoever awaits the answer
            if not self.answer.done():
                self.answer.set_exception(e)
        else:
            if not self.answer.done():
                self.answer.set_result(principal)


class GraphQLAuthMiddleware:
    """Authenticates every GraphQL request by its key (`Authorization: Bearer <key>`).

    Over HTTP, a missing, unknown or revoked key gets 401 before the GraphQL view runs; the
    principal goes in `scope["state"]["principal"]` for the context. A websocket may instead
    send its key in the `connection_init` payload (`authenticate_connection`), so only a key
    present in the handshake and not valid is refused there (401 denial, or close 4401).

    A key this process has seen valid is checked again on every request, but beside the work
    instead of before it (`_verify_beside`): the request runs with the principal it had, and
    nothing of its answer leaves, nor does any field that writes or audits run (their
    permissions await `confirm_principal`), until the graph has confirmed the key. A key revoked
    meanwhile gets the same 401 as before, and the answer computed for it is dropped. The
    confirmation rides on the request's first read when that read can carry it
    (`KeyConfirmation`).
    """

    def __init__(self, app: ASGIApp, remembered: int = REMEMBERED_KEYS) -> None:
        self.app = app
        self._remembered = remembered
        # Principals by key hash (never the key), least recently used first.
        self._seen: OrderedDict[str, Principal] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or scope.get("path") != GRAPHQL_PATH
            or not _needs_key(scope)
        ):
            await self.app(scope, receive, send)
            return
        key = key_from_authorization(_header(scope, b"authorization"))
        if key and scope["type"] == "http":
            key_hash = hash_key(key)
            seen = self._seen.get(key_hash)
            if seen is not None:
                check = KeyConfirmation(key_hash, lambda: _authenticate(scope, key))
                await self._verify_beside(scope, receive, send, check, seen)
                return
        await self._verify_first(scope, receive, send, key)

    async def _verify_first(
        self, scope: Scope, receive: Receive, send: Send, key: str | None
    ) -> None:
        try:
            principal = await _authenticate(scope, key) if key else None
        except GraphUnavailableError:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1013, "reason": "Try again later"})
                return
            await _send_unavailable(send)
            return
        if principal is not None:
            if key and principal.key_id != DEV_KEY_ID:
                self._remember(hash_key(key), principal)
            _principal_state(scope)["principal"] = principal
        elif scope["type"] == "websocket":
            if key:
                await _deny_websocket(scope, send)
                return
        else:
            await _send_unauthenticated(send, bool(key))
            return
        await self.app(scope, receive, send)

    async def _verify_beside(
        self, scope: Scope, receive: Receive, send: Send, check: KeyConfirmation, seen: Principal
    ) -> None:
        """Run the request with `seen` while the graph confirms the key; answer only then."""
        verdict: list[bool] = []

        async def confirm() -> bool:
            if not verdict:
                try:
                    verdict.append(await check.principal() == seen)
                except GraphUnavailableError:
                    verdict.append(False)
            return verdict[0]

        received: list[Message] = []

        async def recording_receive() -> Message:
            message = await receive()
            received.append(message)
            return message

        async def confirmed_send(message: Message) -> None:
            if await confirm():
                await send(message)

        state = _principal_state(scope)
        state["principal"] = seen
        state["confirm_principal"] = confirm
        state["key_check"] = check
        try:
            await self.app(scope, recording_receive, confirmed_send)
            if await confirm():
                return
        finally:
            await check.close()
        # Not confirmed: nothing was sent. Answer as a first sight of the key would.
        key_hash = check.key_hash
        self._seen.pop(key_hash, None)
        for name in ("confirm_principal", "principal", "key_check"):
            state.pop(name, None)
        try:
            principal = check.answer.result()
        except GraphUnavailableError:
            await _send_unavailable(send)
            return
        if principal is None:
            await _send_unauthenticated(send, True)
            return
        # The key is valid with other scopes or source: run the request again with them.
        self._remember(key_hash, principal)
        state["principal"] = principal
        replay = deque(received)

        async def replay_receive() -> Message:
            return replay.popleft() if replay else await receive()

        await self.app(scope, replay_receive, send)

    def _remember(self, key_hash: str, principal: Principal) -> None:
        self._seen[key_hash] = principal
        self._seen.move_to_end(key_hash)
        while len(self._seen) > self._remembered:
            self._seen.popitem(last=False)


async def _send_unavailable(send: Send) -> None:
    message = "the graph is unavailable; retry later"
    await send_error(send, 503, "SERVICE_UNAVAILABLE", message, GRAPHQL_PATH)


async def _send_unauthenticated(send: Send, had_key: bool) -> None:
    message = (
        "the API key is unknown or revoked"
        if had_key
        else "an API key is required: send Authorization: Bearer <key>"
    )
    await send_error(
        send,
        401,
        UNAUTHENTICATED,
        message,
        GRAPHQL_PATH,
        extra_headers=((b"www-authenticate", b'Bearer realm="customer-graph"'),),
    )


async def _deny_websocket(scope: Scope, send: Send) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps(
            {
                "errors": [
                    {
                        "message": "the API key is unknown or revoked",
                        "extensions": {"code": UNAUTHENTICATED},
                    }
                ]
            }
        ).encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": 4401, "reason": "Unauthorized"})


def _connection_key(params: dict[str, Any] | None) -> str | None:
    """The key in a `connection_init` payload: an Authorization value, or `apiKey`/`key`."""
    if not params:
        return None
    for name in ("Authorization", "authorization"):
        value = params.get(name)
        if isinstance(value, str):
            return key_from_authorization(value)
    headers = params.get("headers")
    if isinstance(headers, dict):
        return _connection_key(headers)
    for name in ("apiKey", "key"):
        value = params.get(name)
        if isinstance(value, str):
            return value
    return None


class ConnectionContext(Protocol):
    """What `authenticate_connection` needs of the GraphQL context."""

    driver: AsyncDriver
    settings: Settings
    connection_params: dict[str, Any] | None
    principal: Principal | None


async def authenticate_connection(context: ConnectionContext) -> None:
    """For the websocket view's `on_ws_connect`: the key in `connection_init`, if any, decides;
    otherwise the one from the handshake. No valid key: ConnectionRejectionError (close 4403)."""
    key = _connection_key(context.connection_params)
    if key is not None:
        try:
            context.principal = await authenticate(context.driver, context.settings, key)
        except GraphUnavailableError as e:
            raise ConnectionRejectionError() from e
    if context.principal is None:
        raise ConnectionRejectionError()


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
    stack.append(Middleware(GraphQLAuthMiddleware))
    return stack
