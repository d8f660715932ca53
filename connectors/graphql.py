"""GraphQL over HTTP: which operations a request body would run, as ``<namespace>.graphql.*`` action names.

A GraphQL endpoint takes one URL and one method for everything, so the action lives in the document:

- a query operation is ``<ns>.graphql.query``; a subscription ``<ns>.graphql.subscription``;
- each top-level field of a mutation is ``<ns>.graphql.mutation.<field>`` (``github.graphql.mutation.
  mergePullRequest``). Aliases do not change the field's name; fragments spread at the top level (named or
  inline) are resolved, since a fragment on ``Mutation`` can hide a field;
- with ``operationName`` only the named operation counts; without it (or when it names no operation) every
  operation in the document counts: a server picks one, and the classifier never counts fewer than it runs;
- a batch (a JSON array of requests) counts every request in it;
- a body that is not JSON, a document that does not parse, or one over the work bounds below is
  ``<ns>.graphql.invalid``. The bounds (source size, lexical tokens, comments, selection depth, batch size)
  are checked while parsing, so a hostile document costs at most a few milliseconds.

A document's reading depends on nothing but its text, the operation name and the token budget, so readings of
documents up to ``CACHE_CHARS`` are remembered (``CACHE_ENTRIES`` of them, least recently used dropped): agents
send the same documents again and again with different variables, and graphql-core's parser costs 100-200 µs
per document where the remembered reading costs a lookup.

``graphql_actions`` returns the names; ``graphql_action`` turns a request view into one Action by the
multi-operation rule of ``protocols.combine`` (name = first highest-risk operation, ``params["operations"]`` =
all of them).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import chain

from graphql import GraphQLError, parse
from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
)
from trustfence.connectors.base import Action, RequestView, Risk, body_fields, parse_json
from trustfence.connectors.protocols import combine

__all__ = [
    "CACHE_CHARS",
    "CACHE_ENTRIES",
    "MAX_BATCH",
    "MAX_DEPTH",
    "MAX_SOURCE_CHARS",
    "MAX_TOKENS",
    "GraphQLActions",
    "fixed_actions",
    "graphql_action",
    "graphql_actions",
    "graphql_document_actions",
]

MAX_SOURCE_CHARS = 64 * 1024
"""Characters of GraphQL source per request, all documents of a batch together."""
MAX_TOKENS = 8000
"""Lexical tokens per request, shared evenly by the documents of a batch (parse time is linear in tokens)."""
MAX_COMMENTS = 1000
MAX_DEPTH = 32
"""Nesting of selection sets; real queries stay far below it."""
MAX_BATCH = 32
"""Requests in one JSON array."""
CACHE_CHARS = 8 * 1024
"""Longest document whose reading is remembered: with ``CACHE_ENTRIES`` the cache holds at most a few MiB."""
CACHE_ENTRIES = 512


@dataclass(frozen=True, slots=True)
class GraphQLActions:
    """The outcome of reading a GraphQL request.

    ``names``: every action the request would run, in request order, without repeats;
    ``(<ns>.graphql.invalid,)`` when it cannot be read. ``error``: why it is invalid (a fixed phrase, never
    text from the document; empty when valid). ``operation_name``: the ``operationName`` of a single
    request, when it gave one.
    """

    names: tuple[str, ...]
    error: str = ""
    operation_name: str | None = None


def fixed_actions(namespace: str) -> frozenset[str]:
    """The names ``graphql_actions`` can emit besides ``<ns>.graphql.mutation.<field>``."""
    return frozenset(f"{namespace}.graphql.{v}" for v in ("query", "subscription", "invalid"))


def _invalid(namespace: str, error: str) -> GraphQLActions:
    return GraphQLActions((f"{namespace}.graphql.invalid",), error)


def graphql_actions(namespace: str, body: bytes | object) -> GraphQLActions:
    """The actions of a GraphQL-over-HTTP JSON body: raw ``bytes``, or JSON already decoded (any other
    type)."""
    if isinstance(body, bytes):
        try:
            body = parse_json(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _invalid(namespace, "body is not JSON")
    requests = body if isinstance(body, list) else [body]
    if not requests or len(requests) > MAX_BATCH:
        return _invalid(namespace, "batch is empty or too large")
    found: list[tuple[str, str | None]] = []
    for request in requests:
        if not isinstance(request, dict):
            return _invalid(namespace, "request is not a JSON object")
        query, op_name = request.get("query"), request.get("operationName")
        if not isinstance(query, str):
            return _invalid(namespace, "request has no query string")
        if op_name is not None and not isinstance(op_name, str):
            return _invalid(namespace, "operationName is not a string")
        found.append((query, op_name))
    if len(found) == 1:  # the common case: the document's reading is the request's
        return graphql_document_actions(namespace, *found[0])
    if sum(len(q) for q, _ in found) > MAX_SOURCE_CHARS:
        return _invalid(namespace, "document too large")
    budget = MAX_TOKENS // len(found)
    names: list[str] = []
    for query, op_name in found:
        one = graphql_document_actions(namespace, query, op_name, budget)
        if one.error:
            return one
        names.extend(one.names)
    single_name = found[0][1] if len(found) == 1 else None
    return GraphQLActions(tuple(dict.fromkeys(names)), "", single_name)


def graphql_document_actions(namespace: str, document: str, operation_name: str | None = None,
                             max_tokens: int = MAX_TOKENS) -> GraphQLActions:
    """The actions of one GraphQL document (an ``application/graphql`` body, or one request's ``query``)."""
    if len(document) <= CACHE_CHARS:
        return _remembered(namespace, document, operation_name, max_tokens)
    return _document_actions(namespace, document, operation_name, max_tokens)


def _document_actions(namespace: str, document: str, operation_name: str | None, max_tokens: int
                      ) -> GraphQLActions:
    if len(document) > MAX_SOURCE_CHARS:
        return _invalid(namespace, "document too large")
    try:
        doc = parse(document, no_location=True, max_lexical_tokens=max_tokens, max_comments=MAX_COMMENTS,
                    max_source_length=MAX_SOURCE_CHARS, allow_empty_selection_sets=False)
    except (GraphQLError, RecursionError):
        # The message quotes the document, which may hold secrets: the reason stays a fixed phrase.
        return _invalid(namespace, "document does not parse or exceeds the token bound")
    if _depth(doc) > MAX_DEPTH:
        return _invalid(namespace, "document nested too deeply")
    operations = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        return _invalid(namespace, "document has no operation")
    chosen = [op for op in operations if operation_name is not None and op.name is not None
              and op.name.value == operation_name] or operations
    fragments: dict[str, list[FragmentDefinitionNode]] = {}
    for d in doc.definitions:
        if isinstance(d, FragmentDefinitionNode):
            fragments.setdefault(d.name.value, []).append(d)  # a repeated name: both count
    names: list[str] = []
    for op in chosen:
        if op.operation is OperationType.QUERY:
            names.append(f"{namespace}.graphql.query")
        elif op.operation is OperationType.SUBSCRIPTION:
            names.append(f"{namespace}.graphql.subscription")
        else:
            fields = _top_level_fields(op.selection_set, fragments)
            if not fields:
                return _invalid(namespace, "mutation selects no field or an undefined fragment")
            names.extend(f"{namespace}.graphql.mutation.{f}" for f in fields)
    return GraphQLActions(tuple(dict.fromkeys(names)), "", operation_name)


_remembered = functools.lru_cache(maxsize=CACHE_ENTRIES)(_document_actions)


def _top_level_fields(selection: SelectionSetNode, fragments: Mapping[str, list[FragmentDefinitionNode]]
                      ) -> list[str]:
    """Field names at the top of ``selection`` in document order, through inline fragments and fragment
    spreads (each named fragment entered once, so a cycle ends). Empty when a spread names no fragment: the
    document is invalid."""
    names: list[str] = []
    seen: set[str] = set()
    # A stack of iterators walks the selections depth-first in document order without recursion.
    stack: list[Iterator[SelectionNode]] = [iter(selection.selections)]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
        elif isinstance(node, FieldNode):
            names.append(node.name.value)
        elif isinstance(node, InlineFragmentNode):
            stack.append(iter(node.selection_set.selections))
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            if name not in fragments:
                return []
            if name not in seen:
                seen.add(name)
                stack.append(chain.from_iterable(f.selection_set.selections for f in fragments[name]))
    return names


def _depth(doc: DocumentNode) -> int:
    """The deepest nesting of selection sets in the document (iterative: no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[SelectionSetNode, int]] = [
        (d.selection_set, 1) for d in doc.definitions
        if isinstance(d, (OperationDefinitionNode, FragmentDefinitionNode))
    ]
    while stack:
        selection, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        for node in selection.selections:
            inner = node.selection_set if isinstance(node, (FieldNode, InlineFragmentNode)) else None
            if inner is not None:
                stack.append((inner, depth + 1))
    return deepest


def _read(namespace: str, view: RequestView) -> GraphQLActions:
    if not view.body_complete:
        return _invalid(namespace, "body beyond the inspection bound")
    ctype = view.headers.get("content-type", "").lower()
    if ctype.startswith("application/graphql") and "json" not in ctype:
        try:
            return graphql_document_actions(namespace, view.body.decode("utf-8"))
        except UnicodeDecodeError:
            return _invalid(namespace, "body is not UTF-8")
    if ctype.startswith("multipart/form-data"):
        # GraphQL multipart requests (file uploads) carry the JSON request in the "operations" field.
        fields = body_fields(view)
        ops = fields.get("operations") if fields is not None else None
        return graphql_actions(namespace, ops.encode("utf-8") if isinstance(ops, str) else b"")
    return graphql_actions(namespace, view.body)


def graphql_action(connector: str, namespace: str, view: RequestView,
                   mutation_risks: Mapping[str, Risk] | None = None, mutation_default: Risk = "high",
                   extra: Mapping[str, object] | None = None) -> Action:
    """The Action for a GraphQL request: queries and subscriptions low, invalid high, each mutation the risk
    ``mutation_risks`` gives its field (``mutation_default`` for the rest). Params: ``extra``,
    ``operationName`` when the request gave one, ``error`` when invalid, and ``operations`` (every action
    name, see ``protocols.combine``)."""
    risks = mutation_risks or {}
    found = _read(namespace, view)
    mutation = f"{namespace}.graphql.mutation."
    parts: list[tuple[str, Risk]] = []
    for name in found.names:
        if name.startswith(mutation):
            parts.append((name, risks.get(name[len(mutation):], mutation_default)))
        else:
            parts.append((name, "high" if found.error else "low"))
    params: dict[str, object] = dict(extra or {})
    if found.operation_name is not None:
        params["operationName"] = found.operation_name
    if found.error:
        params["error"] = found.error
    return combine(connector, parts, params)
