"""Bounds: what one request or response can make the enforcer hold in memory.

mitmproxy reads a whole request body, and a whole response body, into memory before a hook sees it. An agent
could make the enforcer hold gigabytes with one upload (a huge ``Content-Length``, or a chunked body without
end) or one download. Here:

- A request body is held (it must be, to be classified before anything is sent) up to ``max_request_body``
  under ``[enforcer]``. A request that declares more in ``Content-Length`` gets 413 before a byte of its body
  is read; a chunked body is cut with 413 as it passes the bound. Nothing is sent upstream (connections open
  only when a request is forwarded), and the row says why: decision ``denied``, status 413.
- A response whose body is longer than ``STREAM_OVER`` or of unknown length (chunked, or up to the
  connection's close), and every server-sent event stream, is passed to the agent as it arrives instead of
  being held: ``Streamed`` counts its bytes for the row, and Inject gives it the scrubber of an injected
  credential (which holds back only the end of a chunk that could begin a secret).

mitmproxy's own ``body_size_limit`` cannot do the request part: it applies to responses as well (a large
download would be aborted), and it errors the flow before the hooks, under its own message. Its size check
(``HttpStream.check_body_size``) is replaced for the enforcer's listeners only: requests are checked against
the live ``max_request_body`` of the enforcer whose options the stream runs under, responses are never
aborted. Other mitmproxy instances in the process keep the original.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from mitmproxy import flow as mflow
from mitmproxy import http
from mitmproxy.addonmanager import Loader
from mitmproxy.net.http.http1 import expected_http_body_size
from mitmproxy.options import Options
from mitmproxy.proxy.layers.http import HttpStream, SendHttp
from mitmproxy.proxy.layers.http._events import ErrorCode, ResponseProtocolError
from mitmproxy.proxy.layers.http._hooks import HttpErrorHook, HttpRequestHeadersHook
from mitmproxy.proxy.commands import Command

from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.state import EnforcerState
from trustfence.vault.redact import StreamScrub

__all__ = ["Bounds", "STREAM_OVER", "Streamed", "too_large"]

STREAM_OVER = 8 * 1024 * 1024
"""A response body longer than this (or of unknown length) is streamed to the agent, never held whole."""

_ENFORCERS: list[tuple[Options, EnforcerState]] = []  # the options of each running enforcer -> its state


class Streamed:
    """A response body passed to the agent chunk by chunk (mitmproxy's ``response.stream`` callable).

    ``size``: bytes received from the upstream so far (the row's ``bytes_out``). ``scrub``: set by Inject when
    a credential went out with the request, so that it never comes back, even split across two chunks."""

    __slots__ = ("scrub", "size")

    def __init__(self) -> None:
        self.size = 0
        self.scrub: StreamScrub | None = None

    def __call__(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        return self.scrub(chunk) if self.scrub is not None else chunk


def too_large(limit: int, size: int, declared: bool) -> str:
    """The reason a request body over ``limit`` is refused."""
    what = f"declares a body of {size} bytes" if declared else f"sent more than {limit} bytes of body"
    return (f"request body too large: the request {what}, over max_request_body = {limit} under [enforcer] "
            "(refused before anything was sent upstream)")


def _state_of(stream: HttpStream) -> EnforcerState | None:
    opts = stream.context.options
    return next((s for o, s in _ENFORCERS if o is opts), None)


_mitmproxy_check = HttpStream.check_body_size


def _check_body_size(self: HttpStream, request: bool) -> Generator[Command, Any, bool]:
    """``HttpStream.check_body_size`` for an enforcer's streams: requests against ``max_request_body``, each
    time more of the body arrives (and first against its ``Content-Length``); responses never aborted."""
    state = _state_of(self)
    if state is None:
        return (yield from _mitmproxy_check(self, request))
    if not request:
        return False  # bounded by streaming it (Bounds.responseheaders), never by cutting a download
    limit = state.limits.max_request_body
    buffered = len(self.request_body_buf)
    size: int | None = buffered
    if not buffered:
        try:
            size = expected_http_body_size(self.flow.request)
        except ValueError:
            size = None  # a malformed length: mitmproxy's parser refuses it
    if size is None or size <= limit:
        return False
    reason = too_large(limit, size, declared=not buffered)
    if not buffered:
        yield HttpRequestHeadersHook(self.flow)  # the flow is seen (and counted) before its error, as mitmproxy does
    record_of(self.flow).cut = (413, reason)
    self.flow.error = mflow.Error(reason)
    yield HttpErrorHook(self.flow)
    yield SendHttp(ResponseProtocolError(self.stream_id, reason, ErrorCode.REQUEST_TOO_LARGE), self.context.client)
    self.client_state = self.state_errored
    self.flow.live = False
    return True


class Bounds:
    """Bound what a request body may make the enforcer hold (413 with a row); stream large responses."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state
        self._options: Options | None = None

    def load(self, loader: Loader) -> None:
        HttpStream.check_body_size = _check_body_size  # type: ignore[method-assign]
        self._options = loader.master.options
        _ENFORCERS.append((self._options, self.state))

    def done(self) -> None:
        _ENFORCERS[:] = [(o, s) for o, s in _ENFORCERS if o is not self._options]

    def responseheaders(self, f: http.HTTPFlow) -> None:
        resp = f.response
        if resp is None or resp.stream:
            return
        try:
            size = expected_http_body_size(f.request, resp)
        except ValueError:
            size = None
        events = resp.headers.get("content-type", "").startswith("text/event-stream")
        if events or size is None or size < 0 or size > STREAM_OVER:
            # Server-sent events (MCP streams, streamed completions) must pass as they arrive; the rest is
            # too large, or of unknown length, to be held whole.
            resp.stream = Streamed()
