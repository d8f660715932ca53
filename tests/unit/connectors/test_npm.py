"""The npm connector: packuments, tarballs and publishes, scoped names in both encodings."""

from __future__ import annotations

import json

import pytest
from trustfence.connectors import build_connector
from trustfence.connectors.base import RequestView
from trustfence.connectors.npm import joined, normalise

NPM = build_connector("npm", "npm")


def view(method: str, path: str, body: object = None, complete: bool = True,
         host: str = "registry.npmjs.org") -> RequestView:
    raw = b"" if body is None else json.dumps(body).encode()
    return RequestView(method, "https", host, 443, path, headers={"content-type": "application/json"}, body=raw,
                       body_complete=complete)


@pytest.mark.parametrize(("method", "path", "action", "params"), [
    ("GET", "/lodash", "npm.package.metadata", {"name": "lodash"}),
    ("GET", "/lodash/", "npm.package.metadata", {"name": "lodash"}),
    ("GET", "/lodash/4.17.21", "npm.package.metadata", {"name": "lodash", "version": "4.17.21"}),
    ("GET", "/lodash/latest", "npm.package.metadata", {"name": "lodash", "version": "latest"}),
    ("GET", "/JSONStream", "npm.package.metadata", {"name": "JSONStream"}),
    ("GET", "/lodash.merge", "npm.package.metadata", {"name": "lodash.merge"}),
    # scoped: what npm sends (%2f, either case), what yarn and browsers send (a slash)
    ("GET", "/@babel%2fcore", "npm.package.metadata", {"name": "@babel/core"}),
    ("GET", "/@babel%2Fcore", "npm.package.metadata", {"name": "@babel/core"}),
    ("GET", "/@babel/core", "npm.package.metadata", {"name": "@babel/core"}),
    ("GET", "/@types/node/20.11.0", "npm.package.metadata", {"name": "@types/node", "version": "20.11.0"}),
    # tarballs: a scoped package's file name leaves its scope out; Verdaccio's form keeps it
    ("GET", "/lodash/-/lodash-4.17.21.tgz", "npm.package.download",
     {"name": "lodash", "version": "4.17.21", "file": "lodash-4.17.21.tgz"}),
    ("GET", "/@babel/core/-/core-7.24.0.tgz", "npm.package.download",
     {"name": "@babel/core", "version": "7.24.0", "file": "core-7.24.0.tgz"}),
    ("GET", "/@babel%2fcore/-/core-7.24.0.tgz", "npm.package.download",
     {"name": "@babel/core", "version": "7.24.0", "file": "core-7.24.0.tgz"}),
    ("GET", "/@babel/core/-/@babel/core-7.24.0.tgz", "npm.package.download",
     {"name": "@babel/core", "version": "7.24.0", "file": "@babel/core-7.24.0.tgz"}),
    ("GET", "/left-pad/-/left-pad-1.3.0-beta.1.tgz", "npm.package.download",
     {"name": "left-pad", "version": "1.3.0-beta.1", "file": "left-pad-1.3.0-beta.1.tgz"}),
    ("GET", "/@scope/a.b/-/a.b-0.0.1+build.5.tgz", "npm.package.download",
     {"name": "@scope/a.b", "version": "0.0.1+build.5", "file": "a.b-0.0.1+build.5.tgz"}),
    # the registry's own endpoints
    ("GET", "/-/ping", "npm.registry.ping", {}),
    ("GET", "/-/whoami", "npm.user.read", {}),
    ("GET", "/-/v1/search", "npm.search", {}),
    ("POST", "/-/npm/v1/security/advisories/bulk", "npm.audit", {}),
    ("GET", "/-/package/@a%2fb/dist-tags", "npm.dist_tag.list", {"name": "@a/b"}),
    ("PUT", "/-/package/lodash/dist-tags/latest", "npm.dist_tag.add", {"name": "lodash", "tag": "latest"}),
    ("DELETE", "/-/package/lodash/dist-tags/next", "npm.dist_tag.remove", {"name": "lodash", "tag": "next"}),
    ("PUT", "/-/user/org.couchdb.user:alice", "npm.user.login", {"user": "org.couchdb.user:alice"}),
    ("POST", "/-/npm/v1/tokens", "npm.token.create", {}),
    ("PUT", "/lodash/-rev/12-abc", "npm.package.unpublish", {"name": "lodash", "rev": "12-abc"}),
    ("DELETE", "/@a/b/-rev/3-x", "npm.package.unpublish", {"name": "@a/b", "rev": "3-x"}),
    ("DELETE", "/lodash/-/lodash-1.0.0.tgz/-rev/3-x", "npm.package.unpublish",
     {"name": "lodash", "version": "1.0.0", "file": "lodash-1.0.0.tgz", "rev": "3-x"}),
])
def test_paths_npm_yarn_and_pnpm_request(method: str, path: str, action: str, params: dict[str, str]) -> None:
    a = NPM.classify(view(method, path))
    assert (a.name, a.connector) == (action, "npm")
    assert dict(a.params) == params


def test_search_text_is_a_param() -> None:
    v = RequestView("GET", "https", "registry.npmjs.org", 443, "/-/v1/search", query=(("text", "left pad"),))
    assert dict(NPM.classify(v).params) == {"text": "left pad"}


def test_publish_names_its_version_and_is_high_risk() -> None:
    body = {"name": "@a/b", "versions": {"1.2.3": {"name": "@a/b"}}, "_attachments": {"b-1.2.3.tgz": {}}}
    a = NPM.classify(view("PUT", "/@a%2fb", body))
    assert (a.name, a.risk, dict(a.params)) == ("npm.package.publish", "high", {"name": "@a/b", "version": "1.2.3"})


def test_a_publish_too_large_to_read_is_still_a_publish_with_its_version_unavailable() -> None:
    a = NPM.classify(view("PUT", "/lodash", None, complete=False))
    assert a.name == "npm.package.publish" and a.unavailable == {"version"}
    assert dict(a.params) == {"name": "lodash"}


def test_packument_change_without_a_tarball_is_an_update() -> None:
    body = {"name": "lodash", "versions": {"1.0.0": {"deprecated": "use x"}}}
    a = NPM.classify(view("PUT", "/lodash", body))
    assert (a.name, a.risk) == ("npm.package.update", "high")


def test_risks() -> None:
    assert NPM.classify(view("GET", "/x")).risk == "low"
    assert NPM.classify(view("GET", "/x/-/x-1.0.0.tgz")).risk == "medium"
    assert NPM.classify(view("DELETE", "/x/-rev/1")).risk == "critical"


@pytest.mark.parametrize("path", [
    "/lodash/-/evil-4.17.21.tgz",        # a tarball of another package
    "/@babel/core/-/babel-7.24.0.tgz",
    "/lodash/-/lodash-4.17.21.zip",       # no tarball
    "/lodash/-/lodash-latest.tgz",        # no version
    "/@babel",                            # a scope alone
    "/@babel/",
    "/.hidden", "/_private", "/a b",
    "/lodash%25252525252fx",              # a % that survives decoding
    "/a/b/c",                             # no layout of the registry
    "/" + "a" * 215,
])
def test_anything_else_is_unknown(path: str) -> None:
    a = NPM.classify(view("GET", path))
    assert a.name == "npm.unknown.get" and a.risk == "high"


def test_private_mirror_through_base_path() -> None:
    base = "/artifactory/api/npm/npm-remote"
    m = build_connector("corp-npm", "npm", ("corp.jfrog.io",), base_path=base)
    a = m.classify(view("GET", base + "/@corp/ui/-/ui-2.0.0.tgz", host="corp.jfrog.io"))
    assert (a.name, a.connector, a.params["name"], a.params["version"]) == (
        "npm.package.download", "corp-npm", "@corp/ui", "2.0.0")
    assert m.classify(view("GET", "/@corp/ui", host="corp.jfrog.io")).name == "npm.unknown.get"


def test_joined_makes_a_scoped_name_one_segment() -> None:
    assert joined("/@a/b/-/b-1.0.0.tgz") == "/@a%2Fb/-/b-1.0.0.tgz"
    assert joined("/lodash") == "/lodash"
    assert joined("/x%2Fy") is None


@pytest.mark.parametrize("name", ["lodash", "@types/node", "JSONStream", "a.b-c_d~e", "@a/b.c"])
def test_valid_names_are_kept_as_written(name: str) -> None:
    assert normalise(name) == name


@pytest.mark.parametrize("name", ["", ".a", "_a", "-a", "@a", "@/a", "a/b", "@a/b/c", "a b", "ä", "@a/.b"])
def test_names_npm_refuses(name: str) -> None:
    with pytest.raises(ValueError, match="not an npm package name"):
        normalise(name)


def test_yarns_registry_name_is_covered() -> None:
    assert set(NPM.hosts) == {"registry.npmjs.org", "registry.yarnpkg.com"}
    a = NPM.classify(view("GET", "/@babel/core/-/core-7.24.0.tgz", host="registry.yarnpkg.com"))
    assert a.name == "npm.package.download"
