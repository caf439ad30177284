"""What `make run` adds for a first look: a development key, made once, and a small demo graph."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from neo4j import AsyncDriver

from customer_graph.auth import ALL_SCOPES, DEV_SOURCE, authenticate, create_key
from customer_graph.graph.constraints import ensure_schema
from customer_graph.graph.driver import driver_for
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
)
from customer_graph.graph.resolution import resolution_config
from customer_graph.graph.writes import write_batch
from customer_graph.settings import PROJECT_ROOT, Settings

DEV_KEY_FILE = PROJECT_ROOT / ".local" / "dev-key"
_T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


def dev_setup(settings: Settings, path: Path = DEV_KEY_FILE) -> str:
    """Load the demo graph and return the development key: the saved one while it is still
    valid, else a new one with every scope, saved (mode 600) for the next run."""
    saved = path.read_text().strip() if path.exists() else None
    key, created = asyncio.run(_dev_setup(settings, saved))
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(key + "\n")
    return key


async def _dev_setup(settings: Settings, saved: str | None) -> tuple[str, bool]:
    async with driver_for(settings) as driver:
        await ensure_schema(driver, settings.neo4j_database)
        await load_demo(driver, settings)
        if saved and await authenticate(driver, settings, saved) is not None:
            return saved, False
        key, _ = await create_key(driver, settings, scopes=ALL_SCOPES, source=DEV_SOURCE)
        return key, True


def demo_batch() -> WriteBatch:
    """Ada is known to the website, the app and the CRM; Grace only to the CRM."""

    def at(days: float) -> datetime:
        return _T0 + timedelta(days=days)

    customers = (
        CustomerIn(
            source="demo-web",
            source_id="anon-7f3a",
            identifiers=(IdentifierIn("anonymous_id", "anon-7f3a"),),
            traits={"utm_source": "newsletter"},
            seen_at=at(0),
        ),
        CustomerIn(
            source="demo-web",
            source_id="u-1001",
            identifiers=(
                IdentifierIn("user_id", "u-1001"),
                IdentifierIn("anonymous_id", "anon-7f3a"),
                IdentifierIn("email", "Ada.Lovelace@Example.com"),
            ),
            traits={"name": "Ada Lovelace", "plan": "pro"},
            seen_at=at(1),
        ),
        CustomerIn(
            source="demo-crm",
            source_id="003A1",
            identifiers=(
                IdentifierIn("email", "ada.lovelace@example.com"),
                IdentifierIn("phone", "+44 20 7946 0958"),
                IdentifierIn("crm_contact_id", "003A1"),
            ),
            traits={
                "firstName": "Ada",
                "lastName": "Lovelace",
                "title": "CTO",
                "company": "Analytical Engines Ltd",
            },
            seen_at=at(2),
        ),
        CustomerIn(
            source="demo-crm",
            source_id="003B2",
            identifiers=(
                IdentifierIn("email", "grace@cobol.example"),
                IdentifierIn("crm_contact_id", "003B2"),
            ),
            traits={
                "firstName": "Grace",
                "lastName": "Hopper",
                "title": "VP Engineering",
                "company": "Analytical Engines Ltd",
            },
            seen_at=at(2),
        ),
    )
    interactions = (
        InteractionIn(
            id="demo-page-1",
            source="demo-web",
            customer_source_id="anon-7f3a",
            type="page",
            name="Pricing",
            occurred_at=at(0),
        ),
        InteractionIn(
            id="demo-track-1",
            source="demo-web",
            customer_source_id="u-1001",
            type="track",
            name="Signed Up",
            occurred_at=at(1),
            properties={"plan": "pro"},
        ),
        InteractionIn(
            id="demo-call-1",
            source="demo-crm",
            customer_source_id="003A1",
            type="call",
            subject="Discovery call",
            direction="outbound",
            duration_seconds=1800,
            occurred_at=at(3),
            owner_id="demo-owner-1",
            deal_id="demo-deal-1",
        ),
        InteractionIn(
            id="demo-email-1",
            source="demo-crm",
            customer_source_id="003A1",
            type="email",
            subject="Proposal",
            direction="outbound",
            occurred_at=at(6),
            owner_id="demo-owner-1",
            deal_id="demo-deal-1",
        ),
        InteractionIn(
            id="demo-meeting-1",
            source="demo-crm",
            customer_source_id="003B2",
            type="meeting",
            subject="Technical review",
            occurred_at=at(8),
            owner_id="demo-owner-1",
            deal_id="demo-deal-1",
        ),
    )
    return WriteBatch(
        customers=customers,
        interactions=interactions,
        owners=(OwnerIn(id="demo-owner-1", name="Sam Seller"),),
        accounts=(
            AccountIn(
                id="demo-acct-1",
                name="Analytical Engines Ltd",
                domain="analytical.example",
                owner_id="demo-owner-1",
            ),
        ),
        memberships=(
            MembershipIn(
                source="demo-crm",
                source_id="003A1",
                account_id="demo-acct-1",
                title="CTO",
                roles=("decision maker",),
                primary=True,
                start_date=at(-400),
            ),
            MembershipIn(
                source="demo-crm",
                source_id="003B2",
                account_id="demo-acct-1",
                title="VP Engineering",
                roles=("technical buyer",),
            ),
        ),
        deals=(
            DealIn(
                id="demo-deal-1",
                name="Analytical Engines — Enterprise",
                amount=48000.0,
                currency="USD",
                pipeline="default",
                stage="Proposal",
                status="open",
                created_at=at(3),
                owner_id="demo-owner-1",
                account_id="demo-acct-1",
                contacts=(
                    DealContactIn("demo-crm", "003A1", "decision maker"),
                    DealContactIn("demo-crm", "003B2", "technical buyer"),
                ),
                source="demo-crm",
            ),
        ),
        stage_changes=(
            StageChangeIn(
                deal_id="demo-deal-1", from_stage=None, to_stage="Qualification", changed_at=at(3)
            ),
            StageChangeIn(
                deal_id="demo-deal-1",
                from_stage="Qualification",
                to_stage="Proposal",
                changed_at=at(6),
            ),
        ),
    )


async def load_demo(driver: AsyncDriver, settings: Settings) -> None:
    """Write the demo graph; writing it again changes nothing."""
    await write_batch(driver, settings.neo4j_database, demo_batch(), resolution_config(settings))
