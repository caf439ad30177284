"""Fields that change something wait for their key to be confirmed before they run."""

from __future__ import annotations

from customer_graph.resolvers.permissions import ConfirmedScopePermission
from customer_graph.schema.root import Mutation


def test_every_mutation_waits_for_its_key_to_be_confirmed() -> None:
    """A request with a key this process has seen runs while the graph checks the key again
    (security.py); only permissions that await that check may guard a write."""
    fields = Mutation.__strawberry_definition__.fields  # type: ignore[attr-defined]
    assert fields
    unconfirmed = [
        f.python_name
        for f in fields
        if not any(issubclass(p, ConfirmedScopePermission) for p in f.permission_classes)
    ]
    assert unconfirmed == []
