"""Inject: the real credential goes into an allowed request here, and never comes back out.

Runs after Enforce (and after a human approved a held request): only a request whose outcome is ``allowed``
by an explicit allow decision gets a credential, and only when its canonical host (the destination every name
in the request agreed on) is one the credential is bound to, for a gateway it is scoped to. A connector that
needs a credential it cannot have (vault unreadable, entry missing, tampered, bound elsewhere) gets a 403:
the request is never sent without it, or with someone else's. Nor is it ever sent over cleartext HTTP: an
allowed plain ``http://`` request to such a connector is denied ("a credential is never sent over cleartext
HTTP"), since sending it bare would only differ from a deny in what an eavesdropper learns. A configured host
service (``host_service``: plain HTTP to this host's own address, never over a wire) is the one place a
credential goes without TLS, and only when its connector has one. The exception is a
host the connector names in ``no_credential_hosts`` (GitHub's git and download hosts, which do not take the
API's bearer token): a request there goes without any credential of ours. On a host in the connector's
``basic_auth_hosts`` (github.com, where git sends a token only as Basic credentials) the credential goes in
that form instead: ``Authorization: Basic base64("x-access-token:" + token)``, replacing whatever the agent's
git sent; the encoded form is scrubbed from what comes back as well as the token. Only a credential bound to
that host goes there (``tf connector add`` binds github.com since git takes it); one sealed for the API alone
is not sent, and git goes without it, as before.

The agent sent a placeholder, or nothing, or a key of its own: whatever it sent in a credential header is
removed first (``vault.inject.apply``). What comes back is scrubbed: an upstream that echoes request headers,
an error page that quotes the URL, a streamed response, a WebSocket message — the secret is replaced by
``[redacted]`` before the agent or the traffic log sees it. Responses to a credentialed request are asked
for uncompressed, so there is nothing the scrubber cannot read.
"""

from __future__ import annotations

import base64

from mitmproxy import http

from trustfence.policy import Decision
from trustfence.proxy.bodies import DECODED_MAX, BodyError, decode_bounded
from trustfence.proxy.bounds import STREAM_OVER, Streamed
from trustfence.proxy.responses import deny, fail_closed
from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.state import Credentials, EnforcerState
from trustfence.vault import VaultError, apply
from trustfence.vault.inject import InjectionSpec
from trustfence.vault.redact import StreamScrub

__all__ = ["CLEARTEXT", "Inject"]

_BASIC = InjectionSpec("Authorization", "Basic ")

CLEARTEXT = "a credential is never sent over cleartext HTTP"
"""The reason an allowed plain-HTTP request to a connector with a credential is denied rather than sent bare:
the upstream would answer it unauthenticated at best, and the agent would learn nothing it should."""


def _pairs(headers: http.Headers) -> list[tuple[str, str]]:
    return [(k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape")) for k, v in headers.fields]


def _fields(pairs: list[tuple[str, str]]) -> http.Headers:
    return http.Headers([(k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
                         for k, v in pairs])


class Inject:
    """Put the connector's credential into an explicitly allowed request; scrub it from the response."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        rec = record_of(flow)
        decision = rec.decision
        if rec.outcome != "allowed" or decision is None or decision.verdict != "allow":
            return  # forwarded without an allow (monitor, soft enforcement): never with a credential
        action = rec.classified()
        creds = self.state.credentials
        if not action.connector or not creds.needed(action.connector):
            return
        name = action.connector
        conn = self.state.connectors.by_name.get(name)
        dest = rec.destined()
        if conn is not None and dest.host in conn.no_credential_hosts:
            return  # the service takes no credential of this form there: sending ours would only fail
        fix = f"sudo tf connector add {conn.type_name if conn else 'TYPE'} --name {name} --token-stdin"
        if creds.vault is None:
            _refuse(flow, f"the credential of connector {name} is unavailable, so the request is not sent: "
                          f"{creds.error}", decision, fix)
            return
        gw = rec.identified()
        req = flow.request
        on_host = any(s.connector == name and s.destination == dest for s in self.state.host_services.values())
        if req.scheme != "https" and not on_host:  # a host service is on this host: it never crosses a wire
            path = rec.view.path if rec.view is not None else req.path.split("?", 1)[0]
            _refuse(flow, CLEARTEXT, decision, f"send it over https://{dest.host}{path}")
            return
        basic_user = dict(conn.basic_auth_hosts).get(dest.host) if conn is not None else None
        if basic_user is not None and not _bound(creds, name, dest.host):
            return  # sealed for the API alone (or before git took a token): git goes without ours, as it always did
        try:
            entry, secret = creds.vault.secret_for(name, host=dest.host, gateway=gw.name)  # decrypted once
            spec, value, forms = entry.inject, secret, [secret]
            if basic_user is not None:
                value = base64.b64encode(f"{basic_user}:{secret}".encode()).decode()
                spec, forms = _BASIC, [secret, value]
            headers, query = apply(spec, _pairs(req.headers), list(req.query.items(multi=True)), value)
        except VaultError as e:
            _refuse(flow, f"the credential of connector {name} was not sent: {e}", decision, fix)
            return
        headers = [(k, v) for k, v in headers if k.lower() != "accept-encoding"] + [("Accept-Encoding", "identity")]
        req.headers = _fields(headers)
        if query != list(req.query.items(multi=True)):
            req.query = query  # mitmproxy's setter takes a list of pairs
        rec.secret, rec.secret_forms = secret, forms

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        resp, rec = flow.response, record_of(flow)
        if resp is None or rec.secret is None:
            return
        _scrub_headers(resp.headers, rec.secret_forms)
        if not resp.stream:
            return
        if resp.headers.get("content-encoding", "identity").strip().lower() in ("", "identity"):
            stream = resp.stream if isinstance(resp.stream, Streamed) else Streamed()
            stream.scrub = StreamScrub(rec.secret_forms)  # holds back only what could begin a secret
            resp.stream = stream
            if "content-length" in resp.headers:
                _unframe(flow, resp)  # a scrubbed body is not the length the upstream declared
            return
        # An encoded stream cannot be scrubbed chunk by chunk (it was asked for uncompressed). Within bounds it
        # is held and the response hook scrubs it whole; beyond them it cannot be shown clean: the agent gets
        # its headers and an empty body.
        try:
            size = int(resp.headers.get("content-length", ""))
        except ValueError:
            size = -1
        if 0 <= size <= STREAM_OVER and "event-stream" not in resp.headers.get("content-type", ""):
            resp.stream = False
            return
        _unframe(flow, resp)
        resp.stream = _drop

    def response(self, flow: http.HTTPFlow) -> None:
        resp, rec = flow.response, record_of(flow)
        if resp is None or rec.secret is None:
            return
        _scrub_headers(resp.headers, rec.secret_forms)
        if resp.stream or resp.raw_content is None:
            return  # streamed: scrubbed chunk by chunk
        scrub = StreamScrub(rec.secret_forms)
        encoding = resp.headers.get("content-encoding", "")
        if encoding.strip().lower() in ("", "identity"):
            clean = scrub.scrub(resp.raw_content)
            if clean != resp.raw_content:
                resp.set_content(clean)  # nothing to encode; it also updates Content-Length
            return
        try:  # bounded: mitmproxy's own decoder would inflate a bomb whole, and keep it
            decoded = decode_bounded(resp.raw_content, encoding, keep=DECODED_MAX)
        except BodyError as e:
            if e.status == 415 and scrub.scrub(resp.raw_content) == resp.raw_content:
                return  # an encoding we cannot undo: its raw bytes at least are clean
            decoded = None
        if decoded is None or not decoded.complete:  # cannot be read whole: it cannot be shown clean either
            resp.set_content(b"")
            return
        clean = scrub.scrub(decoded.head)
        if clean != decoded.head:
            resp.set_content(clean)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        rec = record_of(flow)
        if rec.secret is None or flow.websocket is None:
            return
        msg = flow.websocket.messages[-1]
        if not msg.from_client:
            msg.content = StreamScrub(rec.secret_forms).scrub(msg.content)


def _unframe(flow: http.HTTPFlow, resp: http.Response) -> None:
    """The streamed body's length is no longer known: chunked to an HTTP/1 client (HTTP/2 frames it anyway)."""
    resp.headers.pop("content-length", None)
    if not (flow.request.is_http2 or flow.request.is_http3):
        resp.headers["transfer-encoding"] = "chunked"


def _drop(chunk: bytes) -> bytes:
    """A streamed body that cannot be scrubbed: none of it reaches the agent."""
    return b""


def _refuse(flow: http.HTTPFlow, reason: str, decision: Decision, fix: str) -> None:
    """Deny an allowed request after all: the row names this reason, not the allow that came before."""
    deny(flow, reason, decision=decision, allow_with=fix)
    record_of(flow).reason = reason


def _bound(creds: Credentials, name: str, host: str) -> bool:
    """Whether the connector's vault entry is bound to ``host`` (an entry that cannot be read: True, so that
    ``secret_for`` refuses the request with the reason)."""
    try:
        return creds.vault is None or creds.vault.get(name).allows_host(host)
    except VaultError:
        return True


def _scrub_headers(headers: http.Headers, secrets: list[str]) -> None:
    scrub = StreamScrub(secrets)
    for k, v in _pairs(headers):
        raw = v.encode("utf-8", "surrogateescape")
        if scrub.scrub(raw) != raw:
            headers.set_all(k, [scrub.scrub(x.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")
                                for x in headers.get_all(k)])
