"""The Anthropic connector: requests to ``api.anthropic.com`` become ``anthropic.<resource>.<verb>`` actions.

The route table ``ANTHROPIC_ROUTES`` is data, tried in order, first match wins; the SDK sends every path under
``/v1``. Beta calls reach the same paths (the SDK adds ``?beta=true`` and an ``anthropic-beta`` header), so a
beta message is still ``anthropic.message.create``. The Files API is a beta API under ``/v1/files``; uploads
are multipart and contribute the file's name (``file``), never its content.

Message batches are ``anthropic.message_batch.*`` rather than ``anthropic.message.batch.*`` so that a
permission on ``anthropic.message.*`` (talking to the model) does not also cover deleting batches.

Parameters: path ids (``message_batch_id``, ``model_id``, ``file_id``) and from message bodies ``model``,
``max_tokens`` and ``stream`` (``max_tokens_to_sample`` on the legacy completions endpoint). Batch bodies hold
their model per request, so a batch create carries no ``model``.

Risk levels: reads and token counting are ``low``; generation, batch creation, uploads and cancels
``medium``; deletes ``high``. A request that matches no route is ``anthropic.unknown.<method>`` (high risk,
denied unless allowed), never silently a read.
"""

from __future__ import annotations

from trustfence.connectors.base import Route, Router
from trustfence.connectors.routed import RoutedConnector

__all__ = ["ANTHROPIC_ROUTES", "AnthropicConnector"]

_BATCH = "/v1/messages/batches/{message_batch_id}"
_FILE = "/v1/files/{file_id}"

ANTHROPIC_ROUTES: tuple[Route, ...] = (
    # --- messages ---
    Route("POST", "/v1/messages", "message.create", "medium", body_params=("model", "max_tokens", "stream")),
    Route("POST", "/v1/messages/count_tokens", "message.count_tokens", "low", body_params=("model",)),
    # --- message batches (results are fetched from the batch's results_url, which is this path) ---
    Route("POST", "/v1/messages/batches", "message_batch.create", "medium"),
    Route("GET", "/v1/messages/batches", "message_batch.list", "low"),
    Route("GET", _BATCH, "message_batch.read", "low"),
    Route("POST", _BATCH + "/cancel", "message_batch.cancel", "medium"),
    Route("GET", _BATCH + "/results", "message_batch.results.read", "low"),
    Route("DELETE", _BATCH, "message_batch.delete", "high"),
    # --- models ---
    Route("GET", "/v1/models", "model.list", "low"),
    Route("GET", "/v1/models/{model_id}", "model.read", "low"),
    # --- files (beta) ---
    Route("POST", "/v1/files", "file.upload", "medium", body_params=("file",)),
    Route("GET", "/v1/files", "file.list", "low"),
    Route("GET", _FILE, "file.read", "low"),
    Route("GET", _FILE + "/content", "file.content.read", "low"),
    Route("DELETE", _FILE, "file.delete", "high"),
    # --- legacy text completions ---
    Route("POST", "/v1/complete", "completion.create", "medium",
          body_params=("model", "max_tokens_to_sample", "stream")),
)

_ROUTER = Router("anthropic", ANTHROPIC_ROUTES)


class AnthropicConnector(RoutedConnector):
    """``anthropic.<resource>.<verb>`` for the Anthropic API; unmatched requests are
    ``anthropic.unknown.<method>``."""

    type_name = "anthropic"
    namespace = "anthropic"
    default_hosts: tuple[str, ...] = ("api.anthropic.com",)
    router = _ROUTER
