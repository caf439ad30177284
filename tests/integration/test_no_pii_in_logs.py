"""No email address or phone number in any log line, at any level, from any logger.

A full test ingestion (tracking API batch, a CRM import, GraphQL mutations and queries, an
erasure) runs at DEBUG with every logger on, the neo4j driver's included (it logs each Cypher
statement with its parameters); everything logged is captured (caplog and a plain handler on the
root logger, without any filter of its own) and scanned for the values sent and for any email or
phone pattern. A second test does the same through a real uvicorn, for its access and error logs.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.ingestion.importers.mapping import Kind
from customer_graph.ingestion.importers.runner import ImportOptions, run_import
from customer_graph.settings import PROJECT_ROOT, Settings
from tests.helpers import asgi_client, assert_no_errors, unique

EMAIL_PATTERN = re.compile(r"[\w.+-]+(?:@|%40)[\w-]+\.[\w.-]+", re.IGNORECASE)
E164_PATTERN = re.compile(r"(?:\+|%2B)\d{7,15}")
LOGGERS = ("", "neo4j", "customer_graph", "uvicorn", "strawberry", "httpx", "starlette")

UPSERT = """mutation ($input: UpsertCustomerInput!) { upsertCustomer(input: $input) {
  profile { id email phone } userErrors { field message code } } }"""
BY_IDENTIFIER = """query ($v: String!) { profileByIdentifier(type: "email", value: $v) {
  id email phone identifiers { type value } } }"""
DELETE = """mutation ($id: ID!) { deleteProfile(input: {id: $id}) {
  deletedProfileId userErrors { code } } }"""


class People:
    """The PII this test sends, in the forms that could end up in a log line."""

    def __init__(self) -> None:
        self.tag = unique("pii")
        rng = random.SystemRandom()
        self.emails = [f"{self.tag}.{i}@Example-{i}.com" for i in range(4)]
        self.local = [f"{rng.randint(200, 999)}{rng.randint(0, 9999):04d}" for _ in range(4)]
        self.e164 = [f"+1415{n}" for n in self.local]
        self.national = [f"(415) {n[:3]}-{n[3:]}" for n in self.local]

    def needles(self) -> list[str]:
        """Every value sent and its normalized and encoded forms."""
        out: list[str] = []
        for email in self.emails:
            out += [email, email.lower(), email.split("@")[0] + "@", email.replace("@", "%40")]
        for e164, national, local in zip(self.e164, self.national, self.local, strict=True):
            out += [e164, e164[1:], national, f"{local[:3]}-{local[3:]}", e164.replace("+", "%2B")]
        return out


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """caplog at DEBUG for every logger, plus a plain root handler with no filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def _scan(text: str, people: People) -> None:
    for needle in people.needles():
        assert needle not in text, f"PII in logs: {needle!r}"
    assert not EMAIL_PATTERN.search(text), EMAIL_PATTERN.search(text)
    assert not E164_PATTERN.search(text), E164_PATTERN.search(text)


def _batch(people: People, key: str) -> dict[str, Any]:
    t = people.tag
    return {
        "writeKey": key,
        "batch": [
            {
                "type": "identify",
                "userId": f"u-{t}",
                "messageId": f"m1-{t}",
                "traits": {"email": people.emails[0], "phone": people.national[0]},
                "context": {"externalIds": [{"id": people.e164[1], "type": "phone"}]},
            },
            {
                "type": "track",
                "userId": f"u-{t}",
                "messageId": f"m2-{t}",
                "event": "Signed Up",
                "properties": {"contact": people.emails[1], "callback": people.e164[0]},
            },
            {
                "type": "identify",
                "messageId": f"m3-{t}",
                "traits": {"email": people.emails[0]},
            },  # no userId or anonymousId: refused, with its message logged at most by index
        ],
    }


def _csv(people: People, folder: Path) -> Path:
    path = folder / f"contacts-{people.tag}.csv"
    path.write_text(
        "id,first_name,email,phone\n"
        f"c1-{people.tag},Ann,{people.emails[2]},{people.national[2]}\n"
        f"c2-{people.tag},Bob,{people.emails[3]},{people.e164[3]}\n"
        f",Eve,{people.emails[1]},{people.national[1]}\n",  # no id: rejected
        encoding="utf-8",
    )
    return path


async def test_full_ingestion_logs_no_pii(
    driver: AsyncDriver,
    settings: Settings,
    captured: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    people = People()
    key = settings.dev_key
    assert key
    async with asgi_client(create_app(settings)) as client:
        tracked = await client.post(
            "/v1/batch", json=_batch(people, key), headers={"authorization": f"Bearer {key}"}
        )
        assert tracked.status_code in (200, 400), tracked.text
        for i, extra in ((0, None), (1, None), (2, "not a phone")):
            identifiers = [
                {"type": "email", "value": people.emails[i]},
                {"type": "phone", "value": people.national[i]},
            ]
            if extra:
                identifiers.append({"type": "phone", "value": extra})
            variables = {
                "input": {
                    "source": f"gql-{people.tag}",
                    "sourceId": str(i),
                    "traits": {"email": people.emails[i], "note": people.national[i]},
                    "identifiers": identifiers,
                }
            }
            response = await client.post("/graphql", json={"query": UPSERT, "variables": variables})
            errors = assert_no_errors(response.json())["upsertCustomer"]["userErrors"]
            assert [e["code"] for e in errors] == (["INVALID_IDENTIFIER"] if extra else [])
        found = (
            await client.post(
                "/graphql", json={"query": BY_IDENTIFIER, "variables": {"v": people.emails[0]}}
            )
        ).json()
        profile = assert_no_errors(found)["profileByIdentifier"]
        assert profile is not None
        await client.get(
            "/graphql",
            params={"query": BY_IDENTIFIER, "variables": f'{{"v": "{people.emails[1]}"}}'},
            headers={"accept": "application/json"},
        )
        summary = await run_import(
            driver,
            settings,
            ImportOptions(
                path=_csv(people, tmp_path), kind=Kind.CONTACTS, source=f"crm-{people.tag}"
            ),
        )
        assert summary.written == 2 and summary.rejected == 1
        erased = await client.post(
            "/graphql", json={"query": DELETE, "variables": {"id": profile["id"]}}
        )
        assert assert_no_errors(erased.json())["deleteProfile"]["deletedProfileId"]

    text = "\n".join([captured.getvalue(), caplog.text, *(r.getMessage() for r in caplog.records)])
    # The scan means something only if the driver logged the statements and their parameters.
    assert len(caplog.records) > 100
    assert "C: RUN" in text
    assert "[email]" in text and "[phone]" in text
    _scan(text, people)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve_and_call(people: People, key: str) -> str:
    port = _free_port()
    env = {**os.environ, "CUSTOMER_GRAPH_LOG_LEVEL": "DEBUG", "CUSTOMER_GRAPH_DEV_KEY": key}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "customer_graph.app:app",
        "--port",
        str(port),
        "--log-level",
        "debug",
        "--access-log",
    ]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        auth = {"authorization": f"Bearer {key}"}
        httpx.post(f"{base}/v1/batch", json=_batch(people, key), headers=auth, timeout=30)
        httpx.get(
            f"{base}/graphql",
            params={"query": BY_IDENTIFIER, "variables": f'{{"v": "{people.emails[1]}"}}'},
            headers={**auth, "accept": "application/json"},
            timeout=30,
        )
        httpx.get(f"{base}/nowhere/{people.emails[2]}/{people.e164[2]}", timeout=30)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    return output.decode("utf-8", "replace")


async def test_uvicorn_logs_no_pii(settings: Settings, driver: AsyncDriver) -> None:
    people = People()
    assert settings.dev_key
    output = await asyncio.to_thread(_serve_and_call, people, settings.dev_key)
    assert "GET /graphql?" in output  # the access log ran, with the query string
    assert "/nowhere/" in output
    _scan(output, people)
