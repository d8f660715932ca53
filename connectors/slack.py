"""The Slack connector: Web API calls, incoming webhooks and file uploads become ``slack.<resource>.<verb>``.

The Web API is RPC-shaped: every call is ``/api/<method>`` (``/api/chat.postMessage``), sent as GET or POST,
with arguments in the query string, a form-encoded, multipart or JSON body (the official SDKs POST nearly
everything, reads included). The path names the operation, so the table here, ``SLACK_METHODS``, maps Web API
method names to actions rather than path templates, and the HTTP method plays no part: a GET and a POST of
``conversations.list`` are the same read. Names are matched without regard to case; if Slack is stricter the
request fails upstream, so the looser match can only name a request by what it asks for.

``admin.*`` methods follow one rule: ``slack.admin.`` plus the rest of the method name, dots kept and each
camelCase part turned to snake_case (``admin.users.setAdmin`` -> ``slack.admin.users.set_admin``). The ones in
``ADMIN_METHODS`` are listed in ``actions``; any other admin method is ``slack.admin.other`` with its name in
``api_method``. Every admin action is high risk.

Three shapes are not Web API methods and live in ``SLACK_PATH_ROUTES``: incoming webhooks
(``POST /services/T…/B…/<secret>`` on hooks.slack.com), Workflow Builder webhook triggers, and the two legs of
file transfer on files.slack.com (the upload URL handed out by ``files.getUploadURLExternal``, and private
downloads). Their paths are credentials: only a team id is kept as a parameter, and an unknown request on such
a path is recorded with every segment after the first masked. The shapes never overlap, so the path alone
decides which applies; a connector configured for another host (a test double, a relay) still reads them.

Risk: reads are ``low``; message sends, edits and other writes ``medium``; deletes, archiving, membership
changes, making a file public, tokens and webhooks ``high``. Removing one's own reaction, pin or bookmark is
``medium``: it undoes an add and destroys nothing.

Parameters (``channel``, ``users``, ``name`` ...) are read from the query string and the body alike, because
Slack accepts either. A parameter given twice with different values is ambiguous and so marked unavailable,
as is every wanted parameter when the body cannot be read: a policy condition on it then fails closed.
Anything else on a covered host is ``slack.unknown.<method>`` (high).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from trustfence.connectors.base import Action, Connector, RequestView, Risk, Route, Router, body_fields
from trustfence.connectors.protocols import unknown_action, unknown_actions

__all__ = ["ADMIN_METHODS", "SLACK_METHODS", "SLACK_PATH_ROUTES", "SlackConnector", "WebMethod", "admin_action"]

_NS = "slack"


@dataclass(frozen=True, slots=True)
class WebMethod:
    """One row of the Web API table.

    ``name``: the Slack method (``chat.postMessage``). ``action``: the verb part after the namespace
    (``message.send``). ``risk``: as for a ``Route``. ``params``: arguments copied into the Action when present,
    from the query string or the body (``("channel", "ts")``); leaving it empty copies nothing.
    """

    name: str
    action: str
    risk: Risk
    params: tuple[str, ...] = ()


_CH = ("channel",)
_CH_TS = ("channel", "ts")
_ITEM = ("channel", "timestamp")  # reactions and pins point at a message by channel and timestamp
_BOOKMARK = ("channel_id", "bookmark_id")
_ADMIN_PARAMS = ("team_id", "channel_id", "channel_ids", "user_id", "user_ids", "email", "name", "app_id")

_CORE_METHODS: tuple[WebMethod, ...] = (
    # --- messages ---
    WebMethod("chat.postMessage", "message.send", "medium", ("channel", "thread_ts")),
    WebMethod("chat.meMessage", "message.send", "medium", _CH),
    WebMethod("chat.startStream", "message.send", "medium", ("channel", "thread_ts")),
    WebMethod("chat.postEphemeral", "message.send_ephemeral", "medium", ("channel", "user", "thread_ts")),
    WebMethod("chat.scheduleMessage", "message.schedule", "medium", ("channel", "post_at", "thread_ts")),
    WebMethod("chat.update", "message.update", "medium", _CH_TS),
    WebMethod("chat.appendStream", "message.update", "medium", _CH_TS),
    WebMethod("chat.stopStream", "message.update", "medium", _CH_TS),
    WebMethod("chat.unfurl", "message.unfurl", "medium", _CH_TS),
    WebMethod("chat.delete", "message.delete", "high", _CH_TS),
    WebMethod("chat.getPermalink", "message.permalink.read", "low", ("channel", "message_ts")),
    WebMethod("chat.scheduledMessages.list", "scheduled_message.list", "low", _CH),
    WebMethod("chat.deleteScheduledMessage", "scheduled_message.delete", "high",
              ("channel", "scheduled_message_id")),
    # --- conversations ---
    WebMethod("conversations.list", "conversation.list", "low", ("types", "team_id")),
    WebMethod("conversations.info", "conversation.read", "low", _CH),
    WebMethod("conversations.history", "conversation.history.read", "low", _CH),
    WebMethod("conversations.replies", "conversation.replies.read", "low", _CH_TS),
    WebMethod("conversations.members", "conversation.member.list", "low", _CH),
    WebMethod("conversations.create", "conversation.create", "medium", ("name", "is_private", "team_id")),
    WebMethod("conversations.rename", "conversation.rename", "medium", ("channel", "name")),
    WebMethod("conversations.setTopic", "conversation.topic.update", "medium", _CH),
    WebMethod("conversations.setPurpose", "conversation.purpose.update", "medium", _CH),
    WebMethod("conversations.join", "conversation.join", "medium", _CH),
    WebMethod("conversations.leave", "conversation.leave", "medium", _CH),
    WebMethod("conversations.open", "conversation.open", "medium", ("channel", "users")),
    WebMethod("conversations.close", "conversation.close", "medium", _CH),
    # marking read hides unread messages from the human who owns the token: a write, not a read
    WebMethod("conversations.mark", "conversation.mark", "medium", _CH_TS),
    WebMethod("conversations.unarchive", "conversation.unarchive", "medium", _CH),
    WebMethod("conversations.archive", "conversation.archive", "high", _CH),
    WebMethod("conversations.invite", "conversation.member.add", "high", ("channel", "users")),
    WebMethod("conversations.kick", "conversation.member.remove", "high", ("channel", "user")),
    WebMethod("conversations.inviteShared", "conversation.share", "high", ("channel", "emails", "user_ids")),
    # --- files: legacy upload, the v2 flow (URL, bytes to files.slack.com, completion), sharing ---
    WebMethod("files.list", "file.list", "low", ("channel", "user")),
    WebMethod("files.info", "file.read", "low", ("file",)),
    WebMethod("files.upload", "file.upload", "medium", ("channels", "filename", "title", "thread_ts")),
    WebMethod("files.getUploadURLExternal", "file.upload_url.create", "medium", ("filename", "length")),
    WebMethod("files.completeUploadExternal", "file.upload", "medium", ("channel_id", "channels", "thread_ts")),
    WebMethod("files.delete", "file.delete", "high", ("file",)),
    WebMethod("files.sharedPublicURL", "file.public_url.create", "high", ("file",)),
    WebMethod("files.revokePublicURL", "file.public_url.revoke", "medium", ("file",)),
    # --- reactions, pins, bookmarks ---
    WebMethod("reactions.get", "reaction.read", "low", _ITEM),
    WebMethod("reactions.list", "reaction.list", "low", ("user",)),
    WebMethod("reactions.add", "reaction.add", "medium", ("channel", "name", "timestamp")),
    WebMethod("reactions.remove", "reaction.remove", "medium", ("channel", "name", "timestamp")),
    WebMethod("pins.list", "pin.list", "low", _CH),
    WebMethod("pins.add", "pin.add", "medium", _ITEM),
    WebMethod("pins.remove", "pin.remove", "medium", _ITEM),
    WebMethod("bookmarks.list", "bookmark.list", "low", ("channel_id",)),
    WebMethod("bookmarks.add", "bookmark.add", "medium", ("channel_id", "title", "type", "link")),
    WebMethod("bookmarks.edit", "bookmark.update", "medium", (*_BOOKMARK, "link")),
    WebMethod("bookmarks.remove", "bookmark.remove", "medium", _BOOKMARK),
    # --- canvases and assistant threads ---
    WebMethod("canvases.create", "canvas.create", "medium", ("title",)),
    WebMethod("conversations.canvases.create", "canvas.create", "medium", ("channel_id",)),
    WebMethod("canvases.edit", "canvas.update", "medium", ("canvas_id",)),
    WebMethod("canvases.delete", "canvas.delete", "high", ("canvas_id",)),
    WebMethod("canvases.access.set", "canvas.access.update", "high",
              ("canvas_id", "access_level", "channel_ids", "user_ids")),
    WebMethod("assistant.threads.setStatus", "assistant.thread.update", "medium", ("channel_id", "thread_ts")),
    WebMethod("assistant.threads.setTitle", "assistant.thread.update", "medium", ("channel_id", "thread_ts")),
    WebMethod("assistant.threads.setSuggestedPrompts", "assistant.thread.update", "medium",
              ("channel_id", "thread_ts")),
    # --- users ---
    WebMethod("users.list", "user.list", "low", ("team_id",)),
    WebMethod("users.info", "user.read", "low", ("user",)),
    WebMethod("users.lookupByEmail", "user.read", "low", ("email",)),
    WebMethod("users.identity", "user.read", "low"),
    WebMethod("users.conversations", "user.conversation.list", "low", ("user", "types")),
    WebMethod("users.getPresence", "user.presence.read", "low", ("user",)),
    WebMethod("users.setPresence", "user.presence.update", "medium", ("presence",)),
    WebMethod("users.profile.get", "user.profile.read", "low", ("user",)),
    WebMethod("users.profile.set", "user.profile.update", "medium", ("user", "name")),
    WebMethod("users.setPhoto", "user.profile.update", "medium"),
    WebMethod("users.deletePhoto", "user.profile.update", "medium"),
    # --- user groups (a group's default channels are joined by its members: membership grants access) ---
    WebMethod("usergroups.list", "usergroup.list", "low", ("team_id",)),
    WebMethod("usergroups.users.list", "usergroup.member.list", "low", ("usergroup",)),
    WebMethod("usergroups.create", "usergroup.create", "medium", ("name", "handle", "channels", "team_id")),
    WebMethod("usergroups.update", "usergroup.update", "medium", ("usergroup", "name", "handle", "channels")),
    WebMethod("usergroups.enable", "usergroup.enable", "medium", ("usergroup",)),
    WebMethod("usergroups.disable", "usergroup.disable", "high", ("usergroup",)),
    WebMethod("usergroups.users.update", "usergroup.member.update", "high", ("usergroup", "users")),
    # --- team, auth, search, misc reads ---
    WebMethod("team.info", "team.read", "low", ("team",)),
    WebMethod("team.profile.get", "team.profile.read", "low"),
    WebMethod("team.accessLogs", "team.access_log.list", "low", ("team_id",)),
    WebMethod("auth.test", "auth.test", "low"),
    WebMethod("auth.teams.list", "auth.team.list", "low"),
    WebMethod("auth.revoke", "auth.revoke", "high"),
    WebMethod("api.test", "api.test", "low"),
    WebMethod("bots.info", "bot.read", "low", ("bot",)),
    WebMethod("emoji.list", "emoji.list", "low"),
    WebMethod("search.messages", "search.read", "low", ("query",)),
    WebMethod("search.files", "search.read", "low", ("query",)),
    WebMethod("search.all", "search.read", "low", ("query",)),
    # --- reminders, views, Socket Mode ---
    WebMethod("reminders.list", "reminder.list", "low"),
    WebMethod("reminders.info", "reminder.read", "low", ("reminder",)),
    WebMethod("reminders.add", "reminder.create", "medium", ("user", "time")),
    WebMethod("reminders.complete", "reminder.complete", "medium", ("reminder",)),
    WebMethod("reminders.delete", "reminder.delete", "high", ("reminder",)),
    WebMethod("views.open", "view.open", "medium"),
    WebMethod("views.push", "view.open", "medium"),
    WebMethod("views.update", "view.update", "medium", ("view_id", "external_id")),
    WebMethod("views.publish", "view.publish", "medium", ("user_id",)),
    # opens a WebSocket that delivers events to the app: it receives, it does not act
    WebMethod("apps.connections.open", "app.connection.open", "low"),
    # --- tokens: whoever completes these walks away with a credential ---
    WebMethod("oauth.v2.access", "oauth.token.create", "high"),
    WebMethod("oauth.v2.exchange", "oauth.token.create", "high"),
    WebMethod("openid.connect.token", "oauth.token.create", "high"),
)

ADMIN_METHODS: tuple[str, ...] = (
    "admin.apps.approve", "admin.apps.restrict", "admin.apps.uninstall", "admin.apps.clearResolution",
    "admin.apps.requests.list", "admin.apps.approved.list", "admin.apps.restricted.list",
    "admin.barriers.create", "admin.barriers.update", "admin.barriers.delete", "admin.barriers.list",
    "admin.conversations.create", "admin.conversations.delete", "admin.conversations.archive",
    "admin.conversations.unarchive", "admin.conversations.rename", "admin.conversations.invite",
    "admin.conversations.search", "admin.conversations.convertToPrivate", "admin.conversations.convertToPublic",
    "admin.conversations.setConversationPrefs", "admin.conversations.disconnectShared",
    "admin.conversations.setTeams", "admin.conversations.bulkArchive", "admin.conversations.bulkDelete",
    "admin.conversations.bulkMove",
    "admin.emoji.add", "admin.emoji.remove", "admin.emoji.list",
    "admin.inviteRequests.approve", "admin.inviteRequests.deny", "admin.inviteRequests.list",
    "admin.roles.addAssignments", "admin.roles.removeAssignments", "admin.roles.listAssignments",
    "admin.teams.create", "admin.teams.list", "admin.teams.settings.setDefaultChannels",
    "admin.usergroups.addChannels", "admin.usergroups.removeChannels", "admin.usergroups.listChannels",
    "admin.users.list", "admin.users.invite", "admin.users.assign", "admin.users.remove",
    "admin.users.setAdmin", "admin.users.setOwner", "admin.users.setRegular", "admin.users.setExpiration",
    "admin.users.session.list", "admin.users.session.reset", "admin.users.session.invalidate",
)
"""The admin methods with an action of their own; ``admin_action`` gives each one's verb part."""


def admin_action(method: str) -> str:
    """The verb part for an ``admin.*`` method: dots kept, camelCase parts in snake_case.

    ``admin.conversations.setConversationPrefs`` -> ``admin.conversations.set_conversation_prefs``.
    """
    return ".".join(re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", part).lower() for part in method.split("."))


SLACK_METHODS: tuple[WebMethod, ...] = _CORE_METHODS + tuple(
    WebMethod(m, admin_action(m), "high", _ADMIN_PARAMS) for m in ADMIN_METHODS)

SLACK_PATH_ROUTES: tuple[Route, ...] = (
    Route("POST", "/services/{team_id}/{bot_id}/{secret}", "webhook.send", "high"),
    Route("POST", "/triggers/{team_id}/{rest+}", "webhook.trigger", "high"),
    Route("POST", "/workflows/{team_id}/{rest+}", "webhook.trigger", "high"),
    Route("POST", "/upload/v1/{rest+}", "file.content.upload", "medium"),
    Route("GET", "/files-pri/{rest+}", "file.download", "low"),
)
"""Requests that are not Web API methods. Their path segments are secrets: ``SlackConnector`` keeps only a
``team_id`` that looks like one (``T…`` or ``E…``) and drops every other captured segment."""

_BY_NAME: Mapping[str, WebMethod] = {m.name.lower(): m for m in SLACK_METHODS}
_PATH_ROUTER = Router(_NS, SLACK_PATH_ROUTES)
_API_PATH = re.compile(r"^/api/(?P<method>[^/]+)/?$")
_TEAM_ID = re.compile(r"^[TE][A-Z0-9]+$")
_SECRET_PATHS = ("/services/", "/triggers/", "/workflows/", "/upload/")


def _arguments(view: RequestView, names: tuple[str, ...]) -> tuple[dict[str, object], frozenset[str]]:
    """The wanted arguments from query and body, and the names that could not be settled.

    A name is unsettled when the body cannot be read (it might hold a different value) or when the query
    and body give it different values: which one Slack would act on is not something to guess.
    """
    if not names:
        return {}, frozenset()
    body = body_fields(view)
    if body is None:
        return {}, frozenset(names)
    if not view.query:  # one source: nothing can disagree
        return {name: body[name] for name in names if name in body}, frozenset()
    params: dict[str, object] = {}
    unsettled: set[str] = set()
    for name in names:
        values: list[object] = []
        for value in [v for k, v in view.query if k == name] + ([body[name]] if name in body else []):
            if value not in values:
                values.append(value)
        if len(values) > 1:
            unsettled.add(name)
        elif values:
            params[name] = values[0]
    return params, frozenset(unsettled)


class SlackConnector(Connector):
    """``slack.<resource>.<verb>`` for the Slack Web API, incoming webhooks and file transfer.

    Web API calls are looked up by method name in ``SLACK_METHODS``; ``admin.*`` methods not listed there are
    ``slack.admin.other``; other paths go through ``SLACK_PATH_ROUTES``; everything else is
    ``slack.unknown.<method>``. files.slack.com is a default host: the v2 upload sends the file bytes there.
    """

    type_name = "slack"
    namespace = _NS
    default_hosts: tuple[str, ...] = ("slack.com", "api.slack.com", "hooks.slack.com", "files.slack.com")

    @property
    def actions(self) -> frozenset[str]:
        return (frozenset(f"{_NS}.{m.action}" for m in SLACK_METHODS) | _PATH_ROUTER.actions
                | unknown_actions(_NS) | {f"{_NS}.admin.other"})

    def param_path(self, path: str) -> str:
        """On webhook and upload paths the segments after the first are secrets: they are masked
        (``/services/*/*/*``), whatever the case of the first. Other paths are recorded as they are."""
        if not path.lower().startswith(_SECRET_PATHS):
            return path
        head, *rest = path.strip("/").split("/")
        return "/" + "/".join([head, *("*" for _ in rest)])

    def parse(self, view: RequestView) -> Action:
        api = _API_PATH.match(view.path)
        if api is not None:
            return self._web_api(view, api.group("method"))
        found = _PATH_ROUTER.find(view)
        if found is None:
            return self._unknown(view)
        team = found.params.get("team_id")
        kept = {"team_id": team} if isinstance(team, str) and _TEAM_ID.match(team) else {}
        return Action(found.name, self.name, found.risk, kept)

    def _web_api(self, view: RequestView, method: str) -> Action:
        if view.method not in ("GET", "POST"):
            return self._unknown(view, method)
        entry = _BY_NAME.get(method.lower())
        if entry is not None:
            params, unsettled = _arguments(view, entry.params)
            return Action(f"{_NS}.{entry.action}", self.name, entry.risk, params, unsettled)
        if method.lower().startswith("admin."):
            params, unsettled = _arguments(view, _ADMIN_PARAMS)
            return Action(f"{_NS}.admin.other", self.name, "high", {"api_method": method, **params}, unsettled)
        return self._unknown(view, method)

    def _unknown(self, view: RequestView, api_method: str | None = None) -> Action:
        found = unknown_action(self.name, _NS, view, self.param_path(view.path))
        if api_method is None:
            return found
        return replace(found, params={**found.params, "api_method": api_method})
