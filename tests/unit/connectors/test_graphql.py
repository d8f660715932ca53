"""GraphQL documents -> action names: operations, fragments, aliases, batches, bad input, work bounds."""

from __future__ import annotations

import json

import pytest
from trustfence.connectors.base import RequestView, Risk
from trustfence.connectors.graphql import (
    CACHE_CHARS,
    MAX_BATCH,
    MAX_DEPTH,
    MAX_SOURCE_CHARS,
    MAX_TOKENS,
    fixed_actions,
    graphql_action,
    graphql_actions,
    graphql_document_actions,
)

Q = "ns.graphql.query"
S = "ns.graphql.subscription"
INVALID = ("ns.graphql.invalid",)


def m(field: str) -> str:
    return f"ns.graphql.mutation.{field}"


def names(query: str, **extra: object) -> tuple[str, ...]:
    return graphql_actions("ns", {"query": query, **extra}).names


@pytest.mark.parametrize(("query", "expected"), [
    ("{ viewer { login } }", (Q,)),
    ("query { viewer { login } }", (Q,)),
    ("query Named($n: Int) { items(first: $n) { id } }", (Q,)),
    ("{ __schema { types { name } } }", (Q,)),
    ("subscription { onEvent { id } }", (S,)),
    ("mutation { mergePullRequest(input: {}) { clientMutationId } }", (m("mergePullRequest"),)),
    # every top-level field of a mutation, in order
    ("mutation { a { id } b { id } c }", (m("a"), m("b"), m("c"))),
    # aliases do not change the field name
    ("mutation { harmless: deleteRef(input: {}) { clientMutationId } }", (m("deleteRef"),)),
    # a repeated field is listed once
    ("mutation { x1: addStar(input: {}) { clientMutationId } x2: addStar(input: {}) { clientMutationId } }",
     (m("addStar"),)),
    # a named fragment on Mutation hides a field: resolved
    ("mutation { ...Hidden } fragment Hidden on Mutation { deleteRepository(input: {}) { id } }",
     (m("deleteRepository"),)),
    # inline fragments, with and without a type condition
    ("mutation { ... on Mutation { deleteRef(input: {}) { clientMutationId } } ... { addComment { id } } }",
     (m("deleteRef"), m("addComment"))),
    # fragments within fragments, and fragment fields beside plain ones
    (("mutation { createIssue { id } ...A } fragment A on Mutation { ...B closeIssue { id } }"
      " fragment B on Mutation { deleteIssue { id } }"),
     (m("createIssue"), m("deleteIssue"), m("closeIssue"))),
    # a cycle (invalid for a server) still ends, with the fields it reached
    ("mutation { ...A } fragment A on Mutation { x ...B } fragment B on Mutation { y ...A }",
     (m("x"), m("y"))),
    # a fragment name defined twice: both definitions count
    ("mutation { ...A } fragment A on Mutation { x } fragment A on Mutation { y }", (m("x"), m("y"))),
    # directives do not hide a field: @skip might not be honoured the way it reads
    ("mutation { deleteRef(input: {}) @skip(if: true) { clientMutationId } }", (m("deleteRef"),)),
    # nested fields are not top-level operations
    ("mutation { createIssue(input: {}) { issue { deleteMe } } }", (m("createIssue"),)),
    # fragments used inside a query do not make it a mutation
    ("query { ...F } fragment F on Query { viewer { login } }", (Q,)),
    ("mutation { __typename }", (m("__typename"),)),
])
def test_document_to_actions(query: str, expected: tuple[str, ...]) -> None:
    got = graphql_actions("ns", {"query": query})
    assert got.error == ""
    assert got.names == expected


DOC = ("query Read { viewer { login } } mutation Write { deleteRef(input: {}) { clientMutationId } }"
       " subscription Watch { x }")


@pytest.mark.parametrize(("operation_name", "expected"), [
    ("Read", (Q,)),
    ("Write", (m("deleteRef"),)),
    ("Watch", (S,)),
    (None, (Q, m("deleteRef"), S)),          # no name: every operation counts
    ("Missing", (Q, m("deleteRef"), S)),     # a name that matches nothing: every operation counts
])
def test_operation_name_selects_one_operation(operation_name: str | None, expected: tuple[str, ...]) -> None:
    got = graphql_actions("ns", {"query": DOC, "operationName": operation_name})
    assert got.names == expected
    assert got.operation_name == operation_name


def test_anonymous_and_named_operations_all_count_without_a_name() -> None:
    assert names("{ a } mutation X { b }") == (Q, m("b"))


def test_batch_counts_every_request() -> None:
    batch = [{"query": "{ a }"}, {"query": "mutation { deleteRef { id } }"},
             {"query": "mutation { addStar }"}, {"query": "{ b }"}]
    got = graphql_actions("ns", batch)
    assert got.names == (Q, m("deleteRef"), m("addStar"))
    assert got.operation_name is None
    raw = graphql_actions("ns", json.dumps(batch).encode())
    assert raw.names == got.names


def test_batch_operation_names_apply_per_request() -> None:
    batch = [{"query": DOC, "operationName": "Read"}, {"query": DOC, "operationName": "Watch"}]
    assert graphql_actions("ns", batch).names == (Q, S)


@pytest.mark.parametrize("body", [
    b"",
    b"{not json",
    b"\xff\xfe",
    b"null",
    b"42",
    b'"query { a }"',
    b"[]",
    b"[1]",
    json.dumps({"query": "{ a }"} | {"operationName": 7}).encode(),
    json.dumps({"operationName": "x"}).encode(),                          # no query (persisted query)
    json.dumps({"query": None, "extensions": {"persistedQuery": {}}}).encode(),
    json.dumps({"query": ["{ a }"]}).encode(),
    json.dumps([{"query": "{ a }"}, "x"]).encode(),
    json.dumps([{"query": "{ a }"}] * (MAX_BATCH + 1)).encode(),
    b"[" * 100_000 + b"]" * 100_000,                                        # deeper than json can decode
])
def test_unreadable_bodies_are_invalid(body: bytes) -> None:
    got = graphql_actions("ns", body)
    assert got.names == INVALID
    assert got.error


@pytest.mark.parametrize("query", [
    "",
    "   ",
    "{",
    "query { a",
    "mutation { }",                                        # an empty selection set
    "mutation {}",
    "{ a } }",
    "fragment F on Query { a }",                           # no operation at all
    "type Query { a: Int }",                               # schema language, not a request
    "mutation { ...Undefined }",                           # spreads a fragment that does not exist
    "mutation { ...A } fragment A on Mutation { ...A }",   # resolves to no field at all
    "query ($x: Int = ) { a }",
    "{ a(x: \"unterminated) }",
])
def test_unparseable_documents_are_invalid(query: str) -> None:
    got = graphql_actions("ns", {"query": query})
    assert got.names == INVALID
    assert got.error


def test_error_never_quotes_the_document() -> None:
    secret = "ghp_SECRETTOKEN1234567890"
    got = graphql_actions("ns", {"query": f'mutation {{ x(token: "{secret}") '})
    assert got.names == INVALID
    assert secret not in got.error


def nest(depth: int) -> str:
    return "query " + "{ a " * depth + "}" * depth


def test_depth_bound() -> None:
    assert names(nest(MAX_DEPTH)) == (Q,)
    assert names(nest(MAX_DEPTH + 1)) == INVALID
    assert names(nest(5000)) == INVALID                      # the parser's own guard, no RecursionError
    deep_fragment = "query { ...F } fragment F on Query " + "{ a " * (MAX_DEPTH + 1) + "}" * (MAX_DEPTH + 1)
    assert names(deep_fragment) == INVALID
    deep_list = "query { a(x: " + "[" * 3000 + "]" * 3000 + ") }"
    assert names(deep_list) == INVALID


def test_token_bound() -> None:
    fields = MAX_TOKENS // 2
    assert names("{" + " a" * (MAX_TOKENS - 10) + " }") == (Q,)
    assert names("{" + " a" * (MAX_TOKENS + 1) + " }") == INVALID
    # the budget is shared by a batch: two halves fit, two wholes do not
    half = {"query": "{" + " a" * (fields - 10) + " }"}
    assert graphql_actions("ns", [half, half]).names == (Q,)
    whole = {"query": "{" + " a" * (MAX_TOKENS - 10) + " }"}
    assert graphql_actions("ns", [whole, whole]).names == INVALID


def test_source_and_comment_bounds() -> None:
    assert names("{ a }" + " " * MAX_SOURCE_CHARS) == INVALID
    spread = {"query": "{ a }" + " " * (MAX_SOURCE_CHARS // 2)}
    assert graphql_actions("ns", [spread, spread]).names == INVALID
    assert names("{ a }\n" + "#c\n" * 2000) == INVALID
    assert graphql_document_actions("ns", "x" * (MAX_SOURCE_CHARS + 1)).names == INVALID


def view(body: bytes, ctype: str = "application/json", complete: bool = True) -> RequestView:
    return RequestView(method="POST", scheme="https", host="api.example.com", port=443, path="/graphql",
                       headers={"content-type": ctype}, body=body, body_complete=complete)


def test_action_risks_name_and_params() -> None:
    body = json.dumps({"query": "query Q { a } mutation M { addStar { id } deleteRef { id } other { id } }"})
    risks: dict[str, Risk] = {"addStar": "medium", "deleteRef": "high"}
    got = graphql_action("api", "ns", view(body.encode()), risks, "critical")
    assert (got.name, got.risk, got.connector) == (m("other"), "critical", "api")
    assert got.params["operations"] == (Q, m("addStar"), m("deleteRef"), m("other"))
    low = graphql_action("api", "ns", view(b'{"query": "{ a }", "operationName": null}'))
    assert (low.name, low.risk) == (Q, "low")
    assert dict(low.params) == {"operations": (Q,)}


def test_action_first_of_equal_risks_wins() -> None:
    body = json.dumps({"query": "mutation { b { id } a { id } }"}).encode()
    assert graphql_action("api", "ns", view(body)).name == m("b")


def test_invalid_action_is_high_with_error() -> None:
    got = graphql_action("api", "ns", view(b"{oops"), extra={"path": "/graphql"})
    assert (got.name, got.risk) == ("ns.graphql.invalid", "high")
    assert dict(got.params) == {"path": "/graphql", "error": "body is not JSON", "operations": INVALID}


def test_truncated_body_is_invalid() -> None:
    body = json.dumps({"query": "{ a }"}).encode()
    assert graphql_action("api", "ns", view(body, complete=False)).name == "ns.graphql.invalid"


def test_application_graphql_body_is_the_document() -> None:
    got = graphql_action("api", "ns", view(b"mutation { deleteRef { id } }", "application/graphql"))
    assert got.name == m("deleteRef")
    assert graphql_action("api", "ns", view(b"\xff", "application/graphql")).name == "ns.graphql.invalid"
    as_json = graphql_action("api", "ns", view(b'{"query": "{ a }"}', "application/graphql+json"))
    assert as_json.name == Q


def test_multipart_upload_reads_the_operations_field() -> None:
    operations = json.dumps({"query": "mutation ($f: Upload!) { uploadFile(file: $f) { id } }",
                             "variables": {"f": None}})
    body = (
        "--B\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n" + operations + "\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{\"0\": [\"variables.f\"]}\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"0\"; filename=\"a.txt\"\r\n\r\nhello\r\n--B--\r\n"
    ).encode()
    got = graphql_action("api", "ns", view(body, "multipart/form-data; boundary=B"))
    assert got.name == m("uploadFile")
    missing = b"--B\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{}\r\n--B--\r\n"
    assert graphql_action("api", "ns", view(missing, "multipart/form-data; boundary=B")).name == \
        "ns.graphql.invalid"


def test_fixed_actions() -> None:
    assert fixed_actions("ns") == {"ns.graphql.query", "ns.graphql.subscription", "ns.graphql.invalid"}


def test_action_names_are_valid_permission_names() -> None:
    from trustfence.policy.model import validate_pattern

    for name in (*names(DOC), m("__typename"), *INVALID):
        assert validate_pattern(name) == name


def test_remembered_readings_are_keyed_by_everything_they_depend_on() -> None:
    doc = "query A { a } mutation B { mergePullRequest(input: {}) { x } } mutation C { closeIssue { x } }"
    for _ in range(2):  # read twice: the second answer is the remembered one and must be the same
        assert graphql_document_actions("ns", doc, "B").names == (m("mergePullRequest"),)
        assert graphql_document_actions("ns", doc, "C").names == (m("closeIssue"),)
        assert graphql_document_actions("ns", doc).names == (Q, m("mergePullRequest"), m("closeIssue"))
        assert graphql_document_actions("other", doc, "A").names == ("other.graphql.query",)
        assert graphql_document_actions("ns", doc, max_tokens=5).names == INVALID  # the budget is part of it
    # a document past the cache bound is read every time, with the same result as a short one
    padding = "#" + "x" * CACHE_CHARS + "\n"
    assert graphql_document_actions("ns", padding + doc, "B").names == (m("mergePullRequest"),)
