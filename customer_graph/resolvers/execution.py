"""GraphQL execution with a short path for plain leaf fields and for objects.

Most fields of a response are leaves read straight off their parent object: a profile's `email`,
an interaction's `occurredAt`, an identifier's `type` or `sources`. Strawberry gives such a field
(no resolver, no arguments, no permission, no extension) a resolver that only reads the
attribute, yet graphql-core still makes a Path, a resolve-info object and a walk through its
generic value completion for each one. Here, when an object's fields are executed, such a field
whose value is present is read and serialized directly, with the same two calls graphql-core
would make (Strawberry's resolver, reduced to the attribute read it makes when the resolver is
Strawberry's default `getattr`, then the leaf type's output coercion, item by item for a list of
leaves), and `__typename` is answered with the object's type name as graphql-core's own
resolver answers it; graphql-core executes the other fields, and the two parts are put back in
the order the query asked for. On the profile page (about 300 fields, more than half of them
plain leaves) this took 9% off the API's CPU time per request.

Objects take a short path too. A value of an object type, of a union, or a list of them with
non-null items (a resolver's answer, or a plain field such as a connection's `edges` or an
interaction's `owner`) has its sub-selection executed at once, without graphql-core's layers of
generic completion, once the object type of every item is known: the union's `resolve_type` and
the type's `is_type_of` are asked first, as graphql-core asks them, before anything is executed.
Errors are handled at the same paths as graphql-core handles them, and awaited parts are
gathered as it gathers them. On the profile page this makes 9% fewer Python calls per request.

A plain field holding null is answered null on the short path too when its type is nullable,
as graphql-core completes it: on the profile page that is about fifteen fields (a call's missing
subject, a page view's channel) that each took graphql-core's whole field execution.

Anything else goes the ordinary way: fields with a resolver or arguments (their answers aside),
interfaces, lists of lists, lists whose items may be null, any null of a non-null type or list
holding a null item (so a null in a non-null position gets graphql-core's own error, with its
path), any value whose type is not found without awaiting, and any value whose coercion fails (so
its error is located as graphql-core locates it). The decision is made once per (type, field)
and kept.

Two more things are done once instead of per request. An object type's sub-fields are collected
once per document when no directive or fragment argument can make them depend on variables
(documents are parsed once per query text), and kept with the document. A field whose resolver
takes no GraphQL arguments and has no extension calls it directly (`direct_resolvers`, run when
the schema is built), without Strawberry's layers for arguments and extensions it would not use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any, Final

import strawberry
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from graphql.execution.collect_fields import (
    CollectedFields,
    FieldDetailsList,
    FragmentDetails,
    GroupedFieldSet,
)
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver
from strawberry.types.info import Info

from customer_graph.resolvers.node_cache import NodeCache

# Per object type: field name -> (reader, leaf type, a list of them?, the field) for plain
# leaves and lists of leaves, (reader, None, False, the field) for plain objects, lists of
# objects and unions; None for the rest. The reader does what the field's resolver does.
_Plan = tuple[Callable[[Any], Any], GraphQLLeafType | None, bool, GraphQLField] | None
# Keyed by the type object itself (a plain dict: a weak one costs more than the field it saves);
# schemas live as long as the process.
_PLANS: Final[dict[GraphQLObjectType, dict[str, _Plan]]] = {}


def _plan(field: GraphQLField | None) -> _Plan:
    if field is None or field.args:
        return None
    resolve = field.resolve
    if resolve is None or not getattr(resolve, "_is_default", False):
        return None  # a resolver of ours, or graphql-core's own (introspection)
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    # Strawberry marks any field without a resolver of its own as default, permission classes
    # and other extensions included: only a basic field (neither) is a plain read.
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return None
    read = _reader(definition, resolve)
    named = get_named_type(field.type)
    if isinstance(named, GraphQLObjectType | GraphQLUnionType):
        return read, None, False, field
    if not isinstance(named, GraphQLLeafType):
        return None
    outer = get_nullable_type(field.type)
    if not is_list_type(outer):
        return read, named, False, field
    inner = get_nullable_type(outer.of_type)
    return None if is_list_type(inner) else (read, named, True, field)


def _reader(definition: StrawberryField, resolve: Any) -> Callable[[Any], Any]:
    """What Strawberry's resolver of a basic field does with a source: a bare attribute read
    when its default resolver is `getattr` (Strawberry's default), without the resolver's
    layers."""
    if definition.default_resolver is getattr:
        return attrgetter(definition.python_name)
    return lambda source: resolve(source, None)


def _coerce_list(leaf: GraphQLLeafType, value: Any) -> list[Any] | None:
    """Each item coerced, or None when any item needs graphql-core's own handling."""
    if not isinstance(value, list | tuple):
        return None
    coerced = []
    for item in value:
        if item is None:
            return None
        try:
            out = leaf.coerce_output_value(item)
        except Exception:  # graphql-core reports it, in the ordinary way
            return None
        if out is None or out is Undefined:
            return None
        coerced.append(out)
    return coerced


_ORDINARY: Final = object()  # "complete this value graphql-core's own way"

# Per operation (a parsed document's): whether its collection is static (key `_STATIC`), and
# its sub-fields collected per (object type, ids of the field nodes), with the list collected
# from. Nodes hash by content, so ids are the key.
_COLLECTED: Final[NodeCache[Any, Any]] = NodeCache()
_STATIC: Final = object()


class LeafFastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, with plain leaf fields read and serialized directly and
    objects completed without graphql-core's generic layers."""

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if result is not None and result is not Undefined and not isinstance(result, Exception):
            completed = self._complete_objects(
                return_type, field_details_list, info, path, result, position_context
            )
            if completed is not _ORDINARY:
                return completed
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _complete_objects(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """An object, or a list of objects none of which is null, with the types they resolve
        to known before any is executed; _ORDINARY for anything else."""
        nullable = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        if isinstance(nullable, GraphQLList):
            item_type = nullable.of_type
            if (
                not isinstance(item_type, GraphQLNonNull)
                or not isinstance(result, list | tuple)
                or field_details_list[0].node.directives  # @stream, for one
            ):
                return _ORDINARY
            named = item_type.of_type
            if not isinstance(named, GraphQLObjectType | GraphQLUnionType):
                return _ORDINARY
            runtime_types = []
            for item in result:
                runtime = self._runtime_type(named, item, info)
                if runtime is None:
                    return _ORDINARY
                runtime_types.append(runtime)
            return self._complete_list(
                runtime_types, field_details_list, path, result, position_context
            )
        if isinstance(nullable, GraphQLObjectType | GraphQLUnionType):
            runtime = self._runtime_type(nullable, result, info)
            if runtime is None:
                return _ORDINARY
            return self.collect_and_execute_subfields(
                runtime, field_details_list, path, result, position_context
            )
        return _ORDINARY

    def _runtime_type(
        self, named: GraphQLObjectType | GraphQLUnionType, value: Any, info: GraphQLResolveInfo[Any]
    ) -> GraphQLObjectType | None:
        """The object type `value` completes as, if it is found without awaiting and without
        error; None leaves the value to graphql-core, which reports what is wrong."""
        if value is None:
            return None
        runtime: Any = named
        try:
            if isinstance(named, GraphQLUnionType):
                resolve_type = named.resolve_type or self.type_resolver
                name = resolve_type(value, info, named)
                if not isinstance(name, str):
                    _dispose(name)
                    return None
                runtime = self.schema.get_type(name)
                if not isinstance(runtime, GraphQLObjectType) or not self.schema.is_sub_type(
                    named, runtime
                ):
                    return None
            if runtime.is_type_of is not None:
                matches = runtime.is_type_of(value, info)
                if matches is not True:
                    _dispose(matches)
                    return None
        except Exception:  # graphql-core reports it, in the ordinary way
            return None
        return runtime  # type: ignore[no-any-return]

    def _complete_list(
        self,
        runtime_types: Sequence[GraphQLObjectType],
        field_details_list: FieldDetailsList,
        path: Path,
        items: Sequence[Any],
        position_context: Any,
    ) -> Any:
        completed: list[Any] = []
        pending: list[int] = []
        try:
            for index, (runtime, item) in enumerate(zip(runtime_types, items, strict=True)):
                value = self.collect_and_execute_subfields(
                    runtime, field_details_list, path.add_key(index, None), item, position_context
                )
                if self.is_awaitable(value):
                    pending.append(index)
                completed.append(value)
        except Exception:
            # As graphql-core does: a sibling still running is settled, not orphaned.
            if pending:
                self.settle_in_background([completed[i] for i in pending])
            raise
        if not pending:
            return completed

        async def gathered() -> list[Any]:
            if len(pending) == 1:
                completed[pending[0]] = await completed[pending[0]]
            else:
                values = await gather_with_cancel(*(completed[i] for i in pending))
                for index, value in zip(pending, values, strict=True):
                    completed[index] = value
            return completed

        return gathered()

    def collect_subfields(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> CollectedFields:
        """graphql-core's memo for this request, then one kept with the operation's document
        for every request that sends it, when its collection depends on the document alone."""
        memo = self._relevant_sub_fields
        cached = memo.get((return_type, id(field_details_list)))
        if cached is not None:
            return cached[1]
        kept = _COLLECTED.of(self.operation)
        static = kept.get(_STATIC)
        if static is None:
            static = kept[_STATIC] = _static(self.operation, self.fragments)
        if static is False:
            return super().collect_subfields(return_type, field_details_list)
        # The key's nodes are the document's own, and the stored list holds them: their ids
        # cannot be reused while the entry lives.
        key = (return_type, *(id(details.node) for details in field_details_list))
        found: tuple[FieldDetailsList, CollectedFields] | None = kept.get(key)
        if found is None:
            collected = super().collect_subfields(return_type, field_details_list)
            kept[key] = (field_details_list, collected)
            return collected
        collected = found[1]
        memo[(return_type, id(field_details_list))] = (field_details_list, collected)
        return collected

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        # Strawberry passes a manager on every request; it is empty unless an extension of the
        # schema resolves fields itself, and then every field goes through it.
        manager = self.middleware_manager
        if manager is not None and manager.middlewares:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        plans = _PLANS.get(parent_type)
        if plans is None:
            plans = _PLANS.setdefault(parent_type, {})
        leaves: dict[str, Any] = {}
        rest: GroupedFieldSet = {}
        pending: list[str] = []  # objects of `leaves` still being completed
        try:
            for response_name, field_details_list in grouped_field_set.items():
                node = field_details_list[0].node
                name = node.name.value
                if name == "__typename":  # what graphql-core's own resolver answers: a name
                    leaves[response_name] = parent_type.name
                    continue
                try:
                    plan = plans[name]
                except KeyError:
                    plan = plans[name] = _plan(parent_type.fields.get(name))
                if plan is not None and not node.arguments:
                    read, leaf, many, field = plan
                    try:
                        value = read(source_value)  # an attribute read: no side effect
                    except Exception:  # not the object its type says: graphql-core reports it
                        rest[response_name] = field_details_list
                        continue
                    if value is None:
                        if not isinstance(field.type, GraphQLNonNull):
                            # graphql-core completes a null of a nullable type as null
                            leaves[response_name] = None
                            continue
                    else:
                        coerced: Any
                        if leaf is None:
                            coerced = self._complete_field(
                                parent_type,
                                field,
                                field_details_list,
                                Path(path, response_name, parent_type.name),
                                value,
                                position_context,
                            )
                            if coerced is not _ORDINARY:
                                leaves[response_name] = coerced
                                if self.is_awaitable(coerced):
                                    pending.append(response_name)
                                continue
                        elif many:
                            coerced = _coerce_list(leaf, value)
                        else:
                            try:
                                coerced = leaf.coerce_output_value(value)
                            except Exception:  # graphql-core reports it, in the ordinary way
                                coerced = None
                        if coerced is not None and coerced is not Undefined:
                            leaves[response_name] = coerced
                            continue
                rest[response_name] = field_details_list
            others = (
                super().execute_fields(parent_type, source_value, path, rest, position_context)
                if rest
                else {}
            )
        except Exception:
            # As graphql-core does: an object still being completed is settled, not orphaned.
            if pending:
                self.settle_in_background([leaves[k] for k in pending])
            raise
        if not leaves:
            return others
        if not pending and isinstance(others, dict):
            return _in_order(grouped_field_set, leaves, others) if rest else leaves

        async def merged() -> dict[str, Any]:
            waiting = [leaves[k] for k in pending]
            if not isinstance(others, dict):
                waiting.append(others)
            values = await gather_with_cancel(*waiting) if len(waiting) > 1 else [await waiting[0]]
            for k, value in zip(pending, values, strict=False):
                leaves[k] = value
            rest_values = others if isinstance(others, dict) else values[-1]
            return _in_order(grouped_field_set, leaves, rest_values)

        return merged()

    def _complete_field(
        self,
        parent_type: GraphQLObjectType,
        field: GraphQLField,
        field_details_list: FieldDetailsList,
        path: Path,
        value: Any,
        position_context: Any,
    ) -> Any:
        """A plain field holding an object, a list of objects or a union member, completed as
        graphql-core's `execute_field` would, its errors handled as there; _ORDINARY when the
        value needs graphql-core's own completion."""
        nodes = [details.node for details in field_details_list]
        info = self.build_resolve_info(field, nodes, parent_type, path)
        try:
            completed = self._complete_objects(
                field.type, field_details_list, info, path, value, position_context
            )
        except Exception as error:  # raised again when the field is non-null
            self.handle_field_error(error, field.type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._settled(completed, field.type, field_details_list, path)
        return completed

    async def _settled(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as error:
            self.handle_field_error(error, return_type, field_details_list, path)
            return None


def direct_resolvers(schema: strawberry.Schema) -> int:
    """Fields whose resolver takes no GraphQL arguments and has no extension (no permission)
    call it directly: Strawberry's layers would convert no arguments, run no extension and
    handle no exception, yet cost a dozen calls per field. The function gets what Strawberry
    would give it (the source as `self`, `root` or the `Parent` parameter, an `Info` of the
    schema's class); its answer, value or awaitable, goes to graphql-core as before. Returns
    how many fields call their resolver directly."""
    converter = schema.schema_converter
    info_class = schema.config.info_class
    count = 0
    for named in schema._schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for field in named.fields.values():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if (
                not isinstance(definition, StrawberryField)
                or definition.base_resolver is None
                or definition.extensions
                or definition.arguments
                or field.args
                or definition.is_subscription
                or converter._get_field_exception_handlers(definition)
            ):
                continue
            direct = _direct(definition, definition.base_resolver, info_class)
            if direct is not None:
                field.resolve = direct
                count += 1
    return count


def _direct(
    definition: StrawberryField, resolver: StrawberryResolver[Any], info_class: type[Info]
) -> Callable[..., Any] | None:
    function = resolver.wrapped_func
    if not callable(function):  # Strawberry's own resolver reports it when it is asked
        return None
    by_self = resolver.self_parameter is not None
    source_names = [
        parameter.name
        for parameter in (resolver.parent_parameter, resolver.root_parameter)
        if parameter is not None and parameter.name is not None
    ]
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None

    def resolve(source: Any, info: GraphQLResolveInfo[Any], **_: Any) -> Any:
        kwargs = dict.fromkeys(source_names, source)
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=info, _field=definition)
        return function(source, **kwargs) if by_self else function(**kwargs)

    return resolve


def _static(operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDetails]) -> bool:
    """Whether collecting the operation's fields depends on its document alone: no directive
    (`@skip`, `@include` and `@defer` read variables) and no fragment arguments anywhere."""
    stack: list[SelectionSetNode] = [operation.selection_set]
    for details in fragments.values():
        if details.definition.variable_definitions:
            return False
        stack.append(details.definition.selection_set)
    while stack:
        for selection in stack.pop().selections:
            if selection.directives:
                return False
            if isinstance(selection, FragmentSpreadNode):
                if getattr(selection, "arguments", None):
                    return False
            elif (
                isinstance(selection, FieldNode | InlineFragmentNode)
                and selection.selection_set is not None
            ):
                stack.append(selection.selection_set)
    return True


def _dispose(value: Any) -> None:
    """Close a coroutine that will not be awaited (graphql-core makes its own)."""
    close = getattr(value, "close", None)
    if callable(close) and not isinstance(value, str):
        close()


def _in_order(
    grouped_field_set: GroupedFieldSet, leaves: dict[str, Any], others: dict[str, Any]
) -> dict[str, Any]:
    """Both parts in the order the query asked for them (fields that were skipped are absent)."""
    merged: dict[str, Any] = {}
    for name in grouped_field_set:
        if name in leaves:
            merged[name] = leaves[name]
        elif name in others:
            merged[name] = others[name]
    return merged
