"""The OpenAI connector: REST API requests to ``api.openai.com`` become ``openai.<resource>.<verb>`` actions.

The route table ``OPENAI_ROUTES`` is data, tried in order, first match wins; every path sits under ``/v1``
(the official SDKs' base URL is ``https://api.openai.com/v1``). A literal segment that shares its position
with an id (``/threads/runs`` vs ``/threads/{thread_id}``) is listed before the id route.

Parameters: path ids under the SDK's own names (``file_id``, ``vector_store_id``, ``model`` ...), and from
bodies the fields policies care about: ``model``, ``stream`` and the token ceilings (``max_tokens``,
``max_completion_tokens``, ``max_output_tokens``) where the endpoint takes them, ``purpose`` for uploads.
Multipart endpoints (file upload, image edit and variation, audio transcription and translation, upload parts)
yield their form fields the same way; a file part contributes its file name only.

Risk levels: reads (including vector store search and token counting) are ``low``; generation, embeddings,
creates, updates and cancels ``medium``; deletes, sharing a fine-tuned checkpoint with another project and
minting realtime client secrets are ``high``. A request that matches no route is ``openai.unknown.<method>``
(high risk, denied unless allowed), never silently a read.
"""

from __future__ import annotations

from trustfence.connectors.base import Route, Router
from trustfence.connectors.routed import RoutedConnector

__all__ = ["OPENAI_ROUTES", "OpenAIConnector"]

_V = "/v1"
_CHAT = _V + "/chat/completions/{completion_id}"
_RESP = _V + "/responses/{response_id}"
_CONV = _V + "/conversations/{conversation_id}"
_FILE = _V + "/files/{file_id}"
_UPLOAD = _V + "/uploads/{upload_id}"
_FT = _V + "/fine_tuning/jobs/{fine_tuning_job_id}"
_CKPT = _V + "/fine_tuning/checkpoints/{fine_tuned_model_checkpoint}/permissions"
_BATCH = _V + "/batches/{batch_id}"
_VS = _V + "/vector_stores/{vector_store_id}"
_VSF = _VS + "/files/{file_id}"
_VSB = _VS + "/file_batches/{batch_id}"
_ASST = _V + "/assistants/{assistant_id}"
_THREAD = _V + "/threads/{thread_id}"
_MSG = _THREAD + "/messages/{message_id}"
_RUN = _THREAD + "/runs/{run_id}"

_CHAT_CREATE = ("model", "stream", "max_tokens", "max_completion_tokens")
_RESP_CREATE = ("model", "stream", "max_output_tokens")
_RUN_CREATE = ("assistant_id", "model", "stream", "max_completion_tokens")

OPENAI_ROUTES: tuple[Route, ...] = (
    # --- chat completions (stored completions are listed, read, tagged and deleted by id) ---
    Route("POST", _V + "/chat/completions", "chat.create", "medium", body_params=_CHAT_CREATE),
    Route("GET", _V + "/chat/completions", "chat.list", "low", query_params=("model",)),
    Route("GET", _CHAT, "chat.read", "low"),
    Route("POST", _CHAT, "chat.update", "medium"),
    Route("DELETE", _CHAT, "chat.delete", "high"),
    Route("GET", _CHAT + "/messages", "chat.message.list", "low"),
    # --- responses (literal /responses/input_tokens and /responses/compact are POST-only, no id twin) ---
    Route("POST", _V + "/responses", "response.create", "medium", body_params=_RESP_CREATE),
    Route("POST", _V + "/responses/input_tokens", "response.input_tokens.count", "low",
          body_params=("model",)),
    Route("POST", _V + "/responses/compact", "response.compact", "medium", body_params=("model",)),
    Route("GET", _RESP, "response.read", "low"),
    Route("DELETE", _RESP, "response.delete", "high"),
    Route("POST", _RESP + "/cancel", "response.cancel", "medium"),
    Route("GET", _RESP + "/input_items", "response.input_item.list", "low"),
    # --- conversations (server-side state for the Responses API) ---
    Route("POST", _V + "/conversations", "conversation.create", "medium"),
    Route("GET", _CONV, "conversation.read", "low"),
    Route("POST", _CONV, "conversation.update", "medium"),
    Route("DELETE", _CONV, "conversation.delete", "high"),
    Route("GET", _CONV + "/items", "conversation.item.list", "low"),
    Route("POST", _CONV + "/items", "conversation.item.create", "medium"),
    Route("GET", _CONV + "/items/{item_id}", "conversation.item.read", "low"),
    Route("DELETE", _CONV + "/items/{item_id}", "conversation.item.delete", "high"),
    # --- legacy completions, embeddings, moderations ---
    Route("POST", _V + "/completions", "completion.create", "medium",
          body_params=("model", "stream", "max_tokens")),
    Route("POST", _V + "/embeddings", "embedding.create", "medium", body_params=("model",)),
    Route("POST", _V + "/moderations", "moderation.create", "medium", body_params=("model",)),
    # --- images (edits and variations are multipart) ---
    Route("POST", _V + "/images/generations", "image.generate", "medium", body_params=("model", "stream")),
    Route("POST", _V + "/images/edits", "image.edit", "medium", body_params=("model", "stream")),
    Route("POST", _V + "/images/variations", "image.variation", "medium", body_params=("model",)),
    # --- audio (speech is JSON; transcriptions and translations are multipart) ---
    Route("POST", _V + "/audio/speech", "audio.speech.create", "medium", body_params=("model",)),
    Route("POST", _V + "/audio/transcriptions", "audio.transcription.create", "medium",
          body_params=("model", "stream")),
    Route("POST", _V + "/audio/translations", "audio.translation.create", "medium", body_params=("model",)),
    # --- files (upload is multipart: ``file`` carries the file name, never the content) ---
    Route("POST", _V + "/files", "file.upload", "medium", body_params=("purpose", "file")),
    Route("GET", _V + "/files", "file.list", "low", query_params=("purpose",)),
    Route("GET", _FILE, "file.read", "low"),
    Route("GET", _FILE + "/content", "file.content.read", "low"),
    Route("DELETE", _FILE, "file.delete", "high"),
    # --- uploads (large files in parts; parts are multipart) ---
    Route("POST", _V + "/uploads", "upload.create", "medium", body_params=("purpose", "filename", "bytes")),
    Route("POST", _UPLOAD + "/parts", "upload.part.create", "medium"),
    Route("POST", _UPLOAD + "/complete", "upload.complete", "medium"),
    Route("POST", _UPLOAD + "/cancel", "upload.cancel", "medium"),
    # --- fine-tuning ---
    Route("POST", _V + "/fine_tuning/jobs", "fine_tuning.job.create", "medium",
          body_params=("model", "training_file", "validation_file")),
    Route("GET", _V + "/fine_tuning/jobs", "fine_tuning.job.list", "low"),
    Route("GET", _FT, "fine_tuning.job.read", "low"),
    Route("POST", _FT + "/cancel", "fine_tuning.job.cancel", "medium"),
    Route("POST", _FT + "/pause", "fine_tuning.job.pause", "medium"),
    Route("POST", _FT + "/resume", "fine_tuning.job.resume", "medium"),
    Route("GET", _FT + "/events", "fine_tuning.job.event.list", "low"),
    Route("GET", _FT + "/checkpoints", "fine_tuning.job.checkpoint.list", "low"),
    Route("GET", _CKPT, "fine_tuning.checkpoint.permission.list", "low"),
    Route("POST", _CKPT, "fine_tuning.checkpoint.permission.create", "high", body_params=("project_ids",)),
    Route("DELETE", _CKPT + "/{permission_id}", "fine_tuning.checkpoint.permission.delete", "high"),
    # --- models (fine-tuned model ids contain colons, never slashes) ---
    Route("GET", _V + "/models", "model.list", "low"),
    Route("GET", _V + "/models/{model}", "model.read", "low"),
    Route("DELETE", _V + "/models/{model}", "model.delete", "high"),
    # --- batches ---
    Route("POST", _V + "/batches", "batch.create", "medium",
          body_params=("endpoint", "input_file_id", "completion_window")),
    Route("GET", _V + "/batches", "batch.list", "low"),
    Route("GET", _BATCH, "batch.read", "low"),
    Route("POST", _BATCH + "/cancel", "batch.cancel", "medium"),
    # --- vector stores, their files and file batches ---
    Route("POST", _V + "/vector_stores", "vector_store.create", "medium", body_params=("name",)),
    Route("GET", _V + "/vector_stores", "vector_store.list", "low"),
    Route("GET", _VS, "vector_store.read", "low"),
    Route("POST", _VS, "vector_store.update", "medium", body_params=("name",)),
    Route("DELETE", _VS, "vector_store.delete", "high"),
    Route("POST", _VS + "/search", "vector_store.search", "low", body_params=("query",)),
    Route("POST", _VS + "/files", "vector_store.file.create", "medium", body_params=("file_id",)),
    Route("GET", _VS + "/files", "vector_store.file.list", "low"),
    Route("GET", _VSF, "vector_store.file.read", "low"),
    Route("POST", _VSF, "vector_store.file.update", "medium"),
    Route("GET", _VSF + "/content", "vector_store.file.content.read", "low"),
    Route("DELETE", _VSF, "vector_store.file.delete", "high"),
    Route("POST", _VS + "/file_batches", "vector_store.file_batch.create", "medium",
          body_params=("file_ids",)),
    Route("GET", _VSB, "vector_store.file_batch.read", "low"),
    Route("POST", _VSB + "/cancel", "vector_store.file_batch.cancel", "medium"),
    Route("GET", _VSB + "/files", "vector_store.file_batch.file.list", "low"),
    # --- assistants ---
    Route("POST", _V + "/assistants", "assistant.create", "medium", body_params=("model",)),
    Route("GET", _V + "/assistants", "assistant.list", "low"),
    Route("GET", _ASST, "assistant.read", "low"),
    Route("POST", _ASST, "assistant.update", "medium", body_params=("model",)),
    Route("DELETE", _ASST, "assistant.delete", "high"),
    # --- threads (literal /threads/runs before /threads/{thread_id}), messages, runs, run steps ---
    Route("POST", _V + "/threads", "thread.create", "medium"),
    Route("POST", _V + "/threads/runs", "thread.create_and_run", "medium", body_params=_RUN_CREATE),
    Route("GET", _THREAD, "thread.read", "low"),
    Route("POST", _THREAD, "thread.update", "medium"),
    Route("DELETE", _THREAD, "thread.delete", "high"),
    Route("POST", _THREAD + "/messages", "thread.message.create", "medium"),
    Route("GET", _THREAD + "/messages", "thread.message.list", "low"),
    Route("GET", _MSG, "thread.message.read", "low"),
    Route("POST", _MSG, "thread.message.update", "medium"),
    Route("DELETE", _MSG, "thread.message.delete", "high"),
    Route("POST", _THREAD + "/runs", "thread.run.create", "medium", body_params=_RUN_CREATE),
    Route("GET", _THREAD + "/runs", "thread.run.list", "low"),
    Route("GET", _RUN, "thread.run.read", "low"),
    Route("POST", _RUN, "thread.run.update", "medium"),
    Route("POST", _RUN + "/cancel", "thread.run.cancel", "medium"),
    Route("POST", _RUN + "/submit_tool_outputs", "thread.run.submit_tool_outputs", "medium",
          body_params=("stream",)),
    Route("GET", _RUN + "/steps", "thread.run.step.list", "low"),
    Route("GET", _RUN + "/steps/{step_id}", "thread.run.step.read", "low"),
    # --- realtime: the WebSocket upgrade, and ephemeral keys a browser or device uses directly (high) ---
    Route("GET", _V + "/realtime", "realtime.connect", "medium", query_params=("model",), websocket=True),
    Route("POST", _V + "/realtime/client_secrets", "realtime.client_secret.create", "high"),
    Route("POST", _V + "/realtime/sessions", "realtime.session.create", "high", body_params=("model",)),
    Route("POST", _V + "/realtime/transcription_sessions", "realtime.transcription_session.create", "high"),
)

_ROUTER = Router("openai", OPENAI_ROUTES)


class OpenAIConnector(RoutedConnector):
    """``openai.<resource>.<verb>`` for the OpenAI REST API; unmatched requests are
    ``openai.unknown.<method>``."""

    type_name = "openai"
    namespace = "openai"
    default_hosts: tuple[str, ...] = ("api.openai.com",)
    router = _ROUTER
