"""A seeded generator of realistic customer data, with its ground truth.

People are spread over three sources, as a real company sees them:

- `web`: a visitor browses anonymously in 1-3 sessions (one record per anonymous id, with page and
  track events); some log in, and the identified record carries the user id, the email and the
  anonymous ids of the sessions in which they logged in;
- `crm`: contacts (email, often typed differently; a phone in national format; the CRM id) that
  belong to accounts, with deals moving through a pipeline (stage history), calls, emails and
  meetings owned by sales reps;
- `app`: the mobile app's user record (the same user id as the web login, a device id, sometimes
  an email or phone).

`overlap` is the chance that a record outside the web login carries the person's own email or
phone (otherwise it carries a value no other record shares). `noise` is the chance that a record's
email or phone is a blocked placeholder or a malformed value: it must never link anything.
`super_connectors` values (a shared family phone, a team inbox) are planted on many people's
records: a resolver that follows them blindly merges strangers.

The ground truth is `Dataset.truth` (customer key -> person). `Dataset.oracle` is what a perfect
connected-components resolver would find (components over the valid identifiers, super-connectors
included): the ceiling a resolver without limits can reach, and a check of the resolver itself.

Everything is a function of the config: the same seed gives the same data, byte for byte.
"""

from __future__ import annotations

import csv
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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

FIRST_NAMES = (
    "ada", "alan", "amara", "ana", "ben", "carla", "chen", "dara", "diego", "elif", "emma",
    "farid", "grace", "hana", "ivan", "jana", "jonas", "kofi", "lara", "liam", "maya", "mei",
    "nia", "omar", "priya", "rosa", "sami", "sofia", "tariq", "uma", "vera", "yusuf", "zoe",
)  # fmt: skip
LAST_NAMES = (
    "abbott", "bauer", "costa", "dubois", "evans", "fischer", "garcia", "haddad", "ito", "jensen",
    "kowalski", "lopez", "mensah", "nakamura", "okafor", "petrov", "quinn", "rossi", "silva",
    "tanaka", "usman", "varga", "weber", "xu", "yilmaz", "zhang",
)  # fmt: skip
MAIL_DOMAINS = ("mail.example", "inbox.example", "post.example", "webmail.example")
COMPANY_WORDS = (
    "acme", "globex", "initech", "umbrella", "hooli", "vandelay", "stark", "wayne", "tyrell",
    "wonka", "soylent", "cyberdyne", "aperture", "massive", "oscorp", "pied-piper",
)  # fmt: skip
AREA_CODES = (
    "201", "212", "213", "305", "312", "404", "415", "503", "512", "602",
    "617", "646", "702", "713", "718", "773", "805", "917", "949", "971",
)  # fmt: skip
PAGES = ("/", "/pricing", "/docs", "/blog", "/signup", "/features", "/contact", "/careers")
EVENTS = ("Product Viewed", "Signed Up", "Plan Selected", "Invite Sent", "Report Exported")
STAGES = ("prospecting", "qualification", "proposal", "negotiation")
CLOSED_STAGES = ("closed_won", "closed_lost")
TITLES = ("CTO", "VP Sales", "Head of Data", "Engineer", "Analyst", "COO", "Buyer", "Founder")
# Values that must never link records (DESIGN.md's defaults), and values that do not parse.
BLOCKED_EMAILS = ("test@test.com", "null", "none", "unknown", "n/a", "undefined", "anonymous", "")
BLOCKED_PHONES = ("0000000000", "-1", "000-000-0000", "null")
MALFORMED_EMAILS = ("not-an-email", "jane@", "@@example", "john.doe at mail", "a@b")
MALFORMED_PHONES = ("12", "call me", "555", "+0 000", "phone")

PHONE_BLOCK = 20_000_000  # phone serials per block: 8 blocks fill the 160M numbers we use
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_S = 365 * 24 * 3600


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. `records` is the number of Customer records (source records)."""

    records: int
    seed: int = 7
    prefix: str = ""  # namespaces every id, so several data sets can share one graph
    block: int = 0  # phone numbers of data sets with different blocks never collide (0-7)
    # Phone serials start here within the block, so that data sets of one block with offsets
    # 20 x records apart share no number either (bench/__main__.py's warm-up rounds).
    phone_offset: int = 0
    p_web: float = 0.7
    p_crm: float = 0.5
    p_app: float = 0.35
    p_login: float = 0.6  # a web visitor logs in at least once
    overlap: float = 0.8
    noise: float = 0.05
    super_connectors: int = 3
    super_connector_share: float = 0.004  # of the people, each super-connector touches
    crm_interactions: float = 3.0  # mean calls, emails and meetings per contact
    web_events: float = 2.0  # mean page and track events per session
    contacts_per_account: float = 4.0
    deals_per_account: float = 1.5
    owners: int = 12
    heavy_people: int = 10  # people with a long relationship history
    heavy_interactions: int = 1_000


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    id: str  # the ground-truth label
    first: str
    last: str
    email: str
    phone: str  # E.164
    user_id: str


@dataclass
class Dataset:
    """The generated records, grouped as the write path takes them, and their truth."""

    config: GeneratorConfig
    people: list[Person] = field(default_factory=list)
    owners: list[OwnerIn] = field(default_factory=list)
    accounts: list[AccountIn] = field(default_factory=list)
    customers: list[CustomerIn] = field(default_factory=list)
    memberships: list[MembershipIn] = field(default_factory=list)
    deals: list[DealIn] = field(default_factory=list)
    stage_changes: list[StageChangeIn] = field(default_factory=list)
    interactions: list[InteractionIn] = field(default_factory=list)
    truth: dict[str, str] = field(default_factory=dict)  # customer key -> person id
    link_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # valid identifiers
    super_connector_keys: tuple[str, ...] = ()
    heavy_keys: tuple[str, ...] = ()  # customer keys of the heavy people's CRM records

    @property
    def oracle(self) -> dict[str, str]:
        """customer key -> component over valid identifiers (what a perfect resolver finds)."""
        return components(self.link_keys)

    def person_records(self) -> dict[str, list[str]]:
        """person id -> customer keys, in generation order."""
        out: dict[str, list[str]] = {}
        for key, person in self.truth.items():
            out.setdefault(person, []).append(key)
        return out


def components(link_keys: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Union-find over records sharing an identifier; label = the first record of the component."""
    parent: dict[str, str] = {key: key for key in link_keys}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_holder: dict[str, str] = {}
    for key, identifiers in link_keys.items():
        for ident in identifiers:
            holder = first_holder.setdefault(ident, key)
            if holder != key:
                a, b = find(holder), find(key)
                if a != b:
                    parent[b] = a
    return {key: find(key) for key in link_keys}


class _Gen:
    """The generator's state: one Random, consumed in a fixed order."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.c = config
        self.rng = random.Random(config.seed)
        self.data = Dataset(config=config)
        self.counter = 0

    # -- small helpers ---------------------------------------------------------------------

    def uid(self, kind: str) -> str:
        """An 18-character id in Salesforce's shape: a 3-character key prefix (003 contact,
        001 account, 006 opportunity, 00T task), the data set's prefix, then a serial."""
        self.counter += 1
        tag = "".join(ch for ch in self.c.prefix if ch.isalnum()).upper()
        return f"{kind}{tag}{self.counter:0{max(1, 15 - len(tag))}d}"

    def message_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def when(self, after: datetime | None = None) -> datetime:
        base = after or EPOCH
        return base + timedelta(seconds=self.rng.randrange(YEAR_S // (2 if after else 1)))

    def poisson(self, mean: float) -> int:
        # Knuth's method is fine for the small means used here.
        limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def phone(self, serial: int) -> str:
        """A valid US number (E.164), distinct for each serial within the config's `block`."""
        n = self.c.block * PHONE_BLOCK + (self.c.phone_offset + serial) % PHONE_BLOCK
        area = AREA_CODES[n % len(AREA_CODES)]
        rest = n // len(AREA_CODES)
        return f"+1{area}{200 + (rest // 10_000) % 800}{rest % 10_000:04d}"

    def person(self, index: int) -> Person:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        phone = self.phone(2 * index)
        email = f"{self.c.prefix}{first}.{last}.{index}@{self.rng.choice(MAIL_DOMAINS)}"
        return Person(
            index=index,
            id=f"{self.c.prefix}person-{index}",
            first=first,
            last=last,
            email=email,
            phone=phone,
            user_id=f"{self.c.prefix}u{index}",
        )

    def raw_email(self, email: str) -> str:
        """How a source may type an email: upper-cased or padded; normalization undoes it."""
        r = self.rng.random()
        if r < 0.1:
            return email.upper()
        if r < 0.2:
            return f"  {email} "
        return email

    @staticmethod
    def national(phone: str) -> str:
        return f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"

    def noisy(self, kind: str) -> str | None:
        """A blocked or malformed value, with probability `noise`; else None."""
        if self.rng.random() >= self.c.noise:
            return None
        if kind == "email":
            return self.rng.choice(BLOCKED_EMAILS + MALFORMED_EMAILS)
        return self.rng.choice(BLOCKED_PHONES + MALFORMED_PHONES)

    def add_customer(
        self,
        person: Person,
        source: str,
        source_id: str,
        identifiers: list[tuple[str, str, str | None]],
        traits: dict[str, Any],
        seen_at: datetime,
    ) -> CustomerIn:
        """identifiers: (type, raw value, canonical key or None when it must not link)."""
        customer = CustomerIn(
            source=source,
            source_id=source_id,
            traits=traits,
            identifiers=tuple(IdentifierIn(t, v) for t, v, _ in identifiers),
            seen_at=seen_at,
            message_id=self.message_id(),
        )
        self.data.customers.append(customer)
        self.data.truth[customer.key] = person.id
        self.data.link_keys[customer.key] = tuple(k for _, _, k in identifiers if k is not None)
        return customer

    def contact_value(
        self, person: Person, kind: str, own: str, raw: str
    ) -> tuple[str, str, str | None]:
        """The person's own value (probability `overlap`), else one nobody shares; maybe noise."""
        bad = self.noisy(kind)
        if bad is not None:
            return (kind, bad, None)
        if self.rng.random() < self.c.overlap:
            return (kind, raw, f"{kind}:{own}")
        serial = self.uid("x")
        if kind == "email":
            other = f"{self.c.prefix}{person.first}.{serial}@work.example"
        else:  # a number of its own: odd serials are never a person's main phone
            other = self.phone(2 * self.counter + 1)
        return (kind, other, f"{kind}:{other}")

    # -- sources ---------------------------------------------------------------------------

    def web(self, person: Person) -> None:
        sessions = self.rng.randint(1, 3)
        logged_in = self.rng.random() < self.c.p_login
        login_anon: list[str] = []
        first_seen = self.when()
        for _ in range(sessions):
            anon = f"{self.c.prefix}{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"
            seen = self.when(first_seen)
            record = self.add_customer(
                person, "web", anon, [("anonymous_id", anon, f"anonymous_id:{anon}")], {}, seen
            )
            for _ in range(self.poisson(self.c.web_events)):
                is_page = self.rng.random() < 0.6
                at = seen + timedelta(seconds=self.rng.randrange(3600))
                self.data.interactions.append(
                    InteractionIn(
                        id=self.uid("ev"),
                        source="web",
                        customer_source_id=record.source_id,
                        type="page" if is_page else "track",
                        occurred_at=at,
                        name=self.rng.choice(PAGES) if is_page else self.rng.choice(EVENTS),
                        channel="web",
                        properties={"path": self.rng.choice(PAGES)},
                        message_id=self.message_id(),
                    )
                )
            if logged_in and self.rng.random() < 0.8:
                login_anon.append(anon)
        if not logged_in:
            return
        identifiers: list[tuple[str, str, str | None]] = [
            ("user_id", person.user_id, f"user_id:{person.user_id}")
        ]
        identifiers += [("anonymous_id", a, f"anonymous_id:{a}") for a in login_anon]
        bad = self.noisy("email")
        identifiers.append(
            ("email", bad, None)
            if bad is not None
            else ("email", person.email, f"email:{person.email}")
        )
        traits = {"firstName": person.first.title(), "lastName": person.last.title()}
        self.add_customer(person, "web", person.user_id, identifiers, traits, self.when(first_seen))

    def app(self, person: Person) -> None:
        device = f"{self.c.prefix}dev-{self.rng.getrandbits(48):012x}"
        identifiers: list[tuple[str, str, str | None]] = [
            ("user_id", person.user_id, f"user_id:{person.user_id}"),
            ("device_id", device, f"device_id:{device}"),
        ]
        if self.rng.random() < 0.5:
            identifiers.append(self.contact_value(person, "email", person.email, person.email))
        if self.rng.random() < 0.3:
            identifiers.append(self.contact_value(person, "phone", person.phone, person.phone))
        traits = {"name": f"{person.first.title()} {person.last.title()}", "plan": "free"}
        self.add_customer(person, "app", person.user_id, identifiers, traits, self.when())

    def crm(self, person: Person, account: AccountIn, heavy: bool) -> CustomerIn:
        contact_id = self.uid("003")
        identifiers: list[tuple[str, str, str | None]] = [
            ("crm_id", contact_id, f"crm_id:{contact_id}"),
            self.contact_value(person, "email", person.email, self.raw_email(person.email)),
        ]
        if self.rng.random() < 0.6:
            identifiers.append(
                self.contact_value(person, "phone", person.phone, self.national(person.phone))
            )
        title = self.rng.choice(TITLES)
        traits = {
            "firstName": person.first.title(),
            "lastName": person.last.title(),
            "title": title,
            "company": account.name,
        }
        created = self.when()
        record = self.add_customer(person, "crm", contact_id, identifiers, traits, created)
        self.data.memberships.append(
            MembershipIn(
                source="crm",
                source_id=contact_id,
                account_id=account.id,
                title=title,
                roles=(self.rng.choice(("decision_maker", "champion", "user", "billing")),),
                primary=True,
                start_date=created,
            )
        )
        count = self.c.heavy_interactions if heavy else self.poisson(self.c.crm_interactions)
        for _ in range(count):
            kind = self.rng.choice(("call", "email", "meeting", "email", "call", "note"))
            self.data.interactions.append(
                InteractionIn(
                    id=self.uid("00T"),
                    source="crm",
                    customer_source_id=contact_id,
                    type=kind,
                    occurred_at=self.when(created),
                    subject=f"{kind.title()} about {account.name}",
                    body=None if kind != "note" else "Discussed renewal and seats.",
                    direction=self.rng.choice(("inbound", "outbound")),
                    duration_seconds=self.rng.randrange(60, 3600) if kind != "email" else None,
                    owner_id=account.owner_id,
                    account_id=account.id,
                )
            )
        return record

    def account(self) -> AccountIn:
        word = self.rng.choice(COMPANY_WORDS)
        account_id = self.uid("001")
        account = AccountIn(
            id=account_id,
            name=f"{word.title()} {account_id[-5:]}",
            domain=f"{word}-{account_id[-5:]}.example",
            owner_id=self.rng.choice(self.data.owners).id,
            traits={"industry": self.rng.choice(("software", "retail", "finance", "health"))},
            source="crm",
        )
        self.data.accounts.append(account)
        return account

    def deals(self, account: AccountIn, contacts: list[CustomerIn]) -> None:
        n = self.poisson(self.c.deals_per_account) + (1 if self.rng.random() < 0.3 else 0)
        for _ in range(n):
            deal_id = self.uid("006")
            created = self.when()
            steps = self.rng.randint(1, len(STAGES))
            path = list(STAGES[:steps])
            closed = self.rng.random() < 0.4
            if closed:
                path.append(self.rng.choice(CLOSED_STAGES))
            at, previous = created, None
            for stage in path:
                self.data.stage_changes.append(
                    StageChangeIn(
                        deal_id=deal_id, to_stage=stage, changed_at=at, from_stage=previous
                    )
                )
                previous = stage
                at = at + timedelta(days=self.rng.randint(1, 30))
            status = "open" if not closed else ("won" if path[-1] == "closed_won" else "lost")
            roles = ("decision_maker", "influencer", "user")
            self.data.deals.append(
                DealIn(
                    id=deal_id,
                    name=f"{account.name} — {self.rng.choice(('Expansion', 'New', 'Renewal'))}",
                    amount=float(self.rng.randrange(1_000, 200_000, 500)),
                    currency="USD",
                    pipeline="default",
                    stage=path[-1],
                    status=status,
                    created_at=created,
                    closed_at=at if closed else None,
                    owner_id=account.owner_id,
                    account_id=account.id,
                    contacts=tuple(
                        DealContactIn(c.source, c.source_id, self.rng.choice(roles))
                        for c in contacts[:3]
                    ),
                    source="crm",
                )
            )

    def plant_super_connectors(self) -> None:
        """Put a few shared values (a family phone, a team inbox) on many people's records."""
        candidates = [c for c in self.data.customers if c.source in ("crm", "app")]
        if not candidates or self.c.super_connectors <= 0:
            return
        size = max(3, int(len(self.data.people) * self.c.super_connector_share))
        keys: list[str] = []
        index = {c.key: i for i, c in enumerate(self.data.customers)}
        for s in range(self.c.super_connectors):
            if s % 2 == 0:
                kind, value = "phone", self.phone(PHONE_BLOCK - 1 - s)
                canonical = value
            else:
                kind, value = "email", f"{self.c.prefix}team{s}@shared-inbox.example"
                canonical = value
            keys.append(f"{kind}:{canonical}")
            for customer in self.rng.sample(candidates, min(size, len(candidates))):
                i = index[customer.key]
                current = self.data.customers[i]
                updated = CustomerIn(
                    source=current.source,
                    source_id=current.source_id,
                    traits=current.traits,
                    identifiers=(*current.identifiers, IdentifierIn(kind, value)),
                    seen_at=current.seen_at,
                    message_id=current.message_id,
                )
                self.data.customers[i] = updated
                self.data.link_keys[customer.key] = (
                    *self.data.link_keys[customer.key],
                    f"{kind}:{canonical}",
                )
        self.data.super_connector_keys = tuple(keys)

    def run(self) -> Dataset:
        c = self.c
        self.data.owners = [
            OwnerIn(
                id=f"{c.prefix}owner-{i}",
                name=f"Rep {i}",
                email=f"{c.prefix}rep{i}@seller.example",
            )
            for i in range(c.owners)
        ]
        account: AccountIn | None = None
        account_contacts: list[CustomerIn] = []
        account_size = 0
        heavy: list[str] = []
        index = 0
        while len(self.data.customers) < c.records:
            person = self.person(index)
            self.data.people.append(person)
            index += 1
            in_web = self.rng.random() < c.p_web
            in_crm = self.rng.random() < c.p_crm or len(heavy) < c.heavy_people
            in_app = self.rng.random() < c.p_app
            if not (in_web or in_crm or in_app):
                in_web = True
            if in_web:
                self.web(person)
            if in_app:
                self.app(person)
            if in_crm:
                if account is None or len(account_contacts) >= account_size:
                    if account is not None:
                        self.deals(account, account_contacts)
                    account = self.account()
                    account_contacts = []
                    account_size = max(1, self.poisson(c.contacts_per_account))
                is_heavy = len(heavy) < c.heavy_people
                record = self.crm(person, account, is_heavy)
                if is_heavy:
                    heavy.append(record.key)
                account_contacts.append(record)
        if account is not None:
            self.deals(account, account_contacts)
        self.data.heavy_keys = tuple(heavy)
        self.plant_super_connectors()
        return self.data


def generate(config: GeneratorConfig) -> Dataset:
    """Generate a data set; the same config always gives the same data."""
    return _Gen(config).run()


# -- outputs -------------------------------------------------------------------------------


def write_batches(data: Dataset, size: int = 500) -> Iterator[WriteBatch]:
    """The data set as WriteBatch objects of at most `size` items, in dependency order:
    owners and accounts, customers with their memberships, deals with stage changes, then
    interactions (every referenced record exists by the time it is referenced)."""
    for i in range(0, len(data.owners), size):
        yield WriteBatch(owners=tuple(data.owners[i : i + size]))
    for i in range(0, len(data.accounts), size):
        yield WriteBatch(accounts=tuple(data.accounts[i : i + size]))
    by_customer: dict[tuple[str, str], list[MembershipIn]] = {}
    for m in data.memberships:
        by_customer.setdefault((m.source, m.source_id), []).append(m)
    for i in range(0, len(data.customers), size):
        chunk = data.customers[i : i + size]
        memberships = [m for c in chunk for m in by_customer.get((c.source, c.source_id), ())]
        yield WriteBatch(customers=tuple(chunk), memberships=tuple(memberships))
    changes: dict[str, list[StageChangeIn]] = {}
    for s in data.stage_changes:
        changes.setdefault(s.deal_id, []).append(s)
    for i in range(0, len(data.deals), size):
        chunk_deals = data.deals[i : i + size]
        stage_changes = [s for d in chunk_deals for s in changes.get(d.id, ())]
        yield WriteBatch(deals=tuple(chunk_deals), stage_changes=tuple(stage_changes))
    for i in range(0, len(data.interactions), size):
        yield WriteBatch(interactions=tuple(data.interactions[i : i + size]))


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def _anonymous_visit(customer: CustomerIn) -> bool:
    """A web session that never logged in: it sends only its track and page events."""
    return customer.source == "web" and all(i.type != "user_id" for i in customer.identifiers)


def _web_interactions(data: Dataset) -> dict[str, list[InteractionIn]]:
    found: dict[str, list[InteractionIn]] = {}
    for it in data.interactions:
        if it.source == "web":
            found.setdefault(it.customer_source_id, []).append(it)
    return found


def message_records(data: Dataset) -> tuple[list[CustomerIn], list[CustomerIn]]:
    """The records `segment_messages` writes: those its identify messages describe (one each),
    and the anonymous visitors whose track and page events create them."""
    visits = _web_interactions(data)
    identified = [c for c in data.customers if c.source != "crm" and not _anonymous_visit(c)]
    anonymous = [c for c in data.customers if _anonymous_visit(c) and c.source_id in visits]
    return identified, anonymous


def segment_messages(data: Dataset) -> Iterator[dict[str, Any]]:
    """The web and app records as the Segment spec sends them: identify and track/page messages.

    A web session's events carry its anonymousId; a login is an identify with userId, the
    anonymousId of one logged-in session, and the traits; the app identifies with its user id.
    """
    web_interactions = _web_interactions(data)
    for customer in data.customers:
        if customer.source == "crm":
            continue
        ids = {i.type: i.value for i in customer.identifiers}
        traits: dict[str, Any] = dict(customer.traits)
        if "email" in ids:
            traits["email"] = ids["email"]
        if "phone" in ids:
            traits["phone"] = ids["phone"]
        base: dict[str, Any] = {"timestamp": _iso(customer.seen_at)}
        if _anonymous_visit(customer):
            for it in web_interactions.get(customer.source_id, ()):
                message: dict[str, Any] = {
                    "type": it.type,
                    "messageId": it.message_id,
                    "anonymousId": customer.source_id,
                    "timestamp": _iso(it.occurred_at),
                    "properties": dict(it.properties),
                }
                if it.type == "page":
                    message["name"] = it.name
                else:
                    message["event"] = it.name
                yield message
            continue
        message = {
            **base,
            "type": "identify",
            "messageId": customer.message_id,
            "userId": ids.get("user_id", customer.source_id),
            "traits": traits,
        }
        if "anonymous_id" in ids:
            message["anonymousId"] = ids["anonymous_id"]
        if "device_id" in ids:
            message["context"] = {"device": {"id": ids["device_id"]}}
        yield message


SALESFORCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": ("Id", "Name", "Website", "Industry", "OwnerId"),
    "contacts": (
        "Id",
        "FirstName",
        "LastName",
        "Email",
        "Phone",
        "AccountId",
        "Title",
        "CreatedDate",
    ),
    "deals": (
        "Id",
        "Name",
        "AccountId",
        "Amount",
        "CurrencyIsoCode",
        "StageName",
        "IsClosed",
        "IsWon",
        "CreatedDate",
        "CloseDate",
        "OwnerId",
    ),
    "stage-changes": ("Id", "OpportunityId", "StageName", "CreatedDate"),
    "interactions": (
        "Id",
        "WhoId",
        "WhatId",
        "AccountId",
        "Subject",
        "TaskSubtype",
        "ActivityDate",
        "CallDurationInSeconds",
        "Description",
        "OwnerId",
    ),
}


def crm_rows(data: Dataset) -> dict[str, list[dict[str, str]]]:
    """The CRM part as the rows of Salesforce standard exports, by importer kind."""
    contacts = [c for c in data.customers if c.source == "crm"]
    account_of = {(m.source, m.source_id): m.account_id for m in data.memberships}
    rows: dict[str, list[dict[str, str]]] = {k: [] for k in SALESFORCE_COLUMNS}
    for a in data.accounts:
        rows["accounts"].append(
            {
                "Id": a.id,
                "Name": a.name or "",
                "Website": a.domain or "",
                "Industry": str(a.traits.get("industry", "")),
                "OwnerId": a.owner_id or "",
            }
        )
    for c in contacts:
        ids = {i.type: i.value for i in c.identifiers}
        rows["contacts"].append(
            {
                "Id": c.source_id,
                "FirstName": str(c.traits.get("firstName", "")),
                "LastName": str(c.traits.get("lastName", "")),
                "Email": ids.get("email", ""),
                "Phone": ids.get("phone", ""),
                "AccountId": account_of.get((c.source, c.source_id), ""),
                "Title": str(c.traits.get("title", "")),
                "CreatedDate": _iso(c.seen_at) or "",
            }
        )
    for d in data.deals:
        rows["deals"].append(
            {
                "Id": d.id,
                "Name": d.name or "",
                "AccountId": d.account_id or "",
                "Amount": f"{d.amount:.2f}" if d.amount is not None else "",
                "CurrencyIsoCode": d.currency or "",
                "StageName": d.stage or "",
                "IsClosed": "true" if d.status in ("won", "lost") else "false",
                "IsWon": "true" if d.status == "won" else "false",
                "CreatedDate": _iso(d.created_at) or "",
                "CloseDate": _iso(d.closed_at) or "",
                "OwnerId": d.owner_id or "",
            }
        )
    for n, s in enumerate(data.stage_changes):
        rows["stage-changes"].append(
            {
                "Id": f"008{n:015d}",
                "OpportunityId": s.deal_id,
                "StageName": s.to_stage,
                "CreatedDate": _iso(s.changed_at) or "",
            }
        )
    for it in data.interactions:
        if it.source != "crm":
            continue
        rows["interactions"].append(
            {
                "Id": it.id,
                "WhoId": it.customer_source_id,
                "WhatId": it.deal_id or "",
                "AccountId": it.account_id or "",
                "Subject": it.subject or "",
                "TaskSubtype": {"call": "Call", "email": "Email", "meeting": "Event"}.get(
                    it.type, "Task"
                ),
                "ActivityDate": _iso(it.occurred_at) or "",
                "CallDurationInSeconds": str(it.duration_seconds or ""),
                "Description": it.body or "",
                "OwnerId": it.owner_id or "",
            }
        )
    return rows


def write_crm_csv(data: Dataset, folder: Path) -> dict[str, Path]:
    """Write the CRM rows as one Salesforce-export CSV per importer kind; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for kind, rows in crm_rows(data).items():
        path = folder / f"{kind}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(SALESFORCE_COLUMNS[kind]))
            writer.writeheader()
            writer.writerows(rows)
        paths[kind] = path
    return paths
