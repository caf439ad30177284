"""Bad input over the tracking API, GraphQL and the importers, through the real app and Neo4j.

Every case is refused with a 4xx and a message that says what is wrong (GraphQL: a 4xx for
request errors, a coded error or `userErrors` for input a resolver refuses; importers: a reject or
a refusal before writing), writes nothing (every string of a case carries its marker, and the
graph is searched for it afterwards) and stops nothing (a good request afterwards still lands).
Strings aimed at Cypher go where user strings reach the graph: names (identifier types, sources)
are refused; data (event names, trait keys and values) is stored verbatim and inert, which the
last test checks.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.auth import Scope, create_key
from customer_graph.ingestion.importers.layouts import Kind, LayoutError
from customer_graph.ingestion.importers.reader import ReaderError
from customer_graph.ingestion.importers.runner import ImportOptions, run_import
from customer_graph.settings import Settings
from tests.helpers import asgi_client, unique

INJECTION = "x'}) MATCH (n) DETACH DELETE n //`"
GRAPHQL_RESPONSE = "application/graphql-response+json"


@dataclass
class Call:
    """One HTTP request of a case, and what its answer must be."""

    path: str
    status: int
    says: str  # a fragment of the answer's message
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    key: str | None = "dev"  # "dev", "read", "none" or a literal key


def _msg(m: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": f"{m}-u", "messageId": f"{m}-1", "event": "Signed Up"} | {
        k: v for k, v in fields.items()
    }


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


TRACKING: dict[str, Callable[[str], Call]] = {
    "declared body over the limit": lambda m: Call(
        "/v1/batch",
        413,
        "larger than",
        content=b'{"pad": "' + m.encode() + b" " * 1_100_000 + b'"}',
    ),
    "batch over 500 KB": lambda m: Call(
        "/v1/batch",
        413,
        "500",
        json={
            "batch": [
                _msg(m, messageId=f"{m}-{i}", properties={"pad": "x" * 30_000}) for i in range(18)
            ]
        },
    ),
    "message over 32 KB": lambda m: Call(
        "/v1/track", 413, "32", json=_msg(m, properties={"pad": "x" * 40_000})
    ),
    "more than 2,500 messages": lambda m: Call(
        "/v1/batch",
        413,
        "2500",
        json={"batch": [_msg(m, messageId=f"{m}-{i}") for i in range(2501)]},
    ),
    "gzip bomb": lambda m: Call(
        "/v1/batch",
        413,
        "inflates",
        content=gzip.compress(json.dumps({"batch": [_msg(m)]}).encode() + b" " * 50_000_000),
        headers={"content-encoding": "gzip"},
    ),
    "not gzip though it says so": lambda m: Call(
        "/v1/track",
        400,
        "gzip",
        content=json.dumps(_msg(m)).encode(),
        headers={"content-encoding": "gzip"},
    ),
    "unknown content encoding": lambda m: Call(
        "/v1/track",
        415,
        "Content-Encoding",
        content=json.dumps(_msg(m)).encode(),
        headers={"content-encoding": "br"},
    ),
    "deeply nested body": lambda m: Call(
        "/v1/batch", 400, "nested", content=b'{"m": "' + m.encode() + b'", "x": ' + b"[" * 50_000
    ),
    "deeply nested properties": lambda m: Call(
        "/v1/track", 400, "nested", json=_msg(m, properties=_nested(200))
    ),
    "malformed JSON": lambda m: Call(
        "/v1/track", 400, "not valid JSON", content=f'{{"userId": "{m}", "event": '.encode()
    ),
    "a JSON array, not an object": lambda m: Call("/v1/batch", 400, "object", json=[_msg(m)]),
    "invalid UTF-8": lambda m: Call(
        "/v1/track",
        400,
        "UTF-8",
        content=b'{"userId": "' + m.encode() + b'\xff\xfe", "event": "e"}',
    ),
    "escaped lone surrogate": lambda m: Call(
        "/v1/track",
        400,
        "surrogate",
        content=b'{"userId": "' + m.encode() + b'\\ud800", "event": "e", "type": "track"}',
    ),
    "event of the wrong type": lambda m: Call("/v1/track", 400, "event", json=_msg(m, event=["x"])),
    "userId an object": lambda m: Call("/v1/track", 400, "userId", json=_msg(m, userId={"$ne": m})),
    "traits not an object": lambda m: Call(
        "/v1/identify", 400, "traits", json={"userId": f"{m}-u", "traits": f"{m}@example.com"}
    ),
    "no userId nor anonymousId": lambda m: Call(
        "/v1/track", 400, "anonymousId", json={"event": f"{m} happened", "messageId": f"{m}-1"}
    ),
    "timestamp that is not a time": lambda m: Call(
        "/v1/track", 400, "timestamp", json=_msg(m, timestamp="yesterday")
    ),
    "unknown message type in a batch": lambda m: Call(
        "/v1/batch", 400, "type", json={"batch": [_msg(m), _msg(m, type="explode")]}
    ),
    "id longer than allowed": lambda m: Call(
        "/v1/track", 400, "characters", json=_msg(m, userId=m + "x" * 5000)
    ),
    "Cypher in an identifier type": lambda m: Call(
        "/v1/identify",
        400,
        "type",
        json={
            "userId": f"{m}-u",
            "context": {"externalIds": [{"id": m, "type": f"email{INJECTION}"}]},
        },
    ),
    "an identifier type forging another key": lambda m: Call(
        "/v1/identify",
        400,
        "type",
        json={"userId": f"{m}-u", "context": {"externalIds": [{"id": m, "type": "user_id:admin"}]}},
    ),
    "one bad message spoils its batch": lambda m: Call(
        "/v1/batch", 400, "event", json={"batch": [_msg(m), _msg(m, messageId=f"{m}-2", event=7)]}
    ),
    "no key": lambda m: Call("/v1/track", 401, "key", json=_msg(m), key="none"),
    "unknown key": lambda m: Call("/v1/track", 401, "key", json=_msg(m), key=f"cg_{m}"),
    "key without the write scope": lambda m: Call(
        "/v1/track", 403, "write", json=_msg(m), key="read"
    ),
}

UPSERT = """mutation ($input: UpsertCustomerInput!) { upsertCustomer(input: $input) {
  record { id } userErrors { field message code } } }"""


def _gql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"query": query, "variables": variables or {}}


def _upsert(m: str, **fields: Any) -> dict[str, Any]:
    return _gql(UPSERT, {"input": {"source": "web", "sourceId": m} | fields})


GRAPHQL: dict[str, Callable[[str], Call]] = {
    "query nested beyond the depth limit": lambda m: Call(
        "/graphql",
        400,
        "depth",
        json=_gql(
            'query { profile(id: "'
            + m
            + '") { '
            + "records { profile { " * 12
            + "id"
            + " } }" * 12
            + " } }"
        ),
    ),
    "alias bomb": lambda m: Call(
        "/graphql",
        400,
        "alias",
        json=_gql("{ " + " ".join(f"a{i}: version" for i in range(500)) + " }"),
    ),
    "fragment cycle": lambda m: Call(
        "/graphql",
        400,
        "fragment",
        json=_gql("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
    ),
    "token flood": lambda m: Call(
        "/graphql", 400, "token", json=_gql("{ version " + "__typename " * 30_000 + "}")
    ),
    "deeply nested variables": lambda m: Call(
        "/graphql", 400, "nested", json=_gql(UPSERT, {"input": _nested(500)})
    ),
    "variable of the wrong type": lambda m: Call(
        "/graphql", 400, "Variable", json=_gql(UPSERT, {"input": {"source": 5, "sourceId": m}})
    ),
    "body over the limit": lambda m: Call(
        "/graphql", 413, "larger than", json=_upsert(m, traits={"pad": "x" * 1_100_000})
    ),
    "form-encoded POST (CSRF)": lambda m: Call(
        "/graphql",
        415,
        "application/json",
        content=f'query=mutation{{upsertCustomer(input:{{source:"web",sourceId:"{m}"}})}}'.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    "mutation over GET": lambda m: Call(
        "/graphql",
        405,
        "POST",
        method="GET",
        headers={"content-type": "application/json"},
        json={"query": UPSERT, "variables": json.dumps({"input": {"source": "w", "sourceId": m}})},
    ),
    "no key": lambda m: Call("/graphql", 401, "key", json=_upsert(m), key="none"),
    "Cypher in a source": lambda m: Call(
        "/graphql", 200, "source", json=_upsert(m, source=f"web{INJECTION}")
    ),
    "Cypher in an identifier type": lambda m: Call(
        "/graphql",
        200,
        "identifier",
        json=_upsert(m, identifiers=[{"type": f"email{INJECTION}", "value": f"{m}@example.com"}]),
    ),
    "traits not an object": lambda m: Call(
        "/graphql", 200, "object", json=_upsert(m, traits=[m, 1])
    ),
    "mutation without the write scope": lambda m: Call(
        "/graphql", 200, "scope", json=_upsert(m), key="read"
    ),
}


@dataclass
class Keys:
    dev: str
    read: str


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def keys(driver: AsyncDriver, settings: Settings) -> Keys:
    read, _ = await create_key(driver, settings, scopes=[Scope.READ], source=unique("bad-read"))
    assert settings.dev_key
    return Keys(dev=settings.dev_key, read=read)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(settings: Settings, driver: AsyncDriver) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(settings), graphql_key="", timeout=60) as c:
        yield c


async def _traces(driver: AsyncDriver, settings: Settings, marker: str) -> int:
    records, _, _ = await driver.execute_query(
        "CALL () { MATCH (c:Customer) WHERE c.key CONTAINS $m RETURN count(c) AS n "
        "UNION ALL MATCH (i:Identifier) WHERE i.key CONTAINS $m RETURN count(i) AS n "
        "UNION ALL MATCH (i:Interaction) WHERE i.id CONTAINS $m RETURN count(i) AS n "
        "UNION ALL MATCH (g:Message) WHERE g.id CONTAINS $m RETURN count(g) AS n "
        "UNION ALL MATCH (d:DeadLetter) WHERE d.id CONTAINS $m OR d.payload CONTAINS $m "
        "RETURN count(d) AS n } RETURN sum(n) AS n",
        m=marker,
        database_=settings.neo4j_database,
    )
    return int(records[0]["n"])


async def _still_works(
    client: httpx.AsyncClient, keys: Keys, driver: AsyncDriver, s: Settings
) -> None:
    """A good event after the bad one is written: no worker stopped, nothing wedged."""
    m = unique("good")
    response = await client.post(
        "/v1/track", json=_msg(m), headers={"authorization": f"Bearer {keys.dev}"}
    )
    assert response.status_code == 200, response.text
    assert await _traces(driver, s, m) >= 2  # the record and the message at least


def _headers(call: Call, keys: Keys) -> dict[str, str]:
    headers = {"accept": f"{GRAPHQL_RESPONSE}, application/json;q=0.9", **call.headers}
    key = {"dev": keys.dev, "read": keys.read, "none": None}.get(call.key or "none", call.key)
    if key:
        headers["authorization"] = f"Bearer {key}"
    if call.content is not None and "content-type" not in headers:
        headers["content-type"] = "application/json"
    return headers


async def _send(client: httpx.AsyncClient, call: Call, keys: Keys) -> httpx.Response:
    headers = _headers(call, keys)
    if call.method == "GET":
        return await client.get(call.path, params=call.json, headers=headers)
    if call.content is not None:
        return await client.post(call.path, content=call.content, headers=headers)
    return await client.post(call.path, json=call.json, headers=headers)


def _message_of(response: httpx.Response) -> str:
    body = response.json()
    if body.get("success") is False:  # the tracking API: a message, and per-field errors
        return f"{body['message']} {json.dumps(body.get('errors', []))}"
    if body.get("errors"):
        return " ".join(f"{e['message']} {e.get('extensions', {})}" for e in body["errors"])
    if isinstance(body.get("data"), dict):
        payload = next(iter(body["data"].values()))
        assert payload and payload["userErrors"], body  # refused in the payload
        return " ".join(f"{e['message']} {e['code']}" for e in payload["userErrors"])
    raise AssertionError(f"no error in {body}")


@pytest.mark.parametrize("case", [*TRACKING, *(f"graphql: {c}" for c in GRAPHQL)])
async def test_bad_request_is_refused_and_writes_nothing(
    case: str, client: httpx.AsyncClient, keys: Keys, driver: AsyncDriver, settings: Settings
) -> None:
    marker = unique("bad")
    build = (
        GRAPHQL[case.removeprefix("graphql: ")] if case.startswith("graphql: ") else TRACKING[case]
    )
    call = build(marker)
    response = await _send(client, call, keys)
    assert response.status_code == call.status, (case, response.status_code, response.text[:500])
    message = _message_of(response)
    assert call.says.lower() in message.lower(), (case, message)
    assert await _traces(driver, settings, marker) == 0, case
    await _still_works(client, keys, driver, settings)


IMPORT_HEADER = "id,first_name,email,phone\n"


@dataclass
class ImportCase:
    name: str
    text: Callable[[str], str | bytes]
    suffix: str = ".csv"
    rejected: int = 0  # rows rejected; 0 with `refused`: the whole file is refused
    refused: type[Exception] | None = None


IMPORTS = [
    ImportCase(
        "a row without an id", lambda m: IMPORT_HEADER + f",{m},{m}@example.com,\n", rejected=1
    ),
    ImportCase(
        "a JSONL line nested too deep",
        lambda m: json.dumps({"id": m, "x": _nested(500)}) + "\n",
        ".jsonl",
        rejected=1,
    ),
    ImportCase("a JSONL line that is not an object", lambda m: f'["{m}"]\n', ".jsonl", rejected=1),
    ImportCase("a JSONL line that is not JSON", lambda m: f'{{"id": "{m}"\n', ".jsonl", rejected=1),
    ImportCase(
        "binary garbage",
        lambda m: b"\x00\xff\xfe" + m.encode() + b"\x89PNG\r\n",
        refused=ReaderError,
    ),
    ImportCase("columns that fit no layout", lambda m: f"foo,bar\n{m},{m}\n", refused=LayoutError),
]


@pytest.mark.parametrize("case", IMPORTS, ids=[c.name for c in IMPORTS])
async def test_bad_import_rows_are_rejected_and_write_nothing(
    case: ImportCase,
    tmp_path: Path,
    client: httpx.AsyncClient,
    keys: Keys,
    driver: AsyncDriver,
    settings: Settings,
) -> None:
    marker = unique("badimp")
    path = tmp_path / f"contacts{case.suffix}"
    text = case.text(marker)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    options = ImportOptions(path=path, kind=Kind.CONTACTS, source=unique("crm"))
    if case.refused is not None:
        with pytest.raises(case.refused):
            await run_import(driver, settings, options)
    else:
        summary = await run_import(driver, settings, options)
        assert (summary.written, summary.rejected) == (0, case.rejected)
        assert summary.rejects_file is not None
        rejects = Path(summary.rejects_file).read_text()
        assert rejects.strip(), "the rejects file names the row and the reason"
    assert await _traces(driver, settings, marker) == 0
    await _still_works(client, keys, driver, settings)


async def test_cypher_in_data_is_stored_verbatim_and_inert(
    client: httpx.AsyncClient, keys: Keys, driver: AsyncDriver, settings: Settings
) -> None:
    """Event names, trait keys and values are data: kept exactly, never run."""
    m = unique("inert")
    canary = unique("canary")
    await driver.execute_query(
        "CREATE (:Account {id: $id, name: 'canary'})", id=canary, database_=settings.neo4j_database
    )
    weird = {
        f"{m}{INJECTION}": INJECTION,
        "${x}": "\u202e\u0000\U0001f600 ",
        "a.b": {"`c`": [INJECTION]},
    }
    response = await client.post(
        "/v1/track",
        json=_msg(m, event=f"{m} {INJECTION}", properties=weird),
        headers={"authorization": f"Bearer {keys.dev}"},
    )
    assert response.status_code == 200, response.text
    records, _, _ = await driver.execute_query(
        "MATCH (c:Customer {key: $key})-[:HAD]->(i:Interaction) "
        "RETURN i.name AS name, i.properties AS properties",
        key=f"dev:{m}-u",
        database_=settings.neo4j_database,
    )
    assert [r["name"] for r in records] == [f"{m} {INJECTION}"]
    assert json.loads(records[0]["properties"]) == weird
    canaries, _, _ = await driver.execute_query(
        "MATCH (a:Account {id: $id}) DETACH DELETE a RETURN count(*) AS n",
        id=canary,
        database_=settings.neo4j_database,
    )
    assert canaries[0]["n"] == 1  # the injection deleted nothing
