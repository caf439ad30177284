"""Look-ahead: what the selection of the field being resolved asks for, one level down.

A resolver that can read its children's data in the same Cypher statement as its own (the
profile page: identifiers, a timeline page, deals) asks which child fields are selected and with
which arguments, then fills the children's DataLoaders with what it read, so the child
resolvers find their data cached instead of each sending a round trip.

This walks graphql-core's field nodes directly (fragments expanded, one level deep only):
strawberry's `info.selected_fields` converts the whole subtree, which costs more than it saves
here. Fields under `@skip`/`@include` count as selected: reading too much is harmless, the
child resolver simply does not use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
        if node.selection_set is not None:
            _walk(node.selection_set.selections, raw.fragments, variables, found, seen)
    return found


def names_under(info: Info, child: str) -> frozenset[str]:
    """Every field name selected at any depth under the current field's child fields named
    `child` (all their selections, fragments expanded, whatever the type): what a read for that
    child may leave out is what no name here can ask for."""
    raw = info._raw_info
    children: list[FieldNode] = []
    seen: set[str] = set()
    for node in raw.field_nodes:
        if node.selection_set is not None:
            _fields_named(node.selection_set.selections, raw.fragments, child, children, seen)
    names: set[str] = set()
    seen.clear()
    for field in children:
        if field.selection_set is not None:
            _all_names(field.selection_set.selections, raw.fragments, names, seen)
    return frozenset(names)


def _fields_named(
    selections: Iterable[SelectionNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    name: str,
    found: list[FieldNode],
    seen: set[str],
) -> None:
    for selection in selections:
        if isinstance(selection, FieldNode):
            if selection.name.value == name:
                found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            _fields_named(selection.selection_set.selections, fragments, name, found, seen)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None and selection.name.value not in seen:
                seen.add(selection.name.value)
                _fields_named(fragment.selection_set.selections, fragments, name, found, seen)


def _all_names(
    selections: Iterable[SelectionNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    names: set[str],
    seen: set[str],
) -> None:
    for selection in selections:
        if isinstance(selection, FieldNode):
            names.add(selection.name.value)
            if selection.selection_set is not None:
                _all_names(selection.selection_set.selections, fragments, names, seen)
        elif isinstance(selection, InlineFragmentNode):
            _all_names(selection.selection_set.selections, fragments, names, seen)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None and selection.name.value not in seen:
                seen.add(selection.name.value)
                _all_names(fragment.selection_set.selections, fragments, names, seen)


def _walk(
    selections: Iterable[SelectionNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    found: dict[str, list[dict[str, Any]]],
    seen: set[str],
) -> None:
    for selection in selections:
        if isinstance(selection, FieldNode):
            args = {a.name.value: _value(a.value, variables) for a in selection.arguments or ()}
            found.setdefault(selection.name.value, []).append(args)
        elif isinstance(selection, InlineFragmentNode):
            _walk(selection.selection_set.selections, fragments, variables, found, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                seen.add(name)
                _walk(fragment.selection_set.selections, fragments, variables, found, seen)


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
