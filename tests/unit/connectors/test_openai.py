"""The OpenAI connector: each route's action, risk and params, multipart and unreadable bodies, unknowns."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from trustfence.connectors.base import RequestView, Route
from trustfence.connectors.generic import METHODS
from trustfence.connectors.openai import OPENAI_ROUTES, OpenAIConnector

OA = OpenAIConnector("openai", OpenAIConnector.default_hosts)
UNKNOWN = {f"openai.unknown.{m}" for m in (*METHODS, "other")}


def view(method: str, path: str, body: object = None, *, query: tuple[tuple[str, str], ...] = (),
         complete: bool = True) -> RequestView:
    """A JSON request (no body when ``body`` is None; raw bytes are sent as they are)."""
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    return RequestView(method=method, scheme="https", host="api.openai.com", port=443, path=path, query=query,
                       headers={"content-type": "application/json"}, body=raw, body_complete=complete)


def form(method: str, path: str, data: dict[str, str], files: dict[str, tuple[str, bytes, str]],
         *, complete: bool = True) -> RequestView:
    """A multipart request encoded exactly as httpx (and so the official SDK) encodes it."""
    req = httpx.Request(method, "https://api.openai.com" + path, data=data, files=files)
    return RequestView(method=method, scheme="https", host="api.openai.com", port=443, path=path,
                       headers={"content-type": req.headers["content-type"]}, body=req.read(),
                       body_complete=complete)


C = "/v1/chat/completions/chatcmpl-abc"
RS = "/v1/responses/resp_abc"
CV = "/v1/conversations/conv_abc"
FT = "/v1/fine_tuning/jobs/ftjob-abc"
CK = "/v1/fine_tuning/checkpoints/ft:gpt-4o-mini:acme::ckpt-step-10/permissions"
VS = "/v1/vector_stores/vs_abc"
T = "/v1/threads/thread_abc"
FT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme:custom:abc123"
PNG = ("a.png", b"\x89PNG", "image/png")
WAV = ("talk.wav", b"RIFF", "audio/wav")
OCTETS = "application/octet-stream"

GOLDEN: list[tuple[RequestView, str, str, dict[str, object]]] = [
    # (request, expected action, expected risk, expected params)
    # chat completions
    (view("POST", "/v1/chat/completions", {"model": "gpt-4o", "messages": [], "stream": True,
                                           "max_tokens": 50, "max_completion_tokens": 60, "temperature": 0}),
     "openai.chat.create", "medium",
     {"model": "gpt-4o", "stream": True, "max_tokens": 50, "max_completion_tokens": 60}),
    (view("GET", "/v1/chat/completions", query=(("model", "gpt-4o"), ("limit", "5"))),
     "openai.chat.list", "low", {"model": "gpt-4o"}),
    (view("GET", C), "openai.chat.read", "low", {"completion_id": "chatcmpl-abc"}),
    (view("POST", C, {"metadata": {"k": "v"}}),
     "openai.chat.update", "medium", {"completion_id": "chatcmpl-abc"}),
    (view("DELETE", C), "openai.chat.delete", "high", {"completion_id": "chatcmpl-abc"}),
    (view("GET", C + "/messages"), "openai.chat.message.list", "low", {"completion_id": "chatcmpl-abc"}),
    # responses
    (view("POST", "/v1/responses", {"model": "gpt-4.1", "input": "hi", "stream": False,
                                    "max_output_tokens": 9}),
     "openai.response.create", "medium", {"model": "gpt-4.1", "stream": False, "max_output_tokens": 9}),
    (view("POST", "/v1/responses/input_tokens", {"model": "gpt-4.1", "input": "hi"}),
     "openai.response.input_tokens.count", "low", {"model": "gpt-4.1"}),
    (view("POST", "/v1/responses/compact", {"model": "gpt-4.1", "input": []}),
     "openai.response.compact", "medium", {"model": "gpt-4.1"}),
    (view("GET", RS), "openai.response.read", "low", {"response_id": "resp_abc"}),
    (view("DELETE", RS), "openai.response.delete", "high", {"response_id": "resp_abc"}),
    (view("POST", RS + "/cancel"), "openai.response.cancel", "medium", {"response_id": "resp_abc"}),
    (view("GET", RS + "/input_items"), "openai.response.input_item.list", "low", {"response_id": "resp_abc"}),
    # conversations
    (view("POST", "/v1/conversations", {"items": []}), "openai.conversation.create", "medium", {}),
    (view("GET", CV), "openai.conversation.read", "low", {"conversation_id": "conv_abc"}),
    (view("POST", CV, {"metadata": {}}),
     "openai.conversation.update", "medium", {"conversation_id": "conv_abc"}),
    (view("DELETE", CV), "openai.conversation.delete", "high", {"conversation_id": "conv_abc"}),
    (view("GET", CV + "/items"), "openai.conversation.item.list", "low", {"conversation_id": "conv_abc"}),
    (view("POST", CV + "/items", {"items": []}), "openai.conversation.item.create", "medium",
     {"conversation_id": "conv_abc"}),
    (view("GET", CV + "/items/msg_1"), "openai.conversation.item.read", "low",
     {"conversation_id": "conv_abc", "item_id": "msg_1"}),
    (view("DELETE", CV + "/items/msg_1"), "openai.conversation.item.delete", "high",
     {"conversation_id": "conv_abc", "item_id": "msg_1"}),
    # legacy completions, embeddings, moderations
    (view("POST", "/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "x", "max_tokens": 7,
                                      "stream": True}),
     "openai.completion.create", "medium",
     {"model": "gpt-3.5-turbo-instruct", "max_tokens": 7, "stream": True}),
    (view("POST", "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}),
     "openai.embedding.create", "medium", {"model": "text-embedding-3-small"}),
    (view("POST", "/v1/moderations", {"model": "omni-moderation-latest", "input": "x"}),
     "openai.moderation.create", "medium", {"model": "omni-moderation-latest"}),
    # images
    (view("POST", "/v1/images/generations", {"model": "gpt-image-1", "prompt": "cat", "stream": False}),
     "openai.image.generate", "medium", {"model": "gpt-image-1", "stream": False}),
    (form("POST", "/v1/images/edits", {"model": "gpt-image-1", "prompt": "hat", "stream": "true"},
          {"image": PNG, "mask": ("m.png", b"\x89PNG", "image/png")}),
     "openai.image.edit", "medium", {"model": "gpt-image-1", "stream": "true"}),
    (form("POST", "/v1/images/variations", {"model": "dall-e-2", "n": "2"}, {"image": PNG}),
     "openai.image.variation", "medium", {"model": "dall-e-2"}),
    # audio
    (view("POST", "/v1/audio/speech", {"model": "gpt-4o-mini-tts", "input": "hi", "voice": "alloy"}),
     "openai.audio.speech.create", "medium", {"model": "gpt-4o-mini-tts"}),
    (form("POST", "/v1/audio/transcriptions", {"model": "whisper-1", "stream": "false"}, {"file": WAV}),
     "openai.audio.transcription.create", "medium", {"model": "whisper-1", "stream": "false"}),
    (form("POST", "/v1/audio/translations", {"model": "whisper-1"}, {"file": WAV}),
     "openai.audio.translation.create", "medium", {"model": "whisper-1"}),
    # files
    (form("POST", "/v1/files", {"purpose": "fine-tune"},
          {"file": ("train.jsonl", b"{}\n", "application/jsonl")}),
     "openai.file.upload", "medium", {"purpose": "fine-tune", "file": "train.jsonl"}),
    (view("GET", "/v1/files", query=(("purpose", "batch"),)),
     "openai.file.list", "low", {"purpose": "batch"}),
    (view("GET", "/v1/files/file-abc"), "openai.file.read", "low", {"file_id": "file-abc"}),
    (view("GET", "/v1/files/file-abc/content"), "openai.file.content.read", "low", {"file_id": "file-abc"}),
    (view("DELETE", "/v1/files/file-abc"), "openai.file.delete", "high", {"file_id": "file-abc"}),
    # uploads
    (view("POST", "/v1/uploads", {"purpose": "assistants", "filename": "big.pdf", "bytes": 9000000,
                                  "mime_type": "application/pdf"}),
     "openai.upload.create", "medium", {"purpose": "assistants", "filename": "big.pdf", "bytes": 9000000}),
    (form("POST", "/v1/uploads/upload_abc/parts", {}, {"data": ("data", b"chunk", OCTETS)}),
     "openai.upload.part.create", "medium", {"upload_id": "upload_abc"}),
    (view("POST", "/v1/uploads/upload_abc/complete", {"part_ids": ["part_1"]}), "openai.upload.complete",
     "medium", {"upload_id": "upload_abc"}),
    (view("POST", "/v1/uploads/upload_abc/cancel"),
     "openai.upload.cancel", "medium", {"upload_id": "upload_abc"}),
    # fine-tuning
    (view("POST", "/v1/fine_tuning/jobs", {"model": "gpt-4o-mini", "training_file": "file-t",
                                           "validation_file": "file-v", "suffix": "x"}),
     "openai.fine_tuning.job.create", "medium",
     {"model": "gpt-4o-mini", "training_file": "file-t", "validation_file": "file-v"}),
    (view("GET", "/v1/fine_tuning/jobs"), "openai.fine_tuning.job.list", "low", {}),
    (view("GET", FT), "openai.fine_tuning.job.read", "low", {"fine_tuning_job_id": "ftjob-abc"}),
    (view("POST", FT + "/cancel"),
     "openai.fine_tuning.job.cancel", "medium", {"fine_tuning_job_id": "ftjob-abc"}),
    (view("POST", FT + "/pause"),
     "openai.fine_tuning.job.pause", "medium", {"fine_tuning_job_id": "ftjob-abc"}),
    (view("POST", FT + "/resume"),
     "openai.fine_tuning.job.resume", "medium", {"fine_tuning_job_id": "ftjob-abc"}),
    (view("GET", FT + "/events"),
     "openai.fine_tuning.job.event.list", "low", {"fine_tuning_job_id": "ftjob-abc"}),
    (view("GET", FT + "/checkpoints"), "openai.fine_tuning.job.checkpoint.list", "low",
     {"fine_tuning_job_id": "ftjob-abc"}),
    (view("GET", CK), "openai.fine_tuning.checkpoint.permission.list", "low",
     {"fine_tuned_model_checkpoint": "ft:gpt-4o-mini:acme::ckpt-step-10"}),
    (view("POST", CK, {"project_ids": ["proj_1"]}), "openai.fine_tuning.checkpoint.permission.create", "high",
     {"fine_tuned_model_checkpoint": "ft:gpt-4o-mini:acme::ckpt-step-10", "project_ids": ["proj_1"]}),
    (view("DELETE", CK + "/cp_1"), "openai.fine_tuning.checkpoint.permission.delete", "high",
     {"fine_tuned_model_checkpoint": "ft:gpt-4o-mini:acme::ckpt-step-10", "permission_id": "cp_1"}),
    # models
    (view("GET", "/v1/models"), "openai.model.list", "low", {}),
    (view("GET", "/v1/models/gpt-4o"), "openai.model.read", "low", {"model": "gpt-4o"}),
    (view("DELETE", "/v1/models/" + FT_MODEL), "openai.model.delete", "high", {"model": FT_MODEL}),
    # batches
    (view("POST", "/v1/batches", {"input_file_id": "file-b", "endpoint": "/v1/chat/completions",
                                  "completion_window": "24h"}),
     "openai.batch.create", "medium",
     {"input_file_id": "file-b", "endpoint": "/v1/chat/completions", "completion_window": "24h"}),
    (view("GET", "/v1/batches"), "openai.batch.list", "low", {}),
    (view("GET", "/v1/batches/batch_abc"), "openai.batch.read", "low", {"batch_id": "batch_abc"}),
    (view("POST", "/v1/batches/batch_abc/cancel"),
     "openai.batch.cancel", "medium", {"batch_id": "batch_abc"}),
    # vector stores
    (view("POST", "/v1/vector_stores", {"name": "docs", "file_ids": []}),
     "openai.vector_store.create", "medium",
     {"name": "docs"}),
    (view("GET", "/v1/vector_stores"), "openai.vector_store.list", "low", {}),
    (view("GET", VS), "openai.vector_store.read", "low", {"vector_store_id": "vs_abc"}),
    (view("POST", VS, {"name": "renamed"}), "openai.vector_store.update", "medium",
     {"vector_store_id": "vs_abc", "name": "renamed"}),
    (view("DELETE", VS), "openai.vector_store.delete", "high", {"vector_store_id": "vs_abc"}),
    (view("POST", VS + "/search", {"query": "refund policy", "max_num_results": 3}),
     "openai.vector_store.search",
     "low", {"vector_store_id": "vs_abc", "query": "refund policy"}),
    (view("POST", VS + "/files", {"file_id": "file-abc"}), "openai.vector_store.file.create", "medium",
     {"vector_store_id": "vs_abc", "file_id": "file-abc"}),
    (view("GET", VS + "/files"), "openai.vector_store.file.list", "low", {"vector_store_id": "vs_abc"}),
    (view("GET", VS + "/files/file-abc"), "openai.vector_store.file.read", "low",
     {"vector_store_id": "vs_abc", "file_id": "file-abc"}),
    (view("POST", VS + "/files/file-abc", {"attributes": {"k": "v"}}), "openai.vector_store.file.update",
     "medium", {"vector_store_id": "vs_abc", "file_id": "file-abc"}),
    (view("GET", VS + "/files/file-abc/content"), "openai.vector_store.file.content.read", "low",
     {"vector_store_id": "vs_abc", "file_id": "file-abc"}),
    (view("DELETE", VS + "/files/file-abc"), "openai.vector_store.file.delete", "high",
     {"vector_store_id": "vs_abc", "file_id": "file-abc"}),
    (view("POST", VS + "/file_batches", {"file_ids": ["file-1", "file-2"]}),
     "openai.vector_store.file_batch.create",
     "medium", {"vector_store_id": "vs_abc", "file_ids": ["file-1", "file-2"]}),
    (view("GET", VS + "/file_batches/vsfb_1"), "openai.vector_store.file_batch.read", "low",
     {"vector_store_id": "vs_abc", "batch_id": "vsfb_1"}),
    (view("POST", VS + "/file_batches/vsfb_1/cancel"), "openai.vector_store.file_batch.cancel", "medium",
     {"vector_store_id": "vs_abc", "batch_id": "vsfb_1"}),
    (view("GET", VS + "/file_batches/vsfb_1/files"), "openai.vector_store.file_batch.file.list", "low",
     {"vector_store_id": "vs_abc", "batch_id": "vsfb_1"}),
    # assistants
    (view("POST", "/v1/assistants", {"model": "gpt-4o", "name": "helper"}),
     "openai.assistant.create", "medium",
     {"model": "gpt-4o"}),
    (view("GET", "/v1/assistants"), "openai.assistant.list", "low", {}),
    (view("GET", "/v1/assistants/asst_abc"), "openai.assistant.read", "low", {"assistant_id": "asst_abc"}),
    (view("POST", "/v1/assistants/asst_abc", {"model": "gpt-4.1"}), "openai.assistant.update", "medium",
     {"assistant_id": "asst_abc", "model": "gpt-4.1"}),
    (view("DELETE", "/v1/assistants/asst_abc"),
     "openai.assistant.delete", "high", {"assistant_id": "asst_abc"}),
    # threads, messages, runs, steps
    (view("POST", "/v1/threads", {"messages": []}), "openai.thread.create", "medium", {}),
    (view("POST", "/v1/threads/runs", {"assistant_id": "asst_abc", "model": "gpt-4o", "stream": True,
                                       "max_completion_tokens": 100}),
     "openai.thread.create_and_run", "medium",
     {"assistant_id": "asst_abc", "model": "gpt-4o", "stream": True, "max_completion_tokens": 100}),
    (view("GET", T), "openai.thread.read", "low", {"thread_id": "thread_abc"}),
    (view("POST", T, {"metadata": {}}), "openai.thread.update", "medium", {"thread_id": "thread_abc"}),
    (view("DELETE", T), "openai.thread.delete", "high", {"thread_id": "thread_abc"}),
    (view("POST", T + "/messages", {"role": "user", "content": "hi"}),
     "openai.thread.message.create", "medium",
     {"thread_id": "thread_abc"}),
    (view("GET", T + "/messages"), "openai.thread.message.list", "low", {"thread_id": "thread_abc"}),
    (view("GET", T + "/messages/msg_1"), "openai.thread.message.read", "low",
     {"thread_id": "thread_abc", "message_id": "msg_1"}),
    (view("POST", T + "/messages/msg_1", {"metadata": {}}), "openai.thread.message.update", "medium",
     {"thread_id": "thread_abc", "message_id": "msg_1"}),
    (view("DELETE", T + "/messages/msg_1"), "openai.thread.message.delete", "high",
     {"thread_id": "thread_abc", "message_id": "msg_1"}),
    (view("POST", T + "/runs", {"assistant_id": "asst_abc", "stream": False}),
     "openai.thread.run.create", "medium",
     {"thread_id": "thread_abc", "assistant_id": "asst_abc", "stream": False}),
    (view("GET", T + "/runs"), "openai.thread.run.list", "low", {"thread_id": "thread_abc"}),
    (view("GET", T + "/runs/run_1"),
     "openai.thread.run.read", "low", {"thread_id": "thread_abc", "run_id": "run_1"}),
    (view("POST", T + "/runs/run_1", {"metadata": {}}), "openai.thread.run.update", "medium",
     {"thread_id": "thread_abc", "run_id": "run_1"}),
    (view("POST", T + "/runs/run_1/cancel"), "openai.thread.run.cancel", "medium",
     {"thread_id": "thread_abc", "run_id": "run_1"}),
    (view("POST", T + "/runs/run_1/submit_tool_outputs", {"tool_outputs": [], "stream": True}),
     "openai.thread.run.submit_tool_outputs", "medium", {"thread_id": "thread_abc", "run_id": "run_1",
                                                         "stream": True}),
    (view("GET", T + "/runs/run_1/steps"), "openai.thread.run.step.list", "low",
     {"thread_id": "thread_abc", "run_id": "run_1"}),
    (view("GET", T + "/runs/run_1/steps/step_1"), "openai.thread.run.step.read", "low",
     {"thread_id": "thread_abc", "run_id": "run_1", "step_id": "step_1"}),
    # realtime
    (view("GET", "/v1/realtime", query=(("model", "gpt-realtime"),)), "openai.realtime.connect", "medium",
     {"model": "gpt-realtime"}),
    (view("POST", "/v1/realtime/client_secrets", {"session": {"type": "realtime"}}),
     "openai.realtime.client_secret.create", "high", {}),
    (view("POST", "/v1/realtime/sessions", {"model": "gpt-4o-realtime-preview"}),
     "openai.realtime.session.create",
     "high", {"model": "gpt-4o-realtime-preview"}),
    (view("POST", "/v1/realtime/transcription_sessions", {}), "openai.realtime.transcription_session.create",
     "high", {}),
]


@pytest.mark.parametrize(("req", "action", "risk", "params"), GOLDEN,
                         ids=[f"{v.method} {v.path} -> {a}" for v, a, _, _ in GOLDEN])
def test_golden(req: RequestView, action: str, risk: str, params: dict[str, object]) -> None:
    got = OA.classify(req)
    assert (got.name, got.risk, got.connector) == (action, risk, "openai")
    assert dict(got.params) == params
    assert got.unavailable == frozenset()


@pytest.mark.parametrize("route", OPENAI_ROUTES, ids=[f"{r.method} {r.template}" for r in OPENAI_ROUTES])
def test_golden_table_covers_every_route(route: Route) -> None:
    pattern = route.compile()
    assert any(v.method == route.method and pattern.match(v.path) and a == f"openai.{route.action}"
               for v, a, _, _ in GOLDEN), route


def test_at_least_thirty_distinct_actions() -> None:
    assert len(OA.actions - UNKNOWN) >= 30
    for name in ("chat.create", "response.create", "embedding.create", "image.generate", "file.upload",
                 "fine_tuning.job.create", "model.delete", "batch.create"):
        assert f"openai.{name}" in OA.actions


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/not-a-thing"),
    ("POST", "/chat/completions"),              # outside /v1
    ("GET", "/v2/models"),
    ("GET", "/"),
    ("GET", "/v1"),
    ("PUT", "/v1/models/gpt-4o"),
    ("PATCH", "/v1/assistants/asst_1"),         # updates are POSTs
    ("DELETE", "/v1/batches/batch_1"),          # batches cannot be deleted
    ("GET", "/v1/chat/completions/c1/extra"),
    ("POST", "/v1/files/file-1/content"),
    ("GET", "/v1/videos"),                      # not modelled: fails closed
    ("HEAD", "/v1/models"),
    ("OPTIONS", "/v1/chat/completions"),
    ("TRACE", "/v1/models"),
    ("PROPFIND", "/v1/files"),
])
def test_unknown(method: str, path: str) -> None:
    got = OA.classify(view(method, path))
    verb = method.lower()
    assert got.name == f"openai.unknown.{verb if verb in METHODS else 'other'}"
    assert (got.risk, got.connector) == ("high", "openai")
    assert dict(got.params) == {"method": method, "path": path}
    assert got.name in OA.actions


@pytest.mark.parametrize("req", [
    view("POST", "/v1/chat/completions", b'{"model": "gpt-4o", "stre'),                 # malformed JSON
    view("POST", "/v1/chat/completions", b'["model", "gpt-4o"]'),                      # not an object
    view("POST", "/v1/chat/completions", b"\xff\xfe{}"),                               # not UTF-8
    view("POST", "/v1/chat/completions", {"model": "gpt-4o"}, complete=False),         # cut at the bound
], ids=["malformed", "array", "not-utf8", "truncated"])
def test_unreadable_body_marks_params_unavailable(req: RequestView) -> None:
    got = OA.classify(req)
    assert got.name == "openai.chat.create"
    assert dict(got.params) == {}
    assert got.unavailable == {"model", "stream", "max_tokens", "max_completion_tokens"}


def test_truncated_multipart_upload_keeps_action_and_ids() -> None:
    big = form("POST", "/v1/files", {"purpose": "assistants"}, {"file": ("dump.bin", b"x" * 64, OCTETS)},
               complete=False)
    got = OA.classify(big)
    assert (got.name, dict(got.params)) == ("openai.file.upload", {})
    assert got.unavailable == {"purpose", "file"}
    part = form("POST", "/v1/uploads/upload_9/parts", {}, {"data": ("data", b"x", OCTETS)}, complete=False)
    got = OA.classify(part)
    assert (got.name, dict(got.params), got.unavailable) == ("openai.upload.part.create",
                                                             {"upload_id": "upload_9"}, frozenset())


def test_missing_and_empty_bodies() -> None:
    empty = OA.classify(view("POST", "/v1/embeddings"))
    assert (empty.name, dict(empty.params), empty.unavailable) == ("openai.embedding.create", {}, frozenset())
    partial = OA.classify(view("POST", "/v1/responses", {"input": "hi"}))
    assert (dict(partial.params), partial.unavailable) == ({}, frozenset())


def test_form_encoded_body() -> None:
    req = RequestView(method="POST", scheme="https", host="api.openai.com", port=443, path="/v1/embeddings",
                      headers={"content-type": "application/x-www-form-urlencoded"}, body=b"model=m1&input=x")
    assert dict(OA.classify(req).params) == {"model": "m1"}


@pytest.mark.parametrize(("method", "path", "action"), [
    ("post", "/v1/chat/completions", "openai.chat.create"),
    ("POST", "/v1//chat//completions", "openai.chat.create"),
    ("POST", "/v1/chat%2Fcompletions", "openai.chat.create"),
    ("POST", "/v1/files/../chat/completions", "openai.chat.create"),
    ("DELETE", "/v1/models/../files/file-1", "openai.file.delete"),
    ("GET", "/v1/models/", "openai.model.list"),
    ("POST", "/v1/threads/runs", "openai.thread.create_and_run"),   # literal before the thread id
    ("POST", "/v1/threads/thread_runs", "openai.thread.update"),
])
def test_normalised_paths_and_ordering(method: str, path: str, action: str) -> None:
    assert OA.classify(view(method, path)).name == action


def test_class_attributes() -> None:
    assert (OpenAIConnector.type_name, OpenAIConnector.namespace) == ("openai", "openai")
    assert OpenAIConnector.default_hosts == ("api.openai.com",)
    assert OpenAIConnector("oa", ("API.OpenAI.com",)).hosts == ("api.openai.com",)


def _sample_path(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x9", template)


@pytest.mark.parametrize("route", [r for r in OPENAI_ROUTES if r.when is None],
                         ids=[f"{r.method} {r.template}" for r in OPENAI_ROUTES if r.when is None])
def test_every_plain_route_is_reachable(route: Route) -> None:
    """No route is shadowed by an earlier one: a request built from its template yields its own action."""
    got = OA.classify(view(route.method, _sample_path(route.template)))
    assert (got.name, got.risk) == (f"openai.{route.action}", route.risk)


def test_route_table_is_consistent() -> None:
    assert OA.actions == {f"openai.{r.action}" for r in OPENAI_ROUTES} | UNKNOWN
    for r in OPENAI_ROUTES:
        assert r.method == r.method.upper()
        assert r.template.startswith("/v1/") or r.template == "/v1"
        assert r.risk in ("low", "medium", "high", "critical")
        if r.action.endswith(".delete"):
            assert r.risk in ("high", "critical"), r
        if r.action.endswith((".read", ".list")):
            assert r.risk == "low", r


def test_actions_cover_everything_parse_emits() -> None:
    """Every method against every template, its parent and an extension: the result is always listed."""
    paths = {"/", "/v1", "/v1/x9/x9/x9/x9/x9/x9/x9"}
    for r in OPENAI_ROUTES:
        sample = _sample_path(r.template)
        paths |= {sample, sample + "/x9", sample.rsplit("/", 1)[0]}
    for method in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "CONNECT"):
        for path in paths:
            got = OA.classify(view(method, path))
            assert got.name in OA.actions, (method, path)
            assert got.connector == "openai"
