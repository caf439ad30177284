"""The subscription fields: `profileUpdated` pushes a profile each time a write touches it."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Final

import strawberry

from customer_graph.pubsub import BROKER
from customer_graph.resolvers.context import Info
from customer_graph.resolvers.errors import ApiError
from customer_graph.schema.node import raw_id_for
from customer_graph.schema.profile import Profile, load_profile

NOT_FOUND: Final = "NOT_FOUND"


async def profile_updated(info: Info, id: strawberry.ID) -> AsyncGenerator[Profile, None]:
    """The profile, re-read after every committed write that touches it: a merge, a new
    interaction, a trait change, a split. If it is merged into another profile, the stream
    follows the survivor (the pushed profile's id changes); if it is deleted, the stream ends."""
    raw = raw_id_for("Profile", id)
    profile = await load_profile(info, raw)
    if raw is None or profile is None:
        raise ApiError("No profile has this id.", NOT_FOUND)
    with BROKER.subscribe() as subscription:
        subscription.watch(raw)
        subscription.watch(profile.profile_id)
        while True:
            await subscription.changed()
            # Each push reads committed data anew, from the leader.
            info.context.reader.read_your_writes()
            info.context.fresh_loaders()
            current = await load_profile(info, profile.profile_id)
            if current is None:
                return
            subscription.watch(current.profile_id)
            profile = current
            yield current
