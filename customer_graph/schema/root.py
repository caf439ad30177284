"""The root Query, Mutation and Subscription types, and the Schema built from settings."""

from __future__ import annotations

from functools import partial

import strawberry
from strawberry.schema.config import StrawberryConfig

from customer_graph import __version__
from customer_graph.resolvers import mutations, privacy, queries
from customer_graph.resolvers.execution import LeafFastExecutionContext, direct_resolvers
from customer_graph.resolvers.guards import (
    ErrorPolicy,
    GuardedSchema,
    Limits,
    QueryGuards,
    ValidatedDocuments,
)
from customer_graph.resolvers.permissions import AdminScope, ReadScope, WriteScope
from customer_graph.schema.account import Account
from customer_graph.schema.deal import Deal
from customer_graph.schema.interaction import Interaction
from customer_graph.schema.mutations import (
    BlockIdentifierPayload,
    MoveDealStagePayload,
    RecordInteractionPayload,
    UnmergeRecordPayload,
    UpsertCustomerPayload,
    UpsertDealPayload,
)
from customer_graph.schema.node import Node
from customer_graph.schema.owner import Owner
from customer_graph.schema.privacy import AuditEntryConnection, DeleteProfilePayload
from customer_graph.schema.profile import CustomerRecord, Profile, ProfileConnection
from customer_graph.schema.scalars import JSON, SCALAR_MAP
from customer_graph.schema.subscriptions import Subscription
from customer_graph.settings import Settings, get_settings


def resolve_version() -> str:
    return __version__


@strawberry.type
class Query:
    node: Node | None = strawberry.field(
        resolver=queries.node,
        description="Any object by its global id.",
        permission_classes=[ReadScope],
    )
    nodes: list[Node | None] = strawberry.field(
        resolver=queries.nodes,
        description="Objects by global ids (at most 100), in order.",
        permission_classes=[ReadScope],
    )
    profile: Profile | None = strawberry.field(
        resolver=queries.profile,
        description="A profile by id; a merged-away id gives the profile it was merged into.",
        permission_classes=[ReadScope],
    )
    profile_by_identifier: Profile | None = strawberry.field(
        resolver=queries.profile_by_identifier,
        description="The profile holding an identifier; the value is normalized like ingestion.",
        permission_classes=[ReadScope],
    )
    search_profiles: ProfileConnection = strawberry.field(
        resolver=queries.search_profiles,
        description="Full-text search over names, emails and companies; best matches first.",
        permission_classes=[ReadScope],
    )
    deal: Deal | None = strawberry.field(resolver=queries.deal, permission_classes=[ReadScope])
    account: Account | None = strawberry.field(
        resolver=queries.account, permission_classes=[ReadScope]
    )
    export_profile: JSON | None = strawberry.field(
        resolver=privacy.export_profile,
        description="Everything held on one person (right of access), as JSON. Admin only.",
        permission_classes=[AdminScope],
    )
    audit_log: AuditEntryConnection = strawberry.field(
        resolver=privacy.audit_log,
        description="Admin actions (keys, blocks, unmerges, erasures), newest first. Admin only.",
        permission_classes=[AdminScope],
    )
    version: str = strawberry.field(
        resolver=resolve_version, description="The running service's version."
    )


@strawberry.type
class Mutation:
    upsert_customer: UpsertCustomerPayload = strawberry.field(
        resolver=mutations.upsert_customer,
        description="Create or update one source record; identities resolve as it is written.",
        permission_classes=[WriteScope],
    )
    record_interaction: RecordInteractionPayload = strawberry.field(
        resolver=mutations.record_interaction,
        description="Record a call, email, meeting, note, task or event of a record.",
        permission_classes=[WriteScope],
    )
    upsert_deal: UpsertDealPayload = strawberry.field(
        resolver=mutations.upsert_deal,
        description="Create or update a deal by its CRM id.",
        permission_classes=[WriteScope],
    )
    move_deal_stage: MoveDealStagePayload = strawberry.field(
        resolver=mutations.move_deal_stage,
        description="Move a deal to a stage; its stage history keeps the move.",
        permission_classes=[WriteScope],
    )
    block_identifier: BlockIdentifierPayload = strawberry.field(
        resolver=mutations.block_identifier,
        description="Block an identifier: it links nothing again; profiles it joined split.",
        permission_classes=[AdminScope],
    )
    unmerge_record: UnmergeRecordPayload = strawberry.field(
        resolver=mutations.unmerge_record,
        description="Take a record out of its profile into a profile of its own.",
        permission_classes=[AdminScope],
    )
    delete_profile: DeleteProfilePayload = strawberry.field(
        resolver=privacy.delete_profile,
        description="Erase a person: records, identifiers, activity; suppress their identifiers.",
        permission_classes=[AdminScope],
    )


# Types reachable only through `node` (an interface) must be named to the schema.
NODE_TYPES = [Profile, CustomerRecord, Deal, Account, Interaction, Owner]


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or get_settings()
    limits = Limits.from_settings(settings)
    built = GuardedSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=NODE_TYPES,
        config=StrawberryConfig(
            scalar_map=SCALAR_MAP, disable_field_suggestions=not settings.introspection_enabled
        ),
        # Parsing and the document-only validation rules are cached per query text; the
        # guards that read variables run every time.
        extensions=[partial(QueryGuards, limits, ValidatedDocuments()), ErrorPolicy],
        execution_context_class=LeafFastExecutionContext,
    )
    direct_resolvers(built)
    return built


schema = build_schema()
