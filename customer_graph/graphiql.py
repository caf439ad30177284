"""GraphiQL, served by the service itself: the page and its bundle, with no CDN.

The bundle in `static/graphiql/` is built from npm packages by `scripts/build-graphiql.mjs` and
committed, so an installed wheel serves the playground on a machine with no internet.
"""

from __future__ import annotations

import hashlib
import html
import json
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
STATIC_PATH = "/static/graphiql"
STATIC_NAME = "graphiql-static"
ASSETS = ("graphiql.js", "graphiql.css")

DEFAULT_QUERY = """\
# customer-graph GraphiQL: write a query, run it with Ctrl-Enter or the ▶ button.
# Put your API key in the Headers tab below: {"Authorization": "Bearer <key>"}
# The schema is in the Docs panel (book icon, top left).

{
  version
}
"""

# Everything the page loads comes from this origin; the browser itself enforces "no CDN".
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>customer-graph · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script type="application/json" id="graphiql-config">{config}</script>
<script src="{js}"></script>
</body>
</html>
"""


@cache
def asset_version() -> str:
    """A content hash of the bundle, appended to its URLs so browsers never run a stale one."""
    digest = hashlib.sha256()
    for name in ASSETS:
        digest.update((STATIC_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def static_files() -> StaticFiles:
    """The bundle, for `Mount(STATIC_PATH, static_files(), name=STATIC_NAME)`."""
    return StaticFiles(directory=STATIC_DIR)


def _json_for_script(value: object) -> str:
    # `</script>` or `<!--` inside the JSON must not end the element early.
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")


def graphiql_page(request: Request) -> HTMLResponse:
    """The GraphiQL page for a browser that opened the GraphQL endpoint."""
    version = asset_version()
    css, js = (request.url_for(STATIC_NAME, path=name).path for name in ASSETS[::-1])
    config = {"endpoint": request.url.path, "defaultQuery": DEFAULT_QUERY}
    body = PAGE.format(
        css=html.escape(f"{css}?v={version}"),
        js=html.escape(f"{js}?v={version}"),
        config=_json_for_script(config),
    )
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Cache-Control": "no-cache",
    }
    return HTMLResponse(body, headers=headers)
