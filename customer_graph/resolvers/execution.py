"""GraphQL execution with a short path for plain leaf fields.

Most fields of a response are leaves read straight off their parent object: a profile's `email`,
an interaction's `occurredAt`, an identifier's `type`. Strawberry gives such a field (no resolver,
no permission, no extension) a resolver that ignores its arguments and reads the attribute, yet
graphql-core still builds a resolve-info object and walks the generic value completion for each
one: on the profile page that was a third of the request's Python time. Here such a field, when
its value is present, is read and serialized directly, the same two calls graphql-core would
make (`getattr` through Strawberry's resolver, then the leaf type's output coercion).

Anything else goes the ordinary way: fields with a resolver or arguments, objects, lists, any
value that is absent (so a null in a non-null field gets graphql-core's own error, with its
path), and any value whose coercion fails (so its error is located as graphql-core locates it).
The decision is made once per (type, field) and kept.
"""

from __future__ import annotations

from typing import Any, Final

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    get_named_type,
    is_leaf_type,
    is_list_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path, Undefined, UndefinedType
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# Per object type: field name -> (resolver, leaf type) for plain leaves, None for the rest.
_Plan = tuple[Any, GraphQLLeafType] | None
# Keyed by the type object itself (a plain dict: a weak one costs more than the field it saves);
# schemas live as long as the process.
_PLANS: Final[dict[GraphQLObjectType, dict[str, _Plan]]] = {}


def _plan(field: GraphQLField | None) -> _Plan:
    if field is None or field.args:
        return None
    resolve = field.resolve
    if resolve is None or not getattr(resolve, "_is_default", False):
        return None  # a resolver of ours, or graphql-core's own (introspection)
    named = get_named_type(field.type)
    of_type = getattr(field.type, "of_type", None)
    if not is_leaf_type(named) or is_list_type(field.type) or is_list_type(of_type):
        return None
    assert isinstance(named, GraphQLLeafType)
    return resolve, named


class LeafFastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, with plain leaf fields read and serialized directly."""

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any | UndefinedType:
        # Strawberry passes a manager on every request; it is empty unless an extension of the
        # schema resolves fields itself, and then every field goes through it.
        manager = self.middleware_manager
        if manager is None or not manager.middlewares:
            name = field_details_list[0].node.name.value
            plans = _PLANS.get(parent_type)
            if plans is None:
                plans = _PLANS.setdefault(parent_type, {})
            try:
                plan = plans[name]
            except KeyError:
                plan = plans[name] = _plan(parent_type.fields.get(name))
            if plan is not None and not field_details_list[0].node.arguments:
                resolve, leaf = plan
                value = resolve(source, None)  # an attribute read: no side effect, no awaitable
                if value is not None:
                    try:
                        coerced = leaf.coerce_output_value(value)
                    except Exception:  # graphql-core reports it, below
                        coerced = None
                    if coerced is not None and coerced is not Undefined:
                        return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
