"""Test data for the GraphQL tests, written through the real write path (graph/writes.py).

`seed_person` makes one person as the product sees them: a CRM contact and a web visitor that
become one profile when the visitor identifies (a merge), with calls, emails and page views, an
account membership, an owner, and two deals (one open with stage history, one won). Every id is
unique, so tests share the database safely.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from neo4j import AsyncDriver

from customer_graph.app import create_app
from customer_graph.graph.records import (
    AccountIn,
    CustomerIn,
    DealContactIn,
    DealIn,
    IdentifierIn,
    InteractionIn,
    MembershipIn,
    OwnerIn,
    StageChangeIn,
    WriteBatch,
    customer_key,
)
from customer_graph.graph.resolution import resolution_config
from customer_graph.graph.writes import write_batch
from customer_graph.settings import Settings
from tests.helpers import asgi_client, assert_no_errors, unique

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


async def gql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    """POST a GraphQL document; return the whole response body (data, errors, extensions)."""
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    return body


async def data(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    """POST a GraphQL document that must succeed; return its `data`."""
    return assert_no_errors(await gql(client, query, **variables))


@dataclass
class Person:
    tag: str
    email: str
    crm_key: str
    web_key: str
    profile_id: str  # the survivor
    merged_id: str  # the web visitor's profile, merged away
    account_id: str
    owner_id: str
    open_deal_id: str
    won_deal_id: str
    interaction_ids: list[str] = field(default_factory=list)  # oldest first


async def write(driver: AsyncDriver, settings: Settings, batch: WriteBatch) -> dict[str, str]:
    result = await write_batch(driver, settings.neo4j_database, batch, resolution_config(settings))
    return result.record_profiles


async def seed_person(
    driver: AsyncDriver, settings: Settings, interactions: int = 6, company: str | None = None
) -> Person:
    tag = unique("gq").replace("-", "")
    email = f"{tag}@example.com"
    crm_id, web_id = f"c-{tag}", f"w-{tag}"
    account_id, owner_id = f"acc-{tag}", f"own-{tag}"
    open_deal, won_deal = f"deal-open-{tag}", f"deal-won-{tag}"
    company = company or f"Company{tag}"

    # The CRM contact, its account, owner and deals.
    crm = CustomerIn(
        source="crm",
        source_id=crm_id,
        traits={"name": f"Ada {tag}", "email": email, "company": company, "title": "CTO"},
        identifiers=(IdentifierIn("email", email), IdentifierIn("crm_id", crm_id)),
        seen_at=T0,
    )
    first = await write(
        driver,
        settings,
        WriteBatch(
            customers=(crm,),
            owners=(OwnerIn(owner_id, name="Sam Seller", email=f"sam-{tag}@seller.test"),),
            accounts=(
                AccountIn(account_id, name=company, domain=f"{tag}.test", owner_id=owner_id),
            ),
            memberships=(
                MembershipIn(
                    "crm",
                    crm_id,
                    account_id,
                    title="CTO",
                    roles=("buyer",),
                    primary=True,
                    start_date=T0 - timedelta(days=400),
                ),
            ),
            deals=(
                DealIn(
                    open_deal,
                    name="Expansion",
                    amount=5000.0,
                    currency="EUR",
                    pipeline="sales",
                    stage="qualified",
                    status="open",
                    created_at=T0,
                    owner_id=owner_id,
                    account_id=account_id,
                    contacts=(DealContactIn("crm", crm_id, role="champion"),),
                ),
                DealIn(
                    won_deal,
                    name="First order",
                    amount=1200.0,
                    currency="EUR",
                    pipeline="sales",
                    stage="closedwon",
                    status="won",
                    created_at=T0,
                    closed_at=T0 + timedelta(days=10),
                    owner_id=owner_id,
                    account_id=account_id,
                    contacts=(DealContactIn("crm", crm_id, role="buyer"),),
                ),
            ),
            stage_changes=(
                StageChangeIn(open_deal, "qualified", T0 + timedelta(days=1), from_stage="new"),
                StageChangeIn(
                    open_deal, "proposal", T0 + timedelta(days=4), from_stage="qualified"
                ),
                StageChangeIn(won_deal, "closedwon", T0 + timedelta(days=10), from_stage="new"),
            ),
        ),
    )
    profile_id = first[customer_key("crm", crm_id)]

    # The web visitor: anonymous at first, so it gets a profile of its own.
    web = CustomerIn(
        source="web",
        source_id=web_id,
        identifiers=(IdentifierIn("anonymous_id", web_id),),
        seen_at=T0 + timedelta(days=2),
    )
    second = await write(driver, settings, WriteBatch(customers=(web,)))
    merged_id = second[customer_key("web", web_id)]

    # Activity: calls and emails on the CRM record, page views on the web one.
    rows = []
    for n in range(interactions):
        kind = ("call", "email", "page")[n % 3]
        source, record = ("web", web_id) if kind == "page" else ("crm", crm_id)
        rows.append(
            InteractionIn(
                id=f"i-{tag}-{n}",
                source=source,
                customer_source_id=record,
                type=kind,
                occurred_at=T0 + timedelta(days=2, hours=n),
                subject=f"{kind} {n}",
                duration_seconds=60 * n if kind == "call" else None,
                owner_id=owner_id if kind != "page" else None,
                deal_id=open_deal if kind == "call" else None,
                properties={"n": n},
            )
        )
    await write(driver, settings, WriteBatch(interactions=tuple(rows)))

    # The visitor identifies: the shared email merges the two profiles (the CRM one is older).
    identify = CustomerIn(
        source="web",
        source_id=web_id,
        identifiers=(IdentifierIn("email", f" {email.upper()} "),),
        traits={"plan": "pro"},
        seen_at=T0 + timedelta(days=3),
    )
    await write(driver, settings, WriteBatch(customers=(identify,)))

    return Person(
        tag=tag,
        email=email,
        crm_key=customer_key("crm", crm_id),
        web_key=customer_key("web", web_id),
        profile_id=profile_id,
        merged_id=merged_id,
        account_id=account_id,
        owner_id=owner_id,
        open_deal_id=open_deal,
        won_deal_id=won_deal,
        interaction_ids=[r.id for r in rows],
    )


async def seed_many(
    driver: AsyncDriver, settings: Settings, n: int, interactions: int = 12
) -> list[str]:
    """`n` profiles in one write batch, each with two identifiers, `interactions` interactions
    and an open deal with two stage changes; returns their profile ids."""
    tag = unique("many").replace("-", "")
    customers, rows, deals, changes = [], [], [], []
    for p in range(n):
        sid = f"{tag}-{p}"
        customers.append(
            CustomerIn(
                source="crm",
                source_id=sid,
                traits={"name": f"Person {sid}"},
                identifiers=(
                    IdentifierIn("email", f"{sid}@example.com"),
                    IdentifierIn("user_id", f"u-{sid}"),
                ),
                seen_at=T0,
            )
        )
        rows += [
            InteractionIn(
                id=f"i-{sid}-{k}",
                source="crm",
                customer_source_id=sid,
                type=("call", "email", "meeting")[k % 3],
                occurred_at=T0 + timedelta(hours=k),
                owner_id=f"own-{tag}",
            )
            for k in range(interactions)
        ]
        deals.append(
            DealIn(
                f"d-{sid}",
                name=f"Deal {sid}",
                amount=100.0,
                status="open",
                stage="proposal",
                owner_id=f"own-{tag}",
                contacts=(DealContactIn("crm", sid, role="buyer"),),
            )
        )
        changes += [
            StageChangeIn(f"d-{sid}", "qualified", T0, from_stage="new"),
            StageChangeIn(f"d-{sid}", "proposal", T0 + timedelta(days=1), from_stage="qualified"),
        ]
    profiles = await write(
        driver,
        settings,
        WriteBatch(
            customers=tuple(customers),
            owners=(OwnerIn(f"own-{tag}", name="Owner"),),
            deals=tuple(deals),
            interactions=tuple(rows),
            stage_changes=tuple(changes),
        ),
    )
    return [profiles[customer_key("crm", f"{tag}-{p}")] for p in range(n)]


class _CountingSession:
    """A session that puts the text of the first statement it runs in place of its entry."""

    def __init__(self, session: Any, queries: list[str]) -> None:
        self._session = session
        self._queries = queries
        self._index: int | None = len(queries)
        queries.append("<session>")

    async def run(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        if self._index is not None:
            self._queries[self._index] = str(query)
            self._index = None
        else:
            self._queries.append(str(query))
        return await self._session.run(query, *args, **kwargs)

    async def __aenter__(self) -> _CountingSession:
        await self._session.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._session.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class CountingDriver:
    """The real driver, counting the Cypher it is asked to run: each query, each session (as
    the text of the first statement it runs itself, `<session>` until then)."""

    def __init__(self, driver: AsyncDriver) -> None:
        self._driver = driver
        self.queries: list[str] = []

    async def execute_query(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self.queries.append(str(query))
        return await self._driver.execute_query(query, *args, **kwargs)

    def session(self, *args: Any, **kwargs: Any) -> Any:
        return _CountingSession(self._driver.session(*args, **kwargs), self.queries)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)


@asynccontextmanager
async def counting_client(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, CountingDriver]]:
    """The app over HTTP, its driver counting every query once start-up work is done."""
    app = create_app(settings)
    async with asgi_client(app) as client:
        state = app.state.cg
        await state.schema_ready.wait()
        counting = CountingDriver(state.driver)
        state.driver = counting
        yield client, counting
