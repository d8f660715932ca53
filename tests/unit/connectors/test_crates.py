"""The crates connector: the sparse index by name length, downloads in both forms, cargo's publish frame."""

from __future__ import annotations

import json

import pytest
from trustfence.connectors import build_connector
from trustfence.connectors.base import RequestView
from trustfence.connectors.crates import index_dirs, normalise, publish_metadata

CRATES = build_connector("crates", "crates")


def view(method: str, path: str, host: str = "index.crates.io", body: bytes = b"",
         complete: bool = True) -> RequestView:
    return RequestView(method, "https", host, 443, path, body=body, body_complete=complete)


def frame(meta: object, crate: bytes = b"\x1f\x8b" * 10) -> bytes:
    head = json.dumps(meta).encode()
    return len(head).to_bytes(4, "little") + head + len(crate).to_bytes(4, "little") + crate


@pytest.mark.parametrize(("path", "host", "action", "params"), [
    ("/config.json", "index.crates.io", "crates.index.config", {}),
    ("/1/a", "index.crates.io", "crates.package.metadata", {"name": "a"}),
    ("/2/cc", "index.crates.io", "crates.package.metadata", {"name": "cc"}),
    ("/3/s/syn", "index.crates.io", "crates.package.metadata", {"name": "syn"}),
    ("/se/rd/serde", "index.crates.io", "crates.package.metadata", {"name": "serde"}),
    ("/se/rd/serde_json", "index.crates.io", "crates.package.metadata", {"name": "serde_json"}),
    ("/to/ki/tokio-util", "index.crates.io", "crates.package.metadata", {"name": "tokio-util"}),
    ("/crates/serde/1.0.200/download", "static.crates.io", "crates.package.download",
     {"name": "serde", "version": "1.0.200", "file": "serde-1.0.200.crate"}),
    ("/crates/serde_json/serde_json-1.0.117.crate", "static.crates.io", "crates.package.download",
     {"name": "serde_json", "version": "1.0.117", "file": "serde_json-1.0.117.crate"}),
    ("/crates/Inflector/Inflector-0.11.4.crate", "static.crates.io", "crates.package.download",
     {"name": "inflector", "version": "0.11.4", "file": "Inflector-0.11.4.crate"}),
    ("/api/v1/crates/tokio/1.37.0/download", "crates.io", "crates.package.download",
     {"name": "tokio", "version": "1.37.0", "file": "tokio-1.37.0.crate"}),
    ("/api/v1/crates/tokio", "crates.io", "crates.package.metadata", {"name": "tokio"}),
    ("/api/v1/crates/tokio/versions", "crates.io", "crates.package.metadata", {"name": "tokio"}),
    ("/api/v1/crates/tokio/1.37.0", "crates.io", "crates.package.metadata", {"name": "tokio", "version": "1.37.0"}),
    ("/api/v1/crates", "crates.io", "crates.search", {}),
    ("/api/v1/crates/tokio/owners", "crates.io", "crates.owner.list", {"name": "tokio"}),
])
def test_paths_cargo_requests(path: str, host: str, action: str, params: dict[str, str]) -> None:
    a = CRATES.classify(view("GET", path, host))
    assert (a.name, a.connector, dict(a.params)) == (action, "crates", params)


@pytest.mark.parametrize(("method", "path", "action", "risk"), [
    ("DELETE", "/api/v1/crates/tokio/1.0.0/yank", "crates.package.yank", "high"),
    ("PUT", "/api/v1/crates/tokio/1.0.0/unyank", "crates.package.unyank", "medium"),
    ("PUT", "/api/v1/crates/tokio/owners", "crates.owner.add", "high"),
    ("DELETE", "/api/v1/crates/tokio/owners", "crates.owner.remove", "high"),
])
def test_writes(method: str, path: str, action: str, risk: str) -> None:
    a = CRATES.classify(view(method, path, "crates.io"))
    assert (a.name, a.risk, a.params["name"]) == (action, risk, "tokio")


def test_publish_reads_name_and_version_from_the_frame_even_when_the_crate_is_cut() -> None:
    body = frame({"name": "My_Crate", "vers": "0.1.0", "deps": []}, b"x" * 300_000)[:256 * 1024]
    a = CRATES.classify(view("PUT", "/api/v1/crates/new", "crates.io", body, complete=False))
    assert (a.name, a.risk, dict(a.params)) == ("crates.package.publish", "high",
                                                {"name": "my_crate", "version": "0.1.0"})


@pytest.mark.parametrize("body", [b"", b"\x05\x00", b"\xff\xff\xff\x00{}", frame([1, 2]), b"\x03\x00\x00\x00{x}"])
def test_publish_frame_that_cannot_be_read_leaves_name_unavailable(body: bytes) -> None:
    a = CRATES.classify(view("PUT", "/api/v1/crates/new", "crates.io", body))
    assert a.name == "crates.package.publish" and a.unavailable == {"name", "version"}


def test_publish_with_a_bad_name_is_unknown() -> None:
    a = CRATES.classify(view("PUT", "/api/v1/crates/new", "crates.io", frame({"name": "9bad", "vers": "1.0.0"})))
    assert a.name == "crates.unknown.put"


@pytest.mark.parametrize("path", [
    "/xx/rd/serde",        # directories that do not fit the name
    "/3/x/syn",
    "/1/ab",
    "/2/abc",
    "/se/rd",
    "/crates/serde/tokio-1.0.0.crate",  # a file of another crate
    "/crates/serde/serde-1.0.0.tar.gz",
    "/crates/9bad/9bad-1.0.0.crate",
    "/a/b/c/d/e",
])
def test_anything_else_is_unknown(path: str) -> None:
    assert CRATES.classify(view("GET", path)).name == "crates.unknown.get"


def test_index_dirs() -> None:
    assert [index_dirs(n) for n in ("a", "ab", "abc", "abcd", "serde")] == [
        ("1",), ("2",), ("3", "a"), ("ab", "cd"), ("se", "rd")]


def test_names() -> None:
    assert normalise("Serde_JSON") == "serde_json"
    for bad in ("", "9x", "-x", "a b", "a" * 65, "ä"):
        with pytest.raises(ValueError):
            normalise(bad)


def test_publish_metadata_bounds() -> None:
    assert publish_metadata(frame({"name": "x"})) == {"name": "x"}
    assert publish_metadata((10**7).to_bytes(4, "little") + b"{}") is None


def test_mirror_through_base_path() -> None:
    m = build_connector("corp", "crates", ("cargo.corp.example",), base_path="/api/cargo/remote/index")
    a = m.classify(view("GET", "/api/cargo/remote/index/se/rd/serde", "cargo.corp.example"))
    assert (a.name, a.params["name"]) == ("crates.package.metadata", "serde")
