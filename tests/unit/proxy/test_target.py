"""Request targets and headers with more than one reading are refused; ordinary ones pass untouched."""

from __future__ import annotations

import pytest
from trustfence.proxy.target import header_problem, target_problem


@pytest.mark.parametrize("target", [
    "/repos/o/r#/issues/1/labels/x",      # a fragment: parsers that drop it read DELETE /repos/o/r
    "/repos/o/r?x=1#frag",
    "/repos/o/r%2Fissues%2F1",             # an encoded slash: a segment to some, a separator to others
    "/repos/o/r%2fissues",
    "/repos/o/r%5Cx",                      # an encoded backslash
    "/repos/o/r\\issues",                  # a backslash (a separator on some servers)
    "/repos/o/%2e%2e/other",               # encoded dot segments
    "/repos/o/%2E/x",
    "/repos/o/r/../other",
    "/repos/o/./r",
    "/repos//o/r",                         # an empty segment
    "/repos/o/r;x=1/issues",               # path parameters (stripped by some servers)
    "/repos/o/r%3B/issues",
    "/repos/o/r%252F",                     # double encoding
    "/repos/o/r%3F/x",                     # an encoded ? or #
    "/repos/o/r%23/x",
    "/repos/o/r%00",                       # encoded control characters
    "/repos/o/r\x00",
    "/repos/o/r x",
    "/repos/o/caf\u00e9",                  # raw non-ASCII
    "/repos/o/r%zz",                       # a malformed escape
    "/repos/o/r?q=a b",                    # whitespace in the query
    "/repos/o/r?q=%G1",
    "/repos/o/%c0%ae%c0%ae/x",             # overlong UTF-8 dots (read as '..' by some servers)
    "/repos/o/r%u002e",                    # IIS's %u escapes
    "/repos/o/r?_method=DELETE",           # method overrides in the query, however they are spelled
    "/repos/o/r?x=1;_method=DELETE",
    "/repos/o/r?%5Fmethod=DELETE",
    "/repos/o/r?%255Fmethod=DELETE",
    "/repos/o/r?X-HTTP-Method-Override=DELETE",
    "*",
    "repos/o/r",
])
def test_ambiguous_targets_are_refused(target: str) -> None:
    assert target_problem(target) is not None


@pytest.mark.parametrize("target", [
    "/", "/repos/o/r/pulls", "/repos/o/r/pulls/", "/repos/o/r/contents/docs/a%20b.md", "/search/issues?q=is%3Aopen+x",
    "/v1/files/f-1/content?limit=2&after=x", "/a/b.c/d..e/~user/(x)!$&'*+,=:@",
    "/v1/payment_intents?payment_method=pm_1&expand[]=payment_method", "/search?q=_method",
])
def test_ordinary_targets_pass(target: str) -> None:
    assert target_problem(target) is None


@pytest.mark.parametrize(("fields", "authority", "http2"), [
    ([("Host", "api.github.com"), ("Host", "evil.example")], "", False),
    ([("host", "evil.example")], "api.github.com", True),
    ([("Content-Length", "4"), ("Content-Length", "4")], "", False),
    ([("X-Long", "a\r\n b")], "", False),
    ([("X-HTTP-Method-Override", "DELETE")], "", False),
    ([("x-http-method", "DELETE")], "", False),
    ([("X-Method-Override", "PUT")], "", False),
    ([("X-Forwarded-Method", "DELETE")], "", False),
    ([("X_HTTP_Method_Override", "DELETE")], "", False),
    ([("Content-Type", "application/json"), ("content-type", "application/x-www-form-urlencoded")], "", False),
])
def test_ambiguous_headers_are_refused(fields: list[tuple[str, str]], authority: str, http2: bool) -> None:
    assert header_problem(fields, authority, http2) is not None


def test_ordinary_headers_pass() -> None:
    assert header_problem([("Host", "api.github.com"), ("Content-Length", "2"), ("Accept", "*/*")], "", False) is None
    assert header_problem([("host", "API.github.com")], "api.github.com", True) is None


def test_an_encoded_slash_passes_only_where_the_connector_reads_it_as_its_upstream_does() -> None:
    assert target_problem("/@types%2fnode", encoded_slash=True) is None  # npm's scoped packages
    assert target_problem("/@types%2fnode") is not None
    assert target_problem("/@types%2fnode%5c..", encoded_slash=True) is not None
    assert target_problem("/@types%2f..%2f..%2fx", encoded_slash=True) is not None
    assert target_problem("/@types%2f%2fx", encoded_slash=True) is not None
