"""The gomod connector: the module proxy protocol with case-encoded paths, and the checksum database."""

from __future__ import annotations

import pytest
from trustfence.connectors import build_connector
from trustfence.connectors.base import RequestView
from trustfence.connectors.gomod import decode, normalise

GO = build_connector("gomod", "gomod")


def view(path: str, host: str = "proxy.golang.org", method: str = "GET") -> RequestView:
    return RequestView(method, "https", host, 443, path)


@pytest.mark.parametrize(("path", "action", "params"), [
    ("/golang.org/x/mod/@v/list", "gomod.module.list", {"name": "golang.org/x/mod"}),
    ("/golang.org/x/mod/@v/v0.17.0.info", "gomod.module.info", {"name": "golang.org/x/mod", "version": "v0.17.0"}),
    ("/golang.org/x/mod/@v/v0.17.0.mod", "gomod.module.mod", {"name": "golang.org/x/mod", "version": "v0.17.0"}),
    ("/golang.org/x/mod/@v/v0.17.0.zip", "gomod.module.download",
     {"name": "golang.org/x/mod", "version": "v0.17.0", "file": "v0.17.0.zip"}),
    ("/golang.org/x/mod/@latest", "gomod.module.latest", {"name": "golang.org/x/mod"}),
    # upper case travels as !<lower>: module paths are case-sensitive
    ("/github.com/!burnt!sushi/toml/@v/v1.4.0.zip", "gomod.module.download",
     {"name": "github.com/BurntSushi/toml", "version": "v1.4.0", "file": "v1.4.0.zip"}),
    ("/github.com/!azure/azure-sdk-for-go/sdk/azcore/@v/list", "gomod.module.list",
     {"name": "github.com/Azure/azure-sdk-for-go/sdk/azcore"}),
    ("/github.com/x/y/@v/v1.0.0-!r!c1.info", "gomod.module.info",
     {"name": "github.com/x/y", "version": "v1.0.0-RC1"}),
    ("/gopkg.in/yaml.v3/@v/v3.0.1.zip", "gomod.module.download",
     {"name": "gopkg.in/yaml.v3", "version": "v3.0.1", "file": "v3.0.1.zip"}),
    ("/github.com/foo/bar/v2/@v/v2.1.0+incompatible.mod", "gomod.module.mod",
     {"name": "github.com/foo/bar/v2", "version": "v2.1.0+incompatible"}),
    ("/github.com/foo/bar/@v/master.info", "gomod.module.info", {"name": "github.com/foo/bar", "version": "master"}),
    # the checksum database through the proxy
    ("/sumdb/sum.golang.org/supported", "gomod.sumdb.read", {}),
    ("/sumdb/sum.golang.org/latest", "gomod.sumdb.read", {}),
    ("/sumdb/sum.golang.org/lookup/github.com/!burnt!sushi/toml@v1.4.0", "gomod.sumdb.lookup",
     {"name": "github.com/BurntSushi/toml", "version": "v1.4.0"}),
    ("/sumdb/sum.golang.org/tile/8/0/x089/123", "gomod.sumdb.read", {}),
])
def test_paths_go_requests(path: str, action: str, params: dict[str, str]) -> None:
    a = GO.classify(view(path))
    assert (a.name, a.connector, dict(a.params)) == (action, "gomod", params)


def test_checksum_database_direct() -> None:
    a = GO.classify(view("/lookup/golang.org/x/text@v0.14.0", "sum.golang.org"))
    assert (a.name, dict(a.params)) == ("gomod.sumdb.lookup", {"name": "golang.org/x/text", "version": "v0.14.0"})
    assert GO.classify(view("/latest", "sum.golang.org")).name == "gomod.sumdb.read"


def test_risks() -> None:
    assert GO.classify(view("/golang.org/x/mod/@v/list")).risk == "low"
    assert GO.classify(view("/golang.org/x/mod/@v/v1.0.0.zip")).risk == "medium"


@pytest.mark.parametrize("path", [
    "/github.com/BurntSushi/toml/@v/list",          # upper case not encoded
    "/github.com/!Burnt/toml/@v/list",              # ! before an upper-case letter
    "/github.com/x!/toml/@v/list",                  # ! at the end of an element
    "/github.com/x/y/@v/V1.0.0.zip",                # version not encoded
    "/localhost/x/@v/list",                         # the first element needs a dot
    "/Github.com/x/@v/list",
    "/github.com/.x/@v/list",
    "/github.com/x./@v/list",
    "/github.com/x/@v/v1.0.0.tar",                  # no file of the protocol
    "/github.com/x/@v/",
    "/github.com/x/y",
    "/lookup/github.com/x/y",                       # no @version
    "/sumdb/sum.golang.org/lookup/nope",
])
def test_anything_else_is_unknown(path: str) -> None:
    a = GO.classify(view(path))
    assert a.name == "gomod.unknown.get" and a.risk == "high"


def test_decode() -> None:
    assert decode("github.com/!burnt!sushi") == "github.com/BurntSushi"
    assert decode("plain") == "plain"
    for bad in ("Upper", "x!", "x!1", "x!!a"):
        with pytest.raises(ValueError):
            decode(bad)


def test_module_paths() -> None:
    assert normalise("github.com/BurntSushi/toml") == "github.com/BurntSushi/toml"
    for bad in ("", "nodot/x", "-x.com/y", "x.com//y", "x.com/a b", "x.com/" + "a" * 400):
        with pytest.raises(ValueError):
            normalise(bad)


def test_goproxy_mirror_through_base_path() -> None:
    m = build_connector("athens", "gomod", ("goproxy.corp.example",), base_path="/go")
    a = m.classify(view("/go/golang.org/x/mod/@v/v0.17.0.zip", "goproxy.corp.example"))
    assert (a.name, a.connector, a.params["name"]) == ("gomod.module.download", "athens", "golang.org/x/mod")
    assert m.classify(view("/golang.org/x/mod/@v/list", "goproxy.corp.example")).name == "gomod.unknown.get"
