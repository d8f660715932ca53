"""An agent built on the official SDKs, run inside a sandbox by Debian's /usr/bin/python3.

``python3 sdk_agent.py SDK`` makes real calls with the SDK exactly as an agent would (no base URL, no proxy or
CA configuration: only what ``tf run`` put in the environment) and prints one JSON line per call:
``{"call": ..., "ok": true}`` or ``{"call": ..., "ok": false, "error": ...}``. Calls go on after a failure, so
the suite sees every outcome.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from typing import Any

Call = tuple[str, Callable[[], Any]]


def _openai() -> list[Call]:
    from openai import OpenAI

    c = OpenAI()
    return [
        ("models.list", lambda: c.models.list()),
        ("chat.completions.create", lambda: c.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5)),
        ("files.create", lambda: c.files.create(file=("notes.txt", b"hello"), purpose="assistants")),
        ("files.delete", lambda: c.files.delete("file-abc")),
        ("models.retrieve", lambda: c.models.retrieve("gpt-4o-mini")),
        ("batches.cancel", lambda: c.batches.cancel("batch_1")),
    ]


def _anthropic() -> list[Call]:
    from anthropic import Anthropic

    c = Anthropic()
    msg = [{"role": "user", "content": "hi"}]
    return [
        ("messages.create", lambda: c.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=msg)),
        ("messages.count_tokens", lambda: c.messages.count_tokens(model="claude-sonnet-4-5", messages=msg)),
        ("models.list", lambda: c.models.list()),
        ("models.retrieve", lambda: c.models.retrieve("claude-sonnet-4-5")),
        ("messages.batches.retrieve", lambda: c.messages.batches.retrieve("msgbatch_1")),
        ("messages.batches.delete", lambda: c.messages.batches.delete("msgbatch_1")),
    ]


def _stripe() -> list[Call]:
    import stripe

    stripe.api_key = os.environ["STRIPE_API_KEY"]
    # stripe-python verifies against a CA bundle inside its package, not the system's or SSL_CERT_FILE: the
    # sandbox covers that file (config [sandbox] ca_overlays), so nothing here points it elsewhere
    return [
        ("Customer.create", lambda: stripe.Customer.create(email="a@example.com")),
        ("Customer.retrieve", lambda: stripe.Customer.retrieve("cus_1")),
        ("Refund.create", lambda: stripe.Refund.create(charge="ch_1", amount=2500)),
        ("PaymentIntent.create", lambda: stripe.PaymentIntent.create(amount=1000, currency="usd")),
        ("Customer.delete", lambda: stripe.Customer.delete("cus_1")),
        ("Balance.retrieve", lambda: stripe.Balance.retrieve()),
    ]


def _slack() -> list[Call]:
    from slack_sdk import WebClient

    c = WebClient(token=os.environ["SLACK_BOT_TOKEN"])
    return [
        ("chat_postMessage", lambda: c.chat_postMessage(channel="C123", text="hello")),
        ("conversations_list", lambda: c.conversations_list(limit=10)),
        ("reactions_add", lambda: c.reactions_add(channel="C123", name="thumbsup", timestamp="1.2")),
        ("users_info", lambda: c.users_info(user="U1")),
        ("chat_delete", lambda: c.chat_delete(channel="C123", ts="1.2")),
    ]


def _github() -> list[Call]:
    from github import Auth, Github

    g = Github(auth=Auth.Token(os.environ["GITHUB_TOKEN"]))
    repo: dict[str, Any] = {}

    def get_repo() -> Any:
        repo["r"] = g.get_repo("acme/widgets")
        return repo["r"]

    return [
        ("get_user", lambda: g.get_user("octocat").login),
        ("get_repo", get_repo),
        ("create_issue", lambda: repo["r"].create_issue(title="bug", body="details")),
        ("get_pull", lambda: repo["r"].get_pull(7)),
        ("merge", lambda: repo["r"].get_pull(7).merge(merge_method="squash")),
        ("delete_repo", lambda: repo["r"].delete()),
    ]


def _mcp() -> list[Call]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    url = os.environ["TF_TEST_MCP_URL"]

    async def session(work: Callable[[ClientSession], Any]) -> Any:
        async with streamable_http_client(url) as streams, ClientSession(streams[0], streams[1]) as s:
            await s.initialize()
            return await work(s)

    def run(work: Callable[[ClientSession], Any]) -> Callable[[], Any]:
        return lambda: asyncio.run(session(work))

    return [
        ("list_tools", run(lambda s: s.list_tools())),
        ("call_tool search", run(lambda s: s.call_tool("search", {"query": "widgets"}))),
        ("call_tool delete_file", run(lambda s: s.call_tool("delete_file", {"path": "/tmp/x"}))),
        ("list_resources", run(lambda s: s.list_resources())),
        ("list_prompts", run(lambda s: s.list_prompts())),
    ]


SDKS: dict[str, Callable[[], list[Call]]] = {
    "openai": _openai, "anthropic": _anthropic, "stripe": _stripe, "slack": _slack, "github": _github,
    "mcp": _mcp,
}


def main() -> None:
    for label, call in SDKS[sys.argv[1]]():
        try:
            call()
            print(json.dumps({"call": label, "ok": True}), flush=True)
        except Exception as e:  # noqa: BLE001 - report and go on: the suite judges every call
            print(json.dumps({"call": label, "ok": False, "error": f"{type(e).__name__}: {e}"[:500]}), flush=True)


if __name__ == "__main__":
    main()
