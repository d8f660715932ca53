"""The PyPI connector: the paths pip, uv and twine request, names normalised by PEP 503, files parsed."""

from __future__ import annotations

import pytest
from trustfence.connectors import build_connector
from trustfence.connectors.base import RequestView
from trustfence.connectors.pypi import PyPIConnector, distribution, normalise

PYPI = build_connector("pypi", "pypi")
FILES = "files.pythonhosted.org"
H = "/packages/8a/ab/0123456789abcdef0123456789abcdef/"


def view(method: str, path: str, host: str = "pypi.org", body: bytes = b"", ctype: str = "",
         complete: bool = True) -> RequestView:
    return RequestView(method, "https", host, 443, path, headers={"content-type": ctype} if ctype else {},
                       body=body, body_complete=complete)


@pytest.mark.parametrize(("path", "host", "action", "params"), [
    ("/simple/", "pypi.org", "pypi.index.read", {}),
    ("/simple/requests/", "pypi.org", "pypi.package.metadata", {"name": "requests"}),
    ("/simple/Django/", "pypi.org", "pypi.package.metadata", {"name": "django"}),
    ("/simple/zope.interface/", "pypi.org", "pypi.package.metadata", {"name": "zope-interface"}),
    ("/simple/Foo__Bar.-baz/", "pypi.org", "pypi.package.metadata", {"name": "foo-bar-baz"}),
    ("/simple/typing_extensions", "pypi.org", "pypi.package.metadata", {"name": "typing-extensions"}),
    ("/pypi/requests/json", "pypi.org", "pypi.package.metadata", {"name": "requests"}),
    ("/pypi/Requests/2.31.0/json", "pypi.org", "pypi.package.metadata", {"name": "requests", "version": "2.31.0"}),
    ("/project/ruamel.yaml/", "pypi.org", "pypi.package.metadata", {"name": "ruamel-yaml"}),
    ("/project/numpy/2.0.0rc1/", "pypi.org", "pypi.package.metadata", {"name": "numpy", "version": "2.0.0rc1"}),
    # wheels: build tags, compound tags, names with dots and underscores (wheel names carry underscores)
    (H + "requests-2.31.0-py3-none-any.whl", FILES, "pypi.package.download",
     {"name": "requests", "version": "2.31.0", "file": "requests-2.31.0-py3-none-any.whl"}),
    (H + "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", FILES,
     "pypi.package.download", {"name": "numpy", "version": "1.26.4",
                               "file": "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"}),
    (H + "typing_extensions-4.12.2-py3-none-any.whl", FILES, "pypi.package.download",
     {"name": "typing-extensions", "version": "4.12.2", "file": "typing_extensions-4.12.2-py3-none-any.whl"}),
    (H + "zope.interface-6.4-1-cp312-cp312-win_amd64.whl", FILES, "pypi.package.download",
     {"name": "zope-interface", "version": "6.4", "file": "zope.interface-6.4-1-cp312-cp312-win_amd64.whl"}),
    (H + "Pillow-10.3.0-123abc-cp39-cp39-macosx_10_10_x86_64.whl", FILES, "pypi.package.download",
     {"name": "pillow", "version": "10.3.0", "file": "Pillow-10.3.0-123abc-cp39-cp39-macosx_10_10_x86_64.whl"}),
    # sdists: .tar.gz, .zip, legacy names with dashes, epochs and local versions
    (H + "python-dateutil-2.8.2.tar.gz", FILES, "pypi.package.download",
     {"name": "python-dateutil", "version": "2.8.2", "file": "python-dateutil-2.8.2.tar.gz"}),
    (H + "python_dateutil-2.9.0.post0.tar.gz", FILES, "pypi.package.download",
     {"name": "python-dateutil", "version": "2.9.0.post0", "file": "python_dateutil-2.9.0.post0.tar.gz"}),
    (H + "Django-1.11.29.zip", FILES, "pypi.package.download",
     {"name": "django", "version": "1.11.29", "file": "Django-1.11.29.zip"}),
    (H + "pyyaml-6.0.1.tar.bz2", FILES, "pypi.package.download",
     {"name": "pyyaml", "version": "6.0.1", "file": "pyyaml-6.0.1.tar.bz2"}),
    ("/packages/source/r/requests/requests-2.0.0.tar.gz", FILES, "pypi.package.download",
     {"name": "requests", "version": "2.0.0", "file": "requests-2.0.0.tar.gz"}),
    (H + "setuptools-0.6c11-py2.7.egg", FILES, "pypi.package.download",
     {"name": "setuptools", "version": "0.6c11", "file": "setuptools-0.6c11-py2.7.egg"}),
    # PEP 658: the metadata of one distribution, served beside it
    (H + "requests-2.31.0-py3-none-any.whl.metadata", FILES, "pypi.package.metadata",
     {"name": "requests", "version": "2.31.0", "file": "requests-2.31.0-py3-none-any.whl"}),
    ("/search/", "pypi.org", "pypi.search", {}),
])
def test_paths_pip_and_uv_request(path: str, host: str, action: str, params: dict[str, str]) -> None:
    a = PYPI.classify(view("GET", path, host))
    assert a.name == action and a.connector == "pypi"
    assert dict(a.params) == params


def test_risks() -> None:
    assert PYPI.classify(view("GET", "/simple/x/")).risk == "low"
    assert PYPI.classify(view("GET", H + "x-1.0.tar.gz", FILES)).risk == "medium"
    assert PYPI.classify(view("POST", "/legacy/", "upload.pypi.org")).risk == "high"


@pytest.mark.parametrize("path", [
    H + "README.txt",                     # no distribution
    H + "requests-2.31.0.whl",            # too few wheel parts
    H + "requests-2.31.0-x-y-py3-none-any.whl",  # too many
    H + "requests-2.31.0-build-py3-none-any.whl",  # a build tag begins with a digit
    H + "requests-latest.tar.gz",         # no version
    H + "requests.tar.gz",
    H + "-1.0.tar.gz",                    # no name
    H + "foo!bar-1.0.tar.gz",             # a name PEP 508 refuses
    "/simple/-foo/", "/simple/foo-/", "/simple/a b/",
    "/simple/" + "a" * 201 + "/",
    "/pypi/requests/1.0 beta/json",
    "/packages/requests-2.31.0-py3-none-any.whl",  # a file with no directory is no files-host layout
    "/stats/", "/rss/updates.xml",
])
def test_anything_else_is_unknown(path: str) -> None:
    a = PYPI.classify(view("GET", path, FILES))
    assert a.name == "pypi.unknown.get" and a.risk == "high"


def test_upload_is_a_publish_with_its_form_fields() -> None:
    body = (b'--b\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
            b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nMy_Pkg\r\n'
            b'--b\r\nContent-Disposition: form-data; name="version"\r\n\r\n1.2.0\r\n'
            b'--b\r\nContent-Disposition: form-data; name="content"; filename="my_pkg-1.2.0.tar.gz"\r\n\r\n'
            b'\x1f\x8b...\r\n--b--\r\n')
    a = PYPI.classify(view("POST", "/legacy/", "upload.pypi.org", body, "multipart/form-data; boundary=b"))
    assert a.name == "pypi.package.publish" and a.risk == "high"
    assert dict(a.params) == {"name": "my-pkg", "version": "1.2.0"}


def test_upload_beyond_the_inspection_bound_leaves_its_name_unavailable() -> None:
    a = PYPI.classify(view("POST", "/legacy/", "upload.pypi.org", b"--b\r\n", "multipart/form-data; boundary=b",
                           complete=False))
    assert a.name == "pypi.package.publish" and a.unavailable == {"name", "version"}


def test_upload_without_a_name_is_unknown() -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="version"\r\n\r\n1.0\r\n--b--\r\n'
    assert PYPI.classify(view("POST", "/legacy/", "upload.pypi.org", body,
                              "multipart/form-data; boundary=b")).name == "pypi.unknown.post"


def test_encoded_paths_are_read_decoded() -> None:
    a = PYPI.classify(view("GET", "/simple/%72equests/"))
    assert a.name == "pypi.package.metadata" and a.params["name"] == "requests"
    a = PYPI.classify(view("GET", "/packages/ab/../ab/cd/requests-1.0-py3-none-any.whl", FILES))
    assert a.params["name"] == "requests"


def test_other_methods_are_unknown() -> None:
    assert PYPI.classify(view("DELETE", "/simple/requests/")).name == "pypi.unknown.delete"
    assert PYPI.classify(view("PUT", H + "x-1.0.tar.gz", FILES)).name == "pypi.unknown.put"


@pytest.mark.parametrize(("base", "index", "file"), [
    ("/artifactory/api/pypi/pypi-remote", "/artifactory/api/pypi/pypi-remote/simple/requests/",
     "/artifactory/api/pypi/pypi-remote/packages/packages/8a/ab/0123/requests-2.31.0-py3-none-any.whl"),
    ("/repository/pypi-proxy/", "/repository/pypi-proxy/simple/requests/",
     "/repository/pypi-proxy/packages/requests/2.31.0/requests-2.31.0-py3-none-any.whl"),
    ("/root/pypi", "/root/pypi/+simple/requests/", "/root/pypi/+f/8a1/b2c3/requests-2.31.0-py3-none-any.whl"),
])
def test_private_mirror_through_base_path(base: str, index: str, file: str) -> None:
    mirror = build_connector("corp", "pypi", ("pypi.corp.example",), base_path=base)
    assert mirror.hosts == ("pypi.corp.example",)
    a = mirror.classify(view("GET", index, "pypi.corp.example"))
    assert (a.name, a.connector, dict(a.params)) == ("pypi.package.metadata", "corp", {"name": "requests"})
    a = mirror.classify(view("GET", file, "pypi.corp.example"))
    assert a.name == "pypi.package.download" and a.params["version"] == "2.31.0"
    assert mirror.classify(view("GET", "/simple/requests/", "pypi.corp.example")).name == "pypi.unknown.get"


def test_default_hosts_and_download_actions() -> None:
    assert set(PYPI.hosts) == {"pypi.org", "files.pythonhosted.org", "upload.pypi.org"}
    assert PyPIConnector.download_actions <= PYPI.actions


@pytest.mark.parametrize(("raw", "name"), [("Foo", "foo"), ("foo.bar", "foo-bar"), ("foo__bar", "foo-bar"),
                                           ("Foo-_.Bar", "foo-bar"), ("a", "a"), ("x1", "x1")])
def test_pep_503(raw: str, name: str) -> None:
    assert normalise(raw) == name


@pytest.mark.parametrize("raw", ["", "-a", "a-", ".a", "a b", "a/b", "ä", "a\n"])
def test_names_pep_508_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match="not a Python package name"):
        normalise(raw)


def test_distribution() -> None:
    assert distribution("foo_bar-1.0-py3-none-any.whl") == ("foo_bar", "1.0")
    assert distribution("foo-bar-1.0.tar.gz") == ("foo-bar", "1.0")
    assert distribution("foo-1!2.0+local.1.tar.gz") == ("foo", "1!2.0+local.1")
    assert distribution("FOO-1.0.TAR.GZ") == ("FOO", "1.0")
    assert distribution("foo-1.0.exe") is None
