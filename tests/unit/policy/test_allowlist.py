"""AllowList.check: a download of a package not listed is denied; nothing else is its business."""

from __future__ import annotations

from trustfence.policy.allowlist import AllowList

LIST = AllowList("pypi", "/etc/trustfence/pypi-allow.txt", frozenset({"requests", "typing-extensions"}),
                 frozenset({"pypi.package.download"}))


def test_a_listed_download_has_no_objection() -> None:
    assert LIST.check("pypi.package.download", {"name": "requests", "version": "2.31.0"}, frozenset()) is None


def test_a_download_not_listed_is_denied_naming_package_connector_and_file() -> None:
    d = LIST.check("pypi.package.download", {"name": "reqeusts", "version": "2.31.0"}, frozenset())
    assert d is not None and d.verdict == "deny" and d.rule_id == "allow_list:pypi"
    assert d.reason == ("package reqeusts is not on the allow list of connector pypi "
                        "(/etc/trustfence/pypi-allow.txt)")
    assert LIST.hint({"name": "reqeusts"}) == "add reqeusts to /etc/trustfence/pypi-allow.txt (one name per line)"


def test_a_download_whose_name_could_not_be_read_fails_closed() -> None:
    for params, unavailable in (({}, frozenset({"name"})), ({"name": "requests"}, frozenset({"name"})),
                                ({"name": 7}, frozenset())):
        d = LIST.check("pypi.package.download", params, unavailable)
        assert d is not None and d.verdict == "deny" and "could not be read" in d.reason


def test_other_actions_are_left_to_permissions_and_policies() -> None:
    for action in ("pypi.package.metadata", "pypi.package.publish", "pypi.unknown.get", "pypi.index.read"):
        assert LIST.check(action, {"name": "evil"}, frozenset()) is None


def test_an_empty_list_denies_every_download() -> None:
    empty = AllowList("npm", "/x", frozenset(), frozenset({"npm.package.download"}))
    d = empty.check("npm.package.download", {"name": "lodash"}, frozenset())
    assert d is not None and d.verdict == "deny"


def test_policies_over_packages_see_the_normalised_name() -> None:
    from trustfence.connectors import RequestView, build_connector
    from trustfence.policy import AnyOf, Facts, Permission, Policy, Rule, compile_policy, decide_request

    pypi = build_connector("pypi", "pypi")
    policy = compile_policy((Permission("Bot", "pypi", "pypi.package.*", "allow"),), (
        Policy("typosquats", "deny", "known typosquats", actions=("pypi.package.*",),
               when=AnyOf((Rule("params.name", "in", ("reqeusts", "python-dateutils")),
                           Rule("params.name", "matches", r"^tf-internal-")))),))

    def verdict(path: str, host: str = "pypi.org") -> str:
        a = pypi.classify(RequestView("GET", "https", host, 443, path))
        return decide_request(policy, Facts("Bot", a.connector, a.name, a.risk, "GET", host, path, a.params,
                                            a.unavailable)).verdict

    assert verdict("/simple/Reqeusts/") == "deny"
    assert verdict("/packages/aa/bb/python_dateutils-2.8.2-py3-none-any.whl", "files.pythonhosted.org") == "deny"
    assert verdict("/pypi/TF.Internal_Secrets/json") == "deny"
    assert verdict("/simple/requests/") == "allow"
