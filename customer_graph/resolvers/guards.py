"""Guards around every operation: document limits, query cost, and what errors may say.

Before anything runs, one walk over the operation (fragments expanded, cycles cut) checks:
- depth (introspection fields excepted, so GraphiQL's schema query passes), aliases, tokens;
- page sizes (`first` from 0 to 100) and input lists (`ids`, at most 100);
- a cost: the number of objects the query may return, where a connection multiplies its
  selection by `first` and a plain list by an estimate. The cost is refused above a limit and
  reported in `extensions.cost` either way, with the Cypher round trips the request took.
A refused operation runs no resolver and so no Cypher.

Errors: expected ones (`ApiError`, parse and validation errors) keep their message and get a
machine-readable `extensions.code`; anything else is masked as "Unexpected error." and logged by
type and stack only (no message, which could hold data), so no Cypher, stack trace or PII ever
reaches a response.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    parse,
    value_from_ast_untyped,
)
from graphql.validation import NoSchemaIntrospectionCustomRule, ValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext, StreamExecutionResult

from customer_graph.graph.errors import GraphUnavailableError
from customer_graph.resolvers.errors import (
    BAD_USER_INPUT,
    INPUT_LIST_TOO_LONG,
    INTERNAL_SERVER_ERROR,
    PAGE_SIZE_TOO_LARGE,
    SERVICE_UNAVAILABLE,
    ApiError,
)
from customer_graph.resolvers.paging import MAX_INPUT_LIST, MAX_PAGE_SIZE
from customer_graph.settings import Settings

log = logging.getLogger(__name__)

MAX_DEPTH_EXCEEDED: Final = "MAX_DEPTH_EXCEEDED"
TOO_MANY_ALIASES: Final = "TOO_MANY_ALIASES"
TOO_MANY_TOKENS: Final = "TOO_MANY_TOKENS"
QUERY_TOO_COSTLY: Final = "QUERY_TOO_COSTLY"
QUERY_TOO_COMPLEX: Final = "QUERY_TOO_COMPLEX"
INTROSPECTION_DISABLED: Final = "INTROSPECTION_DISABLED"
GRAPHQL_PARSE_FAILED: Final = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED: Final = "GRAPHQL_VALIDATION_FAILED"

UNEXPECTED_MESSAGE: Final = "Unexpected error."
UNAVAILABLE_MESSAGE: Final = "The graph database is unavailable; retry later."

# What a list without `first` is assumed to hold, for the cost (identifiers, deals, records…).
LIST_ESTIMATE: Final = 10
# Selections visited at most by the analysis: a fragment spread many times is walked each time,
# so a document can ask for far more work than its size suggests.
MAX_WALK_STEPS: Final = 20_000


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5_000
    max_cost: int = 25_000
    introspection: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_depth=settings.graphql_max_depth,
            max_aliases=settings.graphql_max_aliases,
            max_tokens=settings.graphql_max_tokens,
            max_cost=settings.graphql_max_cost,
            introspection=settings.introspection_enabled,
        )


def _error(message: str, code: str, node: Node | None = None) -> GraphQLError:
    return GraphQLError(message, nodes=node, extensions={"code": code})


# ---------------------------------------------------------------------------------------------
# The analysis of one operation


class Analysis:
    """Depth, cost and argument checks of the operation that is about to run."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        limits: Limits,
    ) -> None:
        self.schema = schema
        self.limits = limits
        self.errors: list[GraphQLError] = []
        self.cost = 0
        self.depth = 0
        # Variables the checks read: which ones is a property of the document alone.
        self.variables_read: set[str] = set()
        self._steps = 0
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        operation = _operation(document, operation_name)
        if operation is None:
            return  # graphql-core reports the missing or ambiguous operation itself
        self._variables = _variable_values(operation, variables or {})
        root = _root_type(schema, operation)
        if root is None:
            return
        try:
            self._walk(root, operation.selection_set, 1, 0, frozenset())
        except _TooComplex:
            self.errors.append(
                _error("The query is too complex to analyse; simplify it.", QUERY_TOO_COMPLEX)
            )
            return
        if self.depth > limits.max_depth:
            self.errors.append(
                _error(
                    f"The query is {self.depth} levels deep; at most {limits.max_depth} allowed.",
                    MAX_DEPTH_EXCEEDED,
                    operation,
                )
            )
        elif self.cost > limits.max_cost:
            self.errors.append(
                _error(
                    f"The query may return {self.cost} objects; at most {limits.max_cost} "
                    "allowed. Ask for smaller pages or fewer nested lists.",
                    QUERY_TOO_COSTLY,
                    operation,
                )
            )

    def _walk(
        self,
        parent: Any,
        selection_set: SelectionSetNode,
        multiplier: int,
        depth: int,
        fragments_seen: frozenset[str],
    ) -> None:
        for selection in selection_set.selections:
            self._steps += 1
            if self._steps > MAX_WALK_STEPS:
                raise _TooComplex
            if isinstance(selection, FieldNode):
                self._field(parent, selection, multiplier, depth, fragments_seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                self._walk(target, selection.selection_set, multiplier, depth, fragments_seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self._fragments.get(name)
                if fragment is None or name in fragments_seen:
                    continue  # unknown or circular: validation reports it
                target = self.schema.get_type(fragment.type_condition.name.value)
                self._walk(
                    target, fragment.selection_set, multiplier, depth, fragments_seen | {name}
                )

    def _field(
        self,
        parent: Any,
        node: FieldNode,
        multiplier: int,
        depth: int,
        fragments_seen: frozenset[str],
    ) -> None:
        name = node.name.value
        if name.startswith("__"):
            return  # introspection: answered from memory, and GraphiQL's query is deep
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return
        definition = parent.fields.get(name)
        if definition is None:
            return  # validation reports unknown fields
        args = {a.name.value: a.value for a in node.arguments or ()}
        first = self._int(args.get("first"))
        if first is not None and not 0 <= first <= MAX_PAGE_SIZE:
            code = PAGE_SIZE_TOO_LARGE if first > MAX_PAGE_SIZE else BAD_USER_INPUT
            self.errors.append(
                _error(
                    f"`first` of `{name}` is {first}; it must be from 0 to {MAX_PAGE_SIZE}. "
                    "Page with `after`.",
                    code,
                    node,
                )
            )
        ids = self._list_length(args.get("ids"))
        if ids is not None and ids > MAX_INPUT_LIST:
            self.errors.append(
                _error(
                    f"`ids` of `{name}` has {ids} values; at most {MAX_INPUT_LIST} allowed.",
                    INPUT_LIST_TOO_LONG,
                    node,
                )
            )
        if node.selection_set is None:
            return
        self.depth = max(self.depth, depth + 1)
        returns = definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else None
        is_list = isinstance(returns or definition.type, GraphQLList)
        if "first" in definition.args:
            size = first if first is not None else self._default_first(definition.args["first"])
            self.cost += multiplier
            child = multiplier * max(min(size, MAX_PAGE_SIZE), 0)
        elif is_list:
            if parent.name.endswith("Connection") and name in ("edges", "nodes"):
                size = 1  # the connection's `first` already counted them
            else:
                size = ids if ids is not None else LIST_ESTIMATE
            child = multiplier * size
            self.cost += child
        else:
            child = multiplier
            self.cost += multiplier
        target = get_named_type(definition.type)
        self._walk(target, node.selection_set, child, depth + 1, fragments_seen)

    def _int(self, value: ValueNode | None) -> int | None:
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, VariableNode):
            self.variables_read.add(value.name.value)
            found = self._variables.get(value.name.value)
            return found if isinstance(found, int) and not isinstance(found, bool) else None
        return None

    def _list_length(self, value: ValueNode | None) -> int | None:
        if isinstance(value, ListValueNode):
            return len(value.values)
        if isinstance(value, VariableNode):
            self.variables_read.add(value.name.value)
            found = self._variables.get(value.name.value)
            return len(found) if isinstance(found, list) else None
        return None

    @staticmethod
    def _default_first(arg: Any) -> int:
        default = arg.default_value
        return default if isinstance(default, int) else LIST_ESTIMATE


class _TooComplex(Exception):
    pass


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        return next((o for o in operations if o.name and o.name.value == name), None)
    return operations[0] if len(operations) == 1 else None


def _root_type(schema: GraphQLSchema, operation: OperationDefinitionNode) -> Any:
    return schema.get_root_type(operation.operation)


def _variable_values(
    operation: OperationDefinitionNode, provided: Mapping[str, Any]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name in provided:
            values[name] = provided[name]
        elif definition.default_value is not None:
            values[name] = value_from_ast_untyped(definition.default_value)
    return values


def _count_aliases(document: DocumentNode) -> int:
    count = 0
    stack: list[Any] = list(document.definitions)
    while stack:
        node = stack.pop()
        if isinstance(node, FieldNode) and node.alias is not None:
            count += 1
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return count


# ---------------------------------------------------------------------------------------------
# The extensions


@lru_cache(maxsize=512)
def _parse(text: str, max_tokens: int) -> DocumentNode:
    """Documents by query text: clients send the same few documents again and again."""
    return parse(text, max_tokens=max_tokens)


@dataclass(frozen=True, slots=True)
class Figures:
    """What the analysis of one operation found: reported in `extensions.cost`."""

    cost: int
    depth: int


# Analyses kept per document: one per operation and shape of the variables the checks read.
MAX_FIGURES_PER_DOCUMENT: Final = 64


class KnownDocument:
    """What the guards learnt about a validated document, to skip work on its next request."""

    __slots__ = ("aliases", "figures", "reads")

    def __init__(self) -> None:
        self.aliases: int | None = None
        # Per operation name: the variables its analysis reads (names only: document-bound).
        self.reads: dict[str | None, tuple[str, ...]] = {}
        # Per operation name and what the checks see of those variables: an analysis that
        # passed (a refused one is analysed again, so its errors are always fresh).
        self.figures: dict[tuple[str | None, tuple[Any, ...]], Figures] = {}

    def remember(self, key: tuple[str | None, tuple[Any, ...]], figures: Figures) -> None:
        if len(self.figures) >= MAX_FIGURES_PER_DOCUMENT:
            self.figures.clear()
        self.figures[key] = figures


def variables_shape(names: tuple[str, ...], variables: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """What the analysis sees of `names` in `variables`: given or not, an int, a list's length."""
    values = variables or {}
    shape: list[Any] = []
    for name in names:
        value = values.get(name)
        shape.append(
            (
                name in values,
                value if isinstance(value, int) and not isinstance(value, bool) else None,
                len(value) if isinstance(value, list) else None,
            )
        )
    return tuple(shape)


class ValidatedDocuments:
    """Query texts whose documents passed every validation rule that depends on the document
    alone, so the next request with the same text skips them (a bounded LRU, per schema).

    The guards that depend on variables (page sizes, cost) still apply on every request; their
    analysis is kept per document and per shape of the variables it reads (`KnownDocument`), so
    a page asked for again with another id is not walked again.
    """

    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self._texts: OrderedDict[str, KnownDocument] = OrderedDict()

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str) or text not in self._texts:
            return False
        self._texts.move_to_end(text)
        return True

    def add(self, text: str) -> None:
        if text not in self._texts:
            self._texts[text] = KnownDocument()
        self._texts.move_to_end(text)
        while len(self._texts) > self.maxsize:
            self._texts.popitem(last=False)

    def known(self, text: str | None) -> KnownDocument | None:
        return self._texts.get(text) if text is not None else None


class QueryGuards(SchemaExtension):
    """Token limit at parse time, the analysis as a validation rule, the cost in `extensions`."""

    def __init__(self, limits: Limits, validated: ValidatedDocuments | None = None) -> None:
        self.limits = limits
        self.validated = validated
        self.figures: Figures | None = None

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            # A document that does not parse is parsed again by strawberry, which reports it.
            with contextlib.suppress(GraphQLError):
                context.graphql_document = _parse(context.query, self.limits.max_tokens)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if self.validated is not None and query in self.validated:
            # Known document: only the guards that read variables run. A list (even empty)
            # tells strawberry that validation is done.
            assert context.graphql_document is not None
            context.pre_execution_errors = self._check(
                context.schema._schema, context.graphql_document
            )
            yield
            return
        rules = [self._rule()]
        if not self.limits.introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        context.validation_rules = (*context.validation_rules, *rules)
        yield
        if self.validated is not None and query is not None and not context.pre_execution_errors:
            self.validated.add(query)

    def _check(self, schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
        context = self.execution_context
        # Set only for a document validated before: its first request analyses it in full.
        known = self.validated.known(context.query) if self.validated is not None else None
        aliases = known.aliases if known is not None else None
        if aliases is None:
            aliases = _count_aliases(document)
            if known is not None:
                known.aliases = aliases
        if aliases > self.limits.max_aliases:
            return [
                _error(
                    f"The query has {aliases} aliases; at most {self.limits.max_aliases} allowed.",
                    TOO_MANY_ALIASES,
                )
            ]
        operation = context.operation_name
        reads = known.reads.get(operation) if known is not None else None
        if known is not None and reads is not None:
            figures = known.figures.get((operation, variables_shape(reads, context.variables)))
            if figures is not None:
                self.figures = figures
                return []
        analysis = Analysis(schema, document, operation, context.variables, self.limits)
        self.figures = Figures(cost=analysis.cost, depth=analysis.depth)
        if known is not None and not analysis.errors:
            reads = tuple(sorted(analysis.variables_read))
            known.reads[operation] = reads
            known.remember((operation, variables_shape(reads, context.variables)), self.figures)
        return list(analysis.errors)

    def _rule(self) -> type[ValidationRule]:
        guards = self

        class GuardRule(ValidationRule):
            def enter_document(self, node: DocumentNode, *_: Any) -> None:
                for error in guards._check(self.context.schema, node):
                    self.report_error(error)

        return GuardRule

    def get_results(self) -> dict[str, Any]:
        cost: dict[str, Any] = {"limit": self.limits.max_cost}
        if self.figures is not None:
            cost["requested"] = self.figures.cost
            cost["depth"] = self.figures.depth
        reader = getattr(self.execution_context.context, "reader", None)
        if reader is not None:
            cost["graphRoundTrips"] = reader.round_trips
        return {"cost": cost}


class ErrorPolicy(SchemaExtension):
    """Expected errors keep their message and get a code; the rest is masked."""

    def on_operation(self) -> Iterator[None]:
        yield
        self._present(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Each result a subscription pushes."""
        self._present(result)
        yield

    @staticmethod
    def _present(result: object) -> None:
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [present_error(e) for e in errors]  # type: ignore[attr-defined]


def present_error(error: GraphQLError) -> GraphQLError:
    """The error as the client sees it."""
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, ApiError):
        return _with(error, original.message, original.code)
    if isinstance(original, GraphUnavailableError):
        return _with(error, UNAVAILABLE_MESSAGE, SERVICE_UNAVAILABLE)
    if original is None or isinstance(original, GraphQLError) or _is_request_error(error):
        code = (error.extensions or {}).get("code") or _code_for(error.message)
        return _with(error, error.message, str(code))
    return _with(error, UNEXPECTED_MESSAGE, INTERNAL_SERVER_ERROR, mask=True)


def _is_request_error(error: GraphQLError) -> bool:
    """A document or variable error (it points at the document, not at a resolved field)."""
    return error.path is None and bool(error.locations)


def _code_for(message: str) -> str:
    if message.startswith("Syntax Error"):
        return TOO_MANY_TOKENS if "tokens" in message else GRAPHQL_PARSE_FAILED
    if message.startswith("Variable '$") or message.startswith("Argument '"):
        return BAD_USER_INPUT
    if "introspection has been disabled" in message:
        return INTROSPECTION_DISABLED
    return GRAPHQL_VALIDATION_FAILED


def _with(error: GraphQLError, message: str, code: str, mask: bool = False) -> GraphQLError:
    extensions = {} if mask else dict(error.extensions or {})
    extensions["code"] = code
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class GuardedSchema(strawberry.Schema):
    """Logs errors without their messages: a driver or resolver message could hold data."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            original = error.original_error
            while isinstance(original, GraphQLError) and original.original_error is not None:
                original = original.original_error
            if original is None or isinstance(original, ApiError | GraphQLError):
                log.debug("graphql request error: %s", _code_for(error.message))
            elif isinstance(original, GraphUnavailableError):
                log.warning("graphql: neo4j unavailable at %s", _path(error))
            else:
                incident = uuid.uuid4().hex[:12]
                stack = "".join(traceback.format_tb(original.__traceback__))
                log.error(
                    "graphql: unexpected %s at %s (incident %s)\n%s",
                    type(original).__name__,
                    _path(error),
                    incident,
                    stack,
                )


def _path(error: GraphQLError) -> str:
    return ".".join(str(p) for p in error.path) if error.path else "-"
