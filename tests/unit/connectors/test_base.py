"""Normalisation before matching, the body reader every connector shares, and the route index."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trustfence.connectors import Action, RequestView, Route, base, build_connector
from trustfence.connectors.base import RouteMatch, Router, body_fields, normalise_path, parse_json

GH = build_connector("github", "github")


@pytest.mark.parametrize(("raw", "clean"), [
    ("/repos/acme/widgets", "/repos/acme/widgets"),
    ("//repos///acme/widgets", "/repos/acme/widgets"),
    ("/repos/acme/widgets/pulls/7/../../", "/repos/acme/widgets/"),
    ("/repos/acme/x/../widgets", "/repos/acme/widgets"),
    ("/repos/acme%2Fwidgets", "/repos/acme/widgets"),
    ("/repos/acme%252Fwidgets", "/repos/acme/widgets"),
    ("/repos/./acme/widgets/.", "/repos/acme/widgets"),
    ("/../../etc/passwd", "/etc/passwd"),
    ("", "/"),
])
def test_normalise_path(raw: str, clean: str) -> None:
    assert normalise_path(raw) == clean


def view(method: str, host: str, path: str, query: tuple[tuple[str, str], ...] = ()) -> RequestView:
    return RequestView(method=method, scheme="https", host=host, port=443, path=path, query=query)


@pytest.mark.parametrize("tricky", [
    view("delete", "API.GitHub.com.", "/repos/acme/widgets"),
    view("DELETE", "api.github.com", "//repos//acme/widgets/"),
    view("DELETE", "api.github.com", "/repos/acme/widgets/issues/../"),
    view("DELETE", "api.github.com", "/repos/acme%2Fwidgets"),
])
def test_encoding_tricks_cannot_disguise_a_repo_delete(tricky: RequestView) -> None:
    assert GH.classify(tricky).name == "github.repo.delete"


def test_query_order_does_not_matter() -> None:
    a = GH.classify(view("GET", "api.github.com", "/repos/acme/widgets/pulls", (("state", "open"), ("page", "2"))))
    b = GH.classify(view("GET", "api.github.com", "/repos/acme/widgets/pulls", (("page", "2"), ("state", "open"))))
    assert a == b


@pytest.mark.parametrize(("ctype", "body", "complete", "fields"), [
    ("application/json", b'{"a": 1}', True, {"a": 1}),
    ("application/json", b'{"a": ', True, None),                    # malformed
    ("application/json", b'{"a": 1}', False, None),                 # cut at the inspection bound
    ("application/json", b'{"a": "\xff"}', True, None),              # not UTF-8
    ("application/json", b"[1, 2]", True, None),                    # not an object
    ("application/json", b"[" * 100_000, True, None),               # hostile nesting
    ("application/x-www-form-urlencoded", b"amount=100&currency=usd", True, {"amount": "100", "currency": "usd"}),
    ("application/x-www-form-urlencoded", b"a=\xff", True, None),
    ("multipart/form-data; boundary=B", b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants'
     b'\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="n.txt"\r\n\r\nSECRET\r\n--B--\r\n', True,
     {"purpose": "assistants", "file": "n.txt"}),
    ("", b"", True, {}),
])
def test_body_fields(ctype: str, body: bytes, complete: bool, fields: object) -> None:
    v = RequestView(method="POST", scheme="https", host="h", port=443, path="/", headers={"content-type": ctype},
                    body=body, body_complete=complete)
    assert body_fields(v) == fields


# --- the body is read cheaply, and read the way the standard library reads it ---

_JSON_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=' \t\n\r\ufeff{}[]":,0123456789.eE-+truefalsn\\', max_size=30),
    st.tuples(st.sampled_from(["", " ", "\n\t", "\ufeff"]),
              st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8).map(json.dumps),
              st.sampled_from(["", " ", "\r\n", "x", " ]", "\x00"])).map("".join),
)


def _outcome(parse: Callable[[str], object], text: str) -> tuple[str, object]:
    try:
        return "value", parse(text)
    except RecursionError:
        return "RecursionError", None
    except ValueError:
        return "ValueError", None


@settings(max_examples=500, deadline=None)
@given(text=_JSON_TEXT)
def test_parse_json_is_json_loads(text: str) -> None:
    assert repr(_outcome(parse_json, text)) == repr(_outcome(json.loads, text))


def test_parse_json_hostile_nesting() -> None:
    with pytest.raises(RecursionError):
        parse_json("[" * 100_000)


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet="ab=&%+2F0x\u00e9 ;", max_size=30))
def test_form_bodies_read_as_parse_qsl_reads_them(text: str) -> None:
    v = RequestView(method="POST", scheme="https", host="h", port=443, path="/",
                    headers={"content-type": "application/x-www-form-urlencoded"}, body=text.encode())
    assert body_fields(v) == (dict(parse_qsl(text, keep_blank_values=True)) if text else {})


def test_a_body_is_read_once_however_many_routes_look_at_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # POST .../git/refs: three routes in a row test the body (branch, tag, then any ref)
    reads: list[RequestView] = []

    def counting(v: RequestView) -> Mapping[str, object] | None:
        reads.append(v)
        return body_fields(v)

    monkeypatch.setattr(base, "body_fields", counting)
    got = GH.classify(RequestView(method="POST", scheme="https", host="api.github.com", port=443,
                                  path="/repos/acme/widgets/git/refs", headers={"content-type": "application/json"},
                                  body=b'{"ref": "refs/notes/x", "sha": "abc"}'))
    assert (got.name, dict(got.params)) == ("github.ref.create", {"owner": "acme", "repo": "widgets",
                                                                  "ref": "refs/notes/x", "sha": "abc"})
    assert len(reads) == 1


def test_a_body_is_not_read_when_no_matching_route_looks_at_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "body_fields", lambda v: pytest.fail("body read"))
    got = GH.classify(RequestView(method="GET", scheme="https", host="api.github.com", port=443,
                                  path="/repos/acme/widgets/pulls", headers={"content-type": "application/json"},
                                  body=b'{"state": "closed"}'))
    assert got.name == "github.pr.list"


# --- the router: find and match give the same answer ---

_ROUTER = Router("t", (
    Route("GET", "/", "root.read", "low"),
    Route("POST", "/a/{id}", "a.close", "high", when=lambda b: b.get("state") == "closed", body_params=("state",)),
    Route("POST", "/a/{id}", "a.update", "medium", body_params=("state", "title")),
    Route("GET", "/a/{id}/files/{path+}", "a.file.read", "low", query_params=("ref",)),
))


@pytest.mark.parametrize(("method", "path", "body", "query", "found"), [
    ("GET", "/", b"", (), RouteMatch("t.root.read", "low", {}, frozenset())),
    ("GET", "//", b"", (), RouteMatch("t.root.read", "low", {}, frozenset())),
    ("POST", "/a/1", b'{"state": "closed"}', (), RouteMatch("t.a.close", "high", {"id": "1", "state": "closed"},
                                                             frozenset())),
    ("POST", "/a/1/", b'{"title": "x"}', (), RouteMatch("t.a.update", "medium", {"id": "1", "title": "x"},
                                                         frozenset())),
    ("POST", "/a/1", b"{", (), RouteMatch("t.a.update", "medium", {"id": "1"}, frozenset({"state", "title"}))),
    ("GET", "/a/1/files/x/y.txt", b"", (("ref", "main"), ("ref", "dev")),
     RouteMatch("t.a.file.read", "low", {"id": "1", "path": "x/y.txt", "ref": "main"}, frozenset())),
    ("GET", "/a/1/files", b"", (), None),
    ("DELETE", "/a/1", b"", (), None),
])
def test_router_find_and_match(method: str, path: str, body: bytes, query: tuple[tuple[str, str], ...],
                               found: RouteMatch | None) -> None:
    v = RequestView(method=method, scheme="https", host="h", port=443, path=path, query=query,
                    headers={"content-type": "application/json"}, body=body)
    assert _ROUTER.find(v) == found
    action = _ROUTER.match("conn", v)
    if found is None:
        assert action is None
    else:
        assert action == Action(found.name, "conn", found.risk, found.params, found.unavailable)


# --- the route index answers exactly what a scan of the table in order answers ---

from trustfence.connectors import anthropic, crates, github, gomod, npm, openai, pypi, slack, stripe  # noqa: E402

ROUTERS = [github._ROUTER, stripe._ROUTER, openai._ROUTER, anthropic._ROUTER, slack._PATH_ROUTER, pypi._ROUTER,
           npm._ROUTER, crates._ROUTER, gomod._ROUTER]
_SEGMENT = st.sampled_from(["x1", "v1", "repos", "pulls", "", "a.b", "search", "merge", "{id}"])


def scanned(router: Router, view: RequestView) -> RouteMatch | None:
    """The first route in table order whose pattern matches and whose body rule holds: the index's spec."""
    for r in router.routes:
        m = r.compile().match(view.path)
        if r.method != view.method or m is None:
            continue
        body = body_fields(view)
        if r.when is not None and not r.when(body or {}):
            continue
        return RouteMatch(f"{router.namespace}.{r.action}", r.risk, {}, frozenset())
    return None


@st.composite
def near_routes(draw: st.DrawFn) -> tuple[Router, RequestView]:
    """A request near some route of some table: its template filled in, then segments changed, added or cut,
    with a leading slash, two or none, and a trailing slash, two, or a newline."""
    router = draw(st.sampled_from(ROUTERS))
    route = draw(st.sampled_from(router.routes))
    segs = [draw(st.sampled_from(["x1", "a/b"])) + s.partition("}")[2] if s.startswith("{") else s
            for s in route.template.strip("/").split("/")]  # a parameter's suffix (``{version}.zip``) kept
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(segs)))
        change = draw(st.sampled_from(["insert", "replace", "cut"]))
        if change == "insert" or not segs:
            segs.insert(i, draw(_SEGMENT))
        elif change == "replace":
            segs[min(i, len(segs) - 1)] = draw(_SEGMENT)
        else:
            del segs[min(i, len(segs) - 1)]
    method = draw(st.sampled_from([route.method, "GET", "POST", "DELETE"]))
    path = (draw(st.sampled_from(["/", "/", "/", "//", ""])) + "/".join(segs)
            + draw(st.sampled_from(["", "", "/", "//", "\n", "/\n"])))
    body = draw(st.sampled_from([b"", b'{"state": "closed", "sha": "1"}', b'{"force": true}']))
    return router, RequestView(method, "https", "h", 443, path, headers={"content-type": "application/json"},
                               body=body)


@settings(max_examples=3000, deadline=None, database=None)
@given(near_routes())
def test_the_index_picks_the_route_a_scan_in_table_order_picks(case: tuple[Router, RequestView]) -> None:
    router, view = case
    found, expected = router.find(view), scanned(router, view)
    assert (found and (found.name, found.risk)) == (expected and (expected.name, expected.risk)), view.path


def test_a_parameter_with_a_suffix_matches_only_segments_ending_in_it() -> None:
    r = Router("x", (Route("GET", "/{mod+}/@v/{version}.zip", "zip"), Route("GET", "/f/{file}.metadata", "meta"),
                     Route("GET", "/f/{file}", "file")))
    hit = r.find(RequestView("GET", "https", "h", 443, "/a/b/@v/v1.0.0.zip"))
    assert hit is not None and (hit.name, hit.params) == ("x.zip", {"mod": "a/b", "version": "v1.0.0"})
    assert r.find(RequestView("GET", "https", "h", 443, "/a/b/@v/v1.0.0.zip.sig")) is None
    meta = r.find(RequestView("GET", "https", "h", 443, "/f/a.whl.metadata"))
    assert meta is not None and (meta.name, meta.params) == ("x.meta", {"file": "a.whl"})
    plain = r.find(RequestView("GET", "https", "h", 443, "/f/a.whl"))
    assert plain is not None and (plain.name, plain.params) == ("x.file", {"file": "a.whl"})
    alone = r.find(RequestView("GET", "https", "h", 443, "/f/.metadata"))  # the parameter takes a character
    assert alone is not None and alone.name == "x.file"


def test_base_path_helpers() -> None:
    assert [base.clean_base_path(b) for b in ("", "/", "api/v3/", "/api/v3", " /x/y// ")] == [
        "", "", "/api/v3", "/api/v3", "/x/y"]
    assert base.under_base("/api/v3/repos/a/b", "/api/v3") == "/repos/a/b"
    assert base.under_base("/api/v3", "/api/v3") == "/"
    assert base.under_base("/api/v31/x", "/api/v3") is None
    assert base.under_base("/x", "") == "/x"
