"""The Slack connector: Web API method table, argument sources, admin rule, webhooks, unknowns, secrets."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest
from trustfence.connectors.base import Action, RequestView, Route
from trustfence.connectors.slack import (
    ADMIN_METHODS,
    SLACK_METHODS,
    SLACK_PATH_ROUTES,
    SlackConnector,
    WebMethod,
    admin_action,
)

SL = SlackConnector("slack", SlackConnector.default_hosts)
JSON_CT = "application/json; charset=utf-8"
FORM_CT = "application/x-www-form-urlencoded"

def view(method: str, path: str, *, body: bytes = b"", ctype: str = "", query: dict[str, str] | None = None,
         host: str = "slack.com", complete: bool = True) -> RequestView:
    headers = {"content-type": ctype} if ctype else {}
    return RequestView(method=method, scheme="https", host=host, port=443, path=path,
                       query=tuple((query or {}).items()), headers=headers, body=body, body_complete=complete)


def as_json(method: str, path: str, args: dict[str, object], *, query: dict[str, str] | None = None,
            host: str = "slack.com") -> RequestView:
    return view(method, path, body=json.dumps(args).encode(), ctype=JSON_CT, query=query, host=host)


def as_form(method: str, path: str, args: dict[str, str], *, query: dict[str, str] | None = None,
            host: str = "slack.com") -> RequestView:
    return view(method, path, body=urlencode(args).encode(), ctype=FORM_CT, query=query, host=host)


def parse(v: RequestView) -> Action:
    got = SL.parse(v)
    assert got.connector == "slack"
    assert got.name in SL.actions, got.name
    return got


# (Web API method, arguments, expected action, risk, expected params)
REQUIRED: list[tuple[str, dict[str, str], str, str, dict[str, object]]] = [
    ("chat.postMessage", {"channel": "C1", "text": "hi"}, "slack.message.send", "medium", {"channel": "C1"}),
    ("chat.update", {"channel": "C1", "ts": "1.2", "text": "x"}, "slack.message.update", "medium",
     {"channel": "C1", "ts": "1.2"}),
    ("chat.delete", {"channel": "C1", "ts": "1.2"}, "slack.message.delete", "high", {"channel": "C1", "ts": "1.2"}),
    ("chat.scheduleMessage", {"channel": "C1", "post_at": "299876400", "text": "x"}, "slack.message.schedule",
     "medium", {"channel": "C1", "post_at": "299876400"}),
    ("chat.deleteScheduledMessage", {"channel": "C1", "scheduled_message_id": "Q1"},
     "slack.scheduled_message.delete", "high", {"channel": "C1", "scheduled_message_id": "Q1"}),
    ("chat.postEphemeral", {"channel": "C1", "user": "U1", "text": "psst"}, "slack.message.send_ephemeral",
     "medium", {"channel": "C1", "user": "U1"}),
    ("chat.getPermalink", {"channel": "C1", "message_ts": "1.2"}, "slack.message.permalink.read", "low",
     {"channel": "C1", "message_ts": "1.2"}),
    ("chat.meMessage", {"channel": "C1", "text": "waves"}, "slack.message.send", "medium", {"channel": "C1"}),
    ("conversations.create", {"name": "ops", "is_private": "true"}, "slack.conversation.create", "medium",
     {"name": "ops", "is_private": "true"}),
    ("conversations.archive", {"channel": "C1"}, "slack.conversation.archive", "high", {"channel": "C1"}),
    ("conversations.unarchive", {"channel": "C1"}, "slack.conversation.unarchive", "medium", {"channel": "C1"}),
    ("conversations.invite", {"channel": "C1", "users": "U1,U2"}, "slack.conversation.member.add", "high",
     {"channel": "C1", "users": "U1,U2"}),
    ("conversations.kick", {"channel": "C1", "user": "U1"}, "slack.conversation.member.remove", "high",
     {"channel": "C1", "user": "U1"}),
    ("conversations.rename", {"channel": "C1", "name": "new"}, "slack.conversation.rename", "medium",
     {"channel": "C1", "name": "new"}),
    ("conversations.setTopic", {"channel": "C1", "topic": "t"}, "slack.conversation.topic.update", "medium",
     {"channel": "C1"}),
    ("conversations.setPurpose", {"channel": "C1", "purpose": "p"}, "slack.conversation.purpose.update",
     "medium", {"channel": "C1"}),
    ("conversations.history", {"channel": "C1", "limit": "10"}, "slack.conversation.history.read", "low",
     {"channel": "C1"}),
    ("conversations.replies", {"channel": "C1", "ts": "1.2"}, "slack.conversation.replies.read", "low",
     {"channel": "C1", "ts": "1.2"}),
    ("conversations.list", {"types": "public_channel"}, "slack.conversation.list", "low",
     {"types": "public_channel"}),
    ("conversations.info", {"channel": "C1"}, "slack.conversation.read", "low", {"channel": "C1"}),
    ("conversations.members", {"channel": "C1"}, "slack.conversation.member.list", "low", {"channel": "C1"}),
    ("conversations.join", {"channel": "C1"}, "slack.conversation.join", "medium", {"channel": "C1"}),
    ("conversations.leave", {"channel": "C1"}, "slack.conversation.leave", "medium", {"channel": "C1"}),
    ("conversations.open", {"users": "U1,U2"}, "slack.conversation.open", "medium", {"users": "U1,U2"}),
    ("conversations.close", {"channel": "D1"}, "slack.conversation.close", "medium", {"channel": "D1"}),
    ("conversations.mark", {"channel": "C1", "ts": "1.2"}, "slack.conversation.mark", "medium",
     {"channel": "C1", "ts": "1.2"}),
    ("files.getUploadURLExternal", {"filename": "a.txt", "length": "3"}, "slack.file.upload_url.create",
     "medium", {"filename": "a.txt", "length": "3"}),
    ("files.completeUploadExternal", {"files": '[{"id": "F1"}]', "channel_id": "C1"}, "slack.file.upload",
     "medium", {"channel_id": "C1"}),
    ("files.upload", {"channels": "C1,C2", "content": "x", "filename": "a.txt"}, "slack.file.upload", "medium",
     {"channels": "C1,C2", "filename": "a.txt"}),
    ("files.delete", {"file": "F1"}, "slack.file.delete", "high", {"file": "F1"}),
    ("files.info", {"file": "F1"}, "slack.file.read", "low", {"file": "F1"}),
    ("files.list", {"channel": "C1", "user": "U1"}, "slack.file.list", "low", {"channel": "C1", "user": "U1"}),
    ("files.sharedPublicURL", {"file": "F1"}, "slack.file.public_url.create", "high", {"file": "F1"}),
    ("reactions.add", {"channel": "C1", "name": "tada", "timestamp": "1.2"}, "slack.reaction.add", "medium",
     {"channel": "C1", "name": "tada", "timestamp": "1.2"}),
    ("reactions.remove", {"channel": "C1", "name": "tada", "timestamp": "1.2"}, "slack.reaction.remove",
     "medium", {"channel": "C1", "name": "tada", "timestamp": "1.2"}),
    ("reactions.get", {"channel": "C1", "timestamp": "1.2"}, "slack.reaction.read", "low",
     {"channel": "C1", "timestamp": "1.2"}),
    ("reactions.list", {"user": "U1"}, "slack.reaction.list", "low", {"user": "U1"}),
    ("pins.add", {"channel": "C1", "timestamp": "1.2"}, "slack.pin.add", "medium",
     {"channel": "C1", "timestamp": "1.2"}),
    ("pins.remove", {"channel": "C1", "timestamp": "1.2"}, "slack.pin.remove", "medium",
     {"channel": "C1", "timestamp": "1.2"}),
    ("pins.list", {"channel": "C1"}, "slack.pin.list", "low", {"channel": "C1"}),
    ("bookmarks.add", {"channel_id": "C1", "title": "Docs", "type": "link", "link": "https://x.example"},
     "slack.bookmark.add", "medium",
     {"channel_id": "C1", "title": "Docs", "type": "link", "link": "https://x.example"}),
    ("bookmarks.edit", {"channel_id": "C1", "bookmark_id": "Bk1", "title": "t"}, "slack.bookmark.update",
     "medium", {"channel_id": "C1", "bookmark_id": "Bk1"}),
    ("bookmarks.remove", {"channel_id": "C1", "bookmark_id": "Bk1"}, "slack.bookmark.remove", "medium",
     {"channel_id": "C1", "bookmark_id": "Bk1"}),
    ("bookmarks.list", {"channel_id": "C1"}, "slack.bookmark.list", "low", {"channel_id": "C1"}),
    ("users.list", {"limit": "100"}, "slack.user.list", "low", {}),
    ("users.info", {"user": "U1"}, "slack.user.read", "low", {"user": "U1"}),
    ("users.lookupByEmail", {"email": "a@example.com"}, "slack.user.read", "low", {"email": "a@example.com"}),
    ("users.conversations", {"user": "U1"}, "slack.user.conversation.list", "low", {"user": "U1"}),
    ("users.getPresence", {"user": "U1"}, "slack.user.presence.read", "low", {"user": "U1"}),
    ("users.profile.get", {"user": "U1"}, "slack.user.profile.read", "low", {"user": "U1"}),
    ("users.profile.set", {"user": "U1", "name": "title", "value": "x"}, "slack.user.profile.update", "medium",
     {"user": "U1", "name": "title"}),
    ("usergroups.create", {"name": "oncall", "handle": "oncall"}, "slack.usergroup.create", "medium",
     {"name": "oncall", "handle": "oncall"}),
    ("usergroups.update", {"usergroup": "S1", "name": "n"}, "slack.usergroup.update", "medium",
     {"usergroup": "S1", "name": "n"}),
    ("usergroups.list", {}, "slack.usergroup.list", "low", {}),
    ("usergroups.users.update", {"usergroup": "S1", "users": "U1,U2"}, "slack.usergroup.member.update", "high",
     {"usergroup": "S1", "users": "U1,U2"}),
    ("usergroups.disable", {"usergroup": "S1"}, "slack.usergroup.disable", "high", {"usergroup": "S1"}),
    ("usergroups.enable", {"usergroup": "S1"}, "slack.usergroup.enable", "medium", {"usergroup": "S1"}),
    ("team.info", {}, "slack.team.read", "low", {}),
    ("auth.test", {}, "slack.auth.test", "low", {}),
    ("admin.users.remove", {"team_id": "T1", "user_id": "U1"}, "slack.admin.users.remove", "high",
     {"team_id": "T1", "user_id": "U1"}),
    ("admin.conversations.delete", {"channel_id": "C1"}, "slack.admin.conversations.delete", "high",
     {"channel_id": "C1"}),
    ("admin.users.setAdmin", {"team_id": "T1", "user_id": "U1"}, "slack.admin.users.set_admin", "high",
     {"team_id": "T1", "user_id": "U1"}),
]

REQUIRED_METHODS = {m for m, _, _, _, _ in REQUIRED}


@pytest.mark.parametrize(("api", "args", "action", "risk", "params"), REQUIRED,
                         ids=[f"{m} -> {a}" for m, _, a, _, _ in REQUIRED])
@pytest.mark.parametrize("encoding", ["form", "json", "query-get", "query-post"])
def test_required_methods(api: str, args: dict[str, str], action: str, risk: str, params: dict[str, object],
                          encoding: str) -> None:
    path = f"/api/{api}"
    if encoding == "form":
        v = as_form("POST", path, args)
    elif encoding == "json":
        v = as_json("POST", path, dict(args))
    elif encoding == "query-get":
        v = view("GET", path, query=args)
    else:
        v = view("POST", path, query=args)
    got = parse(v)
    assert (got.name, got.risk) == (action, risk)
    assert dict(got.params) == params
    assert got.unavailable == frozenset()


def test_required_list_is_broad() -> None:
    assert len(REQUIRED_METHODS) >= 40
    assert REQUIRED_METHODS <= {m.name for m in SLACK_METHODS}


@pytest.mark.parametrize("method", SLACK_METHODS, ids=[m.name for m in SLACK_METHODS])
@pytest.mark.parametrize("http", ["GET", "POST"])
def test_every_method_is_reachable(method: WebMethod, http: str) -> None:
    """Each row is found by its own name, by GET or POST, and no row shadows another."""
    got = parse(view(http, f"/api/{method.name}"))
    assert (got.name, got.risk) == (f"slack.{method.action}", method.risk)
    assert dict(got.params) == {}


def _sample_path(template: str) -> str:
    path = re.sub(r"\{[^}]+\+\}", "a1/b2", template)
    return re.sub(r"\{[^}]+\}", "T9X", path)


@pytest.mark.parametrize("route", SLACK_PATH_ROUTES, ids=[f"{r.method} {r.template}" for r in SLACK_PATH_ROUTES])
def test_every_path_route_is_reachable(route: Route) -> None:
    got = parse(view(route.method, _sample_path(route.template), host="hooks.slack.com"))
    assert (got.name, got.risk) == (f"slack.{route.action}", route.risk)


# --- argument sources ---------------------------------------------------------------------------------------

def test_sdk_style_json_post() -> None:
    """slack_sdk sends chat.postMessage as JSON with ``application/json;charset=utf-8``."""
    v = view("POST", "/api/chat.postMessage", ctype="application/json;charset=utf-8",
             body=b'{"channel": "C0123", "text": "hello", "blocks": [{"type": "section"}], "thread_ts": "9.9"}')
    got = parse(v)
    assert got.name == "slack.message.send"
    assert dict(got.params) == {"channel": "C0123", "thread_ts": "9.9"}


def test_multipart_legacy_upload() -> None:
    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"channels\"\r\n\r\nC1,C2\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\nsecret contents\r\n--{boundary}--\r\n").encode()
    got = parse(view("POST", "/api/files.upload", body=body, ctype=f"multipart/form-data; boundary={boundary}"))
    assert got.name == "slack.file.upload"
    assert dict(got.params) == {"channels": "C1,C2"}
    assert "secret contents" not in repr(got)


def test_query_and_body_combine() -> None:
    got = parse(as_form("POST", "/api/chat.update", {"ts": "1.2"}, query={"channel": "C1"}))
    assert dict(got.params) == {"channel": "C1", "ts": "1.2"}
    assert got.unavailable == frozenset()


def test_conflicting_sources_are_unavailable() -> None:
    """Query and body disagree: which one Slack acts on is not guessed."""
    query, body = {"channel": "C1"}, {"channel": "C2"}
    for v in (as_form("POST", "/api/chat.postMessage", body, query=query),
              as_json("POST", "/api/chat.postMessage", dict(body), query=query)):
        got = parse(v)
        assert got.name == "slack.message.send"
        assert "channel" not in got.params
        assert got.unavailable == frozenset({"channel"})


def test_repeated_query_values_are_unavailable() -> None:
    v = RequestView(method="GET", scheme="https", host="slack.com", port=443, path="/api/chat.postMessage",
                    query=(("channel", "C1"), ("channel", "C2")))
    got = parse(v)
    assert got.unavailable == frozenset({"channel"})
    same = RequestView(method="GET", scheme="https", host="slack.com", port=443, path="/api/chat.postMessage",
                       query=(("channel", "C1"), ("channel", "C1")))
    assert dict(parse(same).params) == {"channel": "C1"}


def test_agreeing_sources_are_fine() -> None:
    got = parse(as_json("POST", "/api/chat.delete", {"channel": "C1", "ts": "1.2"}, query={"channel": "C1"}))
    assert dict(got.params) == {"channel": "C1", "ts": "1.2"}
    assert got.unavailable == frozenset()


def test_non_string_json_value_against_query_is_unavailable() -> None:
    got = parse(as_json("POST", "/api/files.getUploadURLExternal", {"filename": "a", "length": 3},
                        query={"length": "3"}))
    assert got.unavailable == frozenset({"length"})
    assert dict(got.params) == {"filename": "a"}


@pytest.mark.parametrize("v", [
    view("POST", "/api/chat.delete", body=b'{"channel": "C1", "ts"', ctype=JSON_CT),         # malformed JSON
    view("POST", "/api/chat.delete", body=b'["C1"]', ctype=JSON_CT),                          # not an object
    view("POST", "/api/chat.delete", body=b"\xff\xfe", ctype=FORM_CT),                        # not UTF-8
    view("POST", "/api/chat.delete", body=b'{"channel": "C1", "ts": "1.2"}', ctype=JSON_CT,   # truncated
         complete=False),
    view("POST", "/api/chat.delete", body=b"", complete=False),                               # cut before any byte
    view("POST", "/api/chat.delete", body=b"channel=C1&ts=1.2", ctype=JSON_CT),               # mislabelled form
], ids=["malformed", "array", "not-utf8", "truncated", "empty-truncated", "mislabelled"])
def test_unreadable_body_keeps_action_and_marks_params(v: RequestView) -> None:
    got = parse(v)
    assert (got.name, got.risk) == ("slack.message.delete", "high")
    assert got.unavailable == frozenset({"channel", "ts"})
    assert dict(got.params) == {}


def test_unreadable_body_hides_query_values_too() -> None:
    """The body might name another channel, so a query value alone is not trusted."""
    got = parse(view("POST", "/api/chat.postMessage", query={"channel": "C1"}, body=b"{", ctype=JSON_CT))
    assert got.unavailable == frozenset({"channel", "thread_ts"})
    assert "channel" not in got.params


def test_token_and_content_never_copied() -> None:
    got = parse(as_form("POST", "/api/chat.postMessage",
                        {"token": "xoxb-1-2-abc", "channel": "C1", "text": "do not log me"}))
    assert dict(got.params) == {"channel": "C1"}
    assert "xoxb" not in repr(got) and "do not log me" not in repr(got)


# --- method names -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "action"), [
    ("/api/chat.postMessage/", "slack.message.send"),          # trailing slash
    ("/api/CHAT.POSTMESSAGE", "slack.message.send"),           # case is not relied on
    ("/api/Conversations.Kick", "slack.conversation.member.remove"),
    ("/api/files.completeUploadExternal", "slack.file.upload"),
    ("/api/chat.startStream", "slack.message.send"),
    ("/api/oauth.v2.access", "slack.oauth.token.create"),
    ("/api/apps.connections.open", "slack.app.connection.open"),
])
def test_method_name_forms(path: str, action: str) -> None:
    assert parse(view("POST", path)).name == action


def test_classify_normalises_encoding_and_method() -> None:
    got = SL.classify(view("post", "/api/chat%2Edelete", query={"channel": "C1", "ts": "1.2"}))
    assert got.name == "slack.message.delete"
    assert dict(got.params) == {"channel": "C1", "ts": "1.2"}
    assert SL.classify(view("POST", "//api/./chat.postMessage")).name == "slack.message.send"


# --- admin --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "action"), [
    ("admin.users.setAdmin", "admin.users.set_admin"),
    ("admin.conversations.setConversationPrefs", "admin.conversations.set_conversation_prefs"),
    ("admin.inviteRequests.approve", "admin.invite_requests.approve"),
    ("admin.users.session.reset", "admin.users.session.reset"),
    ("admin.teams.settings.setDefaultChannels", "admin.teams.settings.set_default_channels"),
])
def test_admin_action_rule(method: str, action: str) -> None:
    assert admin_action(method) == action


def test_every_admin_method_is_high() -> None:
    assert len(ADMIN_METHODS) >= 40
    for name in ADMIN_METHODS:
        got = parse(view("POST", f"/api/{name}"))
        assert got.name == f"slack.{admin_action(name)}"
        assert got.risk == "high"


@pytest.mark.parametrize("method", ["admin.analytics.getFile", "admin.apps.config.set", "ADMIN.Foo", "admin.x"])
def test_other_admin_methods(method: str) -> None:
    got = parse(as_form("POST", f"/api/{method}", {"channel_id": "C9", "token": "xoxp-secret"}))
    assert (got.name, got.risk) == ("slack.admin.other", "high")
    assert dict(got.params) == {"api_method": method, "channel_id": "C9"}


# --- webhooks and file transfer -----------------------------------------------------------------------------

HOOK_SECRET = "bC3dE4fG5hI6jK7lM8nO9pQ0"


def test_incoming_webhook() -> None:
    v = as_json("POST", f"/services/T0AB12CD3/B0EF45GH6/{HOOK_SECRET}", {"text": "deploy done", "channel": "#x"},
                host="hooks.slack.com")
    got = parse(v)
    assert (got.name, got.risk) == ("slack.webhook.send", "high")
    assert dict(got.params) == {"team_id": "T0AB12CD3"}
    assert HOOK_SECRET not in repr(got) and "B0EF45GH6" not in repr(got)


def test_webhook_team_id_only_when_it_looks_like_one() -> None:
    got = parse(view("POST", f"/services/{HOOK_SECRET}/B1/{HOOK_SECRET}", host="hooks.slack.com"))
    assert got.name == "slack.webhook.send"
    assert dict(got.params) == {}


@pytest.mark.parametrize("path", [f"/triggers/T0AB12CD3/1234567890/{HOOK_SECRET}",
                                  f"/workflows/T0AB12CD3/A0123/4567/{HOOK_SECRET}"])
def test_workflow_triggers(path: str) -> None:
    got = parse(as_json("POST", path, {"key": "value"}, host="hooks.slack.com"))
    assert (got.name, got.risk) == ("slack.webhook.trigger", "high")
    assert dict(got.params) == {"team_id": "T0AB12CD3"}
    assert HOOK_SECRET not in repr(got)


def test_file_transfer_legs() -> None:
    up = parse(view("POST", f"/upload/v1/{HOOK_SECRET}", body=b"bytes", host="files.slack.com"))
    assert (up.name, up.risk, dict(up.params)) == ("slack.file.content.upload", "medium", {})
    down = parse(view("GET", "/files-pri/T0AB12CD3-F0123/report.pdf", host="files.slack.com"))
    assert (down.name, down.risk, dict(down.params)) == ("slack.file.download", "low", {})


@pytest.mark.parametrize(("method", "path", "shown"), [
    ("GET", f"/services/T0AB12CD3/B0EF45GH6/{HOOK_SECRET}", "/services/*/*/*"),
    ("POST", f"/services/T0AB12CD3/{HOOK_SECRET}", "/services/*/*"),
    ("POST", f"/services/T0AB12CD3/B0EF45GH6/{HOOK_SECRET}/extra", "/services/*/*/*/*"),
    ("PUT", f"/triggers/T0AB12CD3/{HOOK_SECRET}", "/triggers/*/*"),
    ("GET", f"/upload/v1/{HOOK_SECRET}", "/upload/*/*"),
    ("POST", f"/Services/T0AB12CD3/B0EF45GH6/{HOOK_SECRET}", "/Services/*/*/*"),
])
def test_unknown_on_secret_paths_is_masked(method: str, path: str, shown: str) -> None:
    got = parse(view(method, path, host="hooks.slack.com"))
    assert (got.name, got.risk) == (f"slack.unknown.{method.lower()}", "high")
    assert dict(got.params) == {"method": method, "path": shown}
    assert HOOK_SECRET not in repr(got)


def test_shared_classifiers_record_the_masked_path() -> None:
    """A WebSocket upgrade is decided before ``parse``; it still records the webhook path masked."""
    v = RequestView(method="GET", scheme="https", host="hooks.slack.com", port=443,
                    path=f"/services/T0AB12CD3/B0EF45GH6/{HOOK_SECRET}", headers={"upgrade": "websocket"})
    got = SL.classify(v)
    assert (got.name, got.params["path"]) == ("slack.websocket.open", "/services/*/*/*")
    assert HOOK_SECRET not in repr(got.params)
    assert got.name in SL.all_actions
    assert SL.param_path("/api/chat.postMessage") == "/api/chat.postMessage"


# --- unknowns -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "params"), [
    ("POST", "/api/foo.bar", {"api_method": "foo.bar"}),
    ("GET", "/api/chat.nonexistent", {"api_method": "chat.nonexistent"}),
    ("PUT", "/api/chat.postMessage", {"api_method": "chat.postMessage"}),       # only GET and POST call methods
    ("DELETE", "/api/chat.delete", {"api_method": "chat.delete"}),
    ("HEAD", "/api/auth.test", {"api_method": "auth.test"}),
    ("OPTIONS", "/api/auth.test", {"api_method": "auth.test"}),
    ("PATCH", "/api/auth.test", {"api_method": "auth.test"}),
    ("GET", "/", {}),
    ("GET", "/api", {}),
    ("GET", "/api/", {}),
    ("POST", "/api/chat.postMessage/extra", {}),
    ("GET", "/messages/C123", {}),
    ("POST", "/services", {}),
])
def test_unknown(method: str, path: str, params: dict[str, str]) -> None:
    got = parse(as_form(method, path, {"channel": "C1"}))
    assert (got.name, got.risk) == (f"slack.unknown.{method.lower()}", "high")
    assert dict(got.params) == {"method": method, "path": path, **params}


def test_unknown_other_method() -> None:
    got = parse(view("TRACE", "/api/auth.test"))
    assert (got.name, got.risk) == ("slack.unknown.other", "high")
    assert dict(got.params) == {"method": "TRACE", "path": "/api/auth.test", "api_method": "auth.test"}


# --- the table itself ---------------------------------------------------------------------------------------

def test_class_attributes() -> None:
    assert SlackConnector.type_name == "slack"
    assert SlackConnector.namespace == "slack"
    assert SlackConnector.default_hosts == ("slack.com", "api.slack.com", "hooks.slack.com", "files.slack.com")
    assert SlackConnector("s", ("Slack.COM",)).hosts == ("slack.com",)


def test_method_table_is_consistent() -> None:
    names = [m.name.lower() for m in SLACK_METHODS]
    assert len(names) == len(set(names)), "a method listed twice would shadow its twin"
    assert len([m for m in SLACK_METHODS if not m.name.startswith("admin.")]) >= 40
    for m in SLACK_METHODS:
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", m.action), m
        assert m.risk in ("low", "medium", "high", "critical"), m
        if m.action.endswith((".list", ".read")) and not m.name.startswith("admin."):
            assert m.risk == "low", m  # admin reads stay high: every admin method is
        if m.action.endswith(".delete"):
            assert m.risk in ("high", "critical"), m
        if m.name.startswith("admin."):
            assert (m.action, m.risk) == (admin_action(m.name), "high"), m


def test_actions_is_exactly_what_the_tables_give() -> None:
    expected = ({f"slack.{m.action}" for m in SLACK_METHODS} | {f"slack.{r.action}" for r in SLACK_PATH_ROUTES}
                | {"slack.admin.other"}
                | {f"slack.unknown.{m}" for m in ("get", "head", "options", "post", "put", "patch", "delete",
                                                  "other")})
    assert SL.actions == expected
    assert all(a.startswith("slack.") for a in SL.actions)


def test_actions_are_exactly_what_parse_emits() -> None:
    """``actions`` lists nothing ``parse`` cannot emit, and ``parse`` emits nothing ``actions`` leaves out."""
    samples = [view(h, f"/api/{m.name}") for m in SLACK_METHODS for h in ("GET", "POST")]
    samples += [view(r.method, _sample_path(r.template)) for r in SLACK_PATH_ROUTES]
    samples += [view("POST", "/api/admin.not.listed"), view("TRACE", "/")]
    samples += [view(h, p) for h in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
                for p in ("/nowhere", "/api/no.such", "/api/chat.postMessage", "/services/T1/B2/S3")]
    emitted = {SL.parse(v).name for v in samples}
    assert emitted == SL.actions
