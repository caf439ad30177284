"""Look-ahead: what the selection of the field being resolved asks for, one level down.

A resolver that can read its children's data in the same Cypher statement as its own (the
profile page: identifiers, a timeline page, deals) asks which child fields are selected and with
which arguments, then fills the children's DataLoaders with what it read, so the child
resolvers find their data cached instead of each sending a round trip.

This walks graphql-core's field nodes directly, fragments expanded: `child_fields` one level
deep, `names_under` the names (only) of one child's whole subtree. Strawberry's
`info.selected_fields` converts the whole subtree into objects, which costs more than it saves
here. Fields under `@skip`/`@include` count as selected: reading too much is harmless, the
child resolver simply does not use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from graphql import (
    BooleanValueNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    SelectionNode,
    StringValueNode,
    ValueNode,
    VariableNode,
)

from customer_graph.resolvers.context import Info
from customer_graph.resolvers.node_cache import NodeCache

# A sentinel for an argument whose value the look-ahead does not read (lists, objects, enums).
UNKNOWN: Any = object()


def child_fields(info: Info) -> dict[str, list[dict[str, Any]]]:
    """Selected child fields of the current field: name -> arguments of each selection of it.

    An argument not written is absent; one whose value is not a scalar is `UNKNOWN`.
    """
    raw = info._raw_info
    variables = info.variable_values
    found: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for node in raw.field_nodes:
        for field in _fields(_selections(node), raw.fragments, seen):
            args = {a.name.value: _value(a.value, variables) for a in field.arguments or ()}
            found.setdefault(field.name.value, []).append(args)
    return found


def names_under(info: Info, child: str, skip_types: frozenset[str] = frozenset()) -> frozenset[str]:
    """Every field name selected at any depth under the current field's child fields named
    `child` (all their selections, fragments expanded, whatever the type): what a read for that
    child may leave out is what no name here can ask for.

    Fragments on a type of `skip_types` are left out wherever they are (a union member whose
    fields are asked for by a read of their own, say).

    The answer depends on the document alone, and documents are parsed once per query text
    (`QueryGuards`), so it is kept with the field's first node for as long as that lives."""
    nodes = info._raw_info.field_nodes
    known = _NAMES.of(nodes[0])
    key = (tuple(map(id, nodes)), child, skip_types)
    names = known.get(key)
    if names is None:
        names = known[key] = _names_under(info, child, skip_types)
    return names


# names_under's answers, kept with the field's first node (the others are of the same document).
_NAMES: Final[NodeCache[Any, frozenset[str]]] = NodeCache()


def _names_under(info: Info, child: str, skip_types: frozenset[str]) -> frozenset[str]:
    raw = info._raw_info
    seen: set[str] = set()
    stack = [
        field
        for node in raw.field_nodes
        for field in _fields(_selections(node), raw.fragments, seen)
        if field.name.value == child
    ]
    names: set[str] = set()
    seen = set()
    while stack:
        for field in _fields(_selections(stack.pop()), raw.fragments, seen, skip_types):
            names.add(field.name.value)
            stack.append(field)
    return frozenset(names)


def _selections(field: FieldNode) -> Iterable[SelectionNode]:
    return field.selection_set.selections if field.selection_set is not None else ()


def _fields(
    selections: Iterable[SelectionNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: set[str],
    skip_types: frozenset[str] = frozenset(),
) -> Iterator[FieldNode]:
    """The fields of one level of a selection, inline fragments and fragment spreads expanded
    (each named fragment once per walk: `seen`) unless they are on a type of `skip_types`."""
    for selection in selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            if condition is None or condition.name.value not in skip_types:
                yield from _fields(selection.selection_set.selections, fragments, seen, skip_types)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if (
                fragment is not None
                and name not in seen
                and fragment.type_condition.name.value not in skip_types
            ):
                seen.add(name)
                yield from _fields(fragment.selection_set.selections, fragments, seen, skip_types)


def _value(node: ValueNode, variables: Mapping[str, Any]) -> Any:
    if isinstance(node, VariableNode):
        return variables.get(node.name.value)
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, StringValueNode):
        return node.value
    if isinstance(node, NullValueNode):
        return None
    if isinstance(node, BooleanValueNode):
        return node.value
    if isinstance(node, FloatValueNode):
        return float(node.value)
    return UNKNOWN
