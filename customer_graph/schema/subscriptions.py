"""The root Subscription type (graphql-transport-ws on /graphql)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from customer_graph.resolvers import subscriptions
from customer_graph.resolvers.permissions import ReadScope
from customer_graph.schema.profile import Profile


@strawberry.type
class Subscription:
    profile_updated: AsyncGenerator[Profile, None] = strawberry.subscription(
        resolver=subscriptions.profile_updated,
        description=(
            "Pushes the profile after every write that touches it (merge, interaction, trait "
            "change, split); a merged-away id follows its survivor."
        ),
        permission_classes=[ReadScope],
    )
