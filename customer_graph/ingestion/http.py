"""The Segment-compatible tracking API: POST /v1/identify, track, page, screen, group, alias.

Also POST /v1/batch and /v1/import (the same). The write key comes as HTTP Basic user (Segment's
and RudderStack's SDKs), as a Bearer token, or as `writeKey` in the body. Bodies may be gzip-
encoded. Answers:

- 200 `{"success": true}` once every message is committed (or, having failed on its own, kept in
  the dead-letter store, which the body then lists under `deadLettered`; messages naming an
  erased person are refused and listed under `suppressed`);
- 400 for malformed JSON or invalid messages, naming the index and field of each problem;
- 401 for a missing, unknown or revoked key, 403 for a key without the `write` scope;
- 413 beyond 32 KB per message, 500 KB per request or 2,500 messages per batch;
- 503 with Retry-After when the queue is full or Neo4j is unavailable: retry, it is safe
  (messageIds are deduplicated).
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from customer_graph.auth import Principal, Scope, authenticate, key_from_authorization
from customer_graph.graph.errors import GraphUnavailableError
from customer_graph.ingestion import metrics
from customer_graph.ingestion.segment import (
    MAX_BATCH_BYTES,
    InvalidPayloadError,
    MessageType,
    PayloadTooLargeError,
    parse_request,
)
from customer_graph.ingestion.workers import (
    QueueFullError,
    ShuttingDownError,
    WorkerPool,
    WriteRejectedError,
)
from customer_graph.security import loads_bounded

SINGLE_TYPES: Final[tuple[MessageType, ...]] = (
    "identify",
    "track",
    "page",
    "screen",
    "group",
    "alias",
)


class _BodyError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def tracking_routes() -> list[Route]:
    routes = [Route(f"/v1/{kind}", _endpoint(kind), methods=["POST"]) for kind in SINGLE_TYPES]
    routes += [
        Route(f"/v1/{name}", _endpoint(None), methods=["POST"]) for name in ("batch", "import")
    ]
    return routes


def _endpoint(kind: MessageType | None) -> Any:
    async def endpoint(request: Request) -> Response:
        return await handle(request, kind)

    endpoint.__name__ = f"track_{kind or 'batch'}"
    return endpoint


async def handle(request: Request, kind: MessageType | None) -> Response:
    state = request.app.state.cg
    received_at = datetime.now(UTC)
    header_key = key_from_authorization(request.headers.get("authorization"))
    principal: Principal | None = None
    body: Any = None
    try:
        if header_key is not None:
            principal = await _principal(request, header_key)  # before reading an unknown body
        body = loads_bounded(await read_body(request, MAX_BATCH_BYTES))  # depth-limited
        if principal is None:
            key = body.get("writeKey") if isinstance(body, dict) else None
            principal = await _principal(request, key if isinstance(key, str) else None)
        items = parse_request(body, kind=kind, source=principal.source, received_at=received_at)
    except _BodyError as e:
        metrics.REJECTED.labels(reason=e.code).inc(_messages_in(body, kind))
        return _error(e.status, e.code, str(e))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        metrics.REJECTED.labels(reason="malformed_json").inc()
        return _error(400, "malformed_json", f"the body is not valid JSON: {e}")
    except PayloadTooLargeError as e:
        metrics.REJECTED.labels(reason="too_large").inc(_messages_in(body, kind))
        extra = {} if e.index is None else {"errors": [{"index": e.index, "field": ""}]}
        return _error(413, "too_large", str(e), **extra)
    except InvalidPayloadError as e:
        metrics.REJECTED.labels(reason="invalid").inc(_messages_in(body, kind))
        return _error(400, "invalid_request", str(e), errors=[f.as_json() for f in e.errors])
    except GraphUnavailableError:
        return _unavailable(state.settings.ingest_retry_after_s, "neo4j_unavailable")
    except ClientDisconnect:
        return Response(status_code=400)

    pool: WorkerPool = state.ingest
    try:
        receipt = await pool.submit(items)
    except QueueFullError as e:
        metrics.UNAVAILABLE.labels(reason="queue_full").inc(len(items))
        return _unavailable(e.retry_after_s, "queue_full")
    except GraphUnavailableError:
        return _unavailable(pool.retry_after_s, "neo4j_unavailable")
    except ShuttingDownError:
        return _unavailable(pool.retry_after_s, "shutting_down")
    except WriteRejectedError as e:  # tracking messages are dead-lettered instead; kept for safety
        return _error(422, "rejected", e.reason)
    answer: dict[str, Any] = {"success": True}
    if suppressed := receipt.indexes("suppressed"):
        answer["suppressed"] = suppressed  # they name an erased person: refused, not written
    if receipt.dead_letters:
        answer["deadLettered"] = [
            {"index": d.index, "messageId": d.message_id, "reason": d.reason}
            for d in receipt.dead_letters
        ]
    return JSONResponse(answer)


def _messages_in(body: Any, kind: MessageType | None) -> int:
    """How many messages a refused request carried (1 when its body could not be read)."""
    if kind is None and isinstance(body, dict) and isinstance(body.get("batch"), list):
        return max(len(body["batch"]), 1)
    return 1


async def _principal(request: Request, key: str | None) -> Principal:
    state = request.app.state.cg
    principal = await authenticate(state.driver, state.settings, key)
    if principal is None:
        code = "missing_key" if not key else "unknown_key"
        raise _BodyError(401, code, "a valid write key is required")
    if not principal.has(Scope.WRITE):
        raise _BodyError(403, "forbidden", "this key has no write scope")
    return principal


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped if need be; at most `limit` bytes (before and after gunzip)."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise _BodyError(413, "too_large", f"the body is larger than {limit // 1024} KB")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return bytes(raw)
    if encoding != "gzip":
        raise _BodyError(415, "unsupported_encoding", f"unsupported Content-Encoding {encoding}")
    return gunzip_bounded(bytes(raw), limit)


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Gunzip at most `limit` bytes: a small body that inflates without bound is refused."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as e:
        raise _BodyError(400, "malformed_gzip", "the body is not valid gzip") from e
    if len(out) > limit or inflater.unconsumed_tail:
        raise _BodyError(413, "too_large", f"the body inflates beyond {limit // 1024} KB")
    if not inflater.eof:
        raise _BodyError(400, "malformed_gzip", "the gzip body is truncated")
    return out


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    # `code` and `message` are what the Segment and RudderStack SDKs read from an error body.
    return JSONResponse({"success": False, "code": code, "message": message, **extra}, status)


def _unavailable(retry_after_s: int, code: str) -> JSONResponse:
    response = _error(503, code, "temporarily unavailable; retry (messages are deduplicated)")
    response.headers["Retry-After"] = str(retry_after_s)
    return response
