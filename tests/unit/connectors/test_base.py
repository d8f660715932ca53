"""Normalisation before matching, and the body reader every connector shares."""

from __future__ import annotations

import pytest

from trustfence.connectors import RequestView, build_connector
from trustfence.connectors.base import body_fields, normalise_path

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
