"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It answers ``POST /v1/chat/completions`` (and the text API, ``POST /v1/completions``) from a
queue of scripted replies, else from a reply function, with configurable latency, seeded random
faults, and ``usage`` token counts; it records every request. It runs in a background thread
(stdlib ``http.server``), so synchronous and asynchronous clients can both use it.

Like OpenAI, it refuses a chat request for one of OpenAI's reasoning models (by the model name
the request asks for: ``gpt-5*`` but its ``-chat`` snapshots, ``o1*``, ``o3*``, ``o4*``) that
carries a field those models refuse: ``max_tokens``, ``temperature`` or ``top_p`` other than 1,
``presence_penalty`` or ``frequency_penalty`` other than 0, ``logprobs``, ``top_logprobs``,
``logit_bias``. The answer is OpenAI's: HTTP 400 with its ``invalid_request_error`` body, before
any scripted reply is used. So a test against such a model name fails where OpenAI would refuse
the request (``openai_rules=False`` turns this off).

Example:
    >>> from humanlm.testing import ScriptedServer, faults
    >>> with ScriptedServer(["hello"]) as server:  # doctest: +SKIP
    ...     server.enqueue(faults.rate_limited(0.05), "second reply")
    ...     client = openai.OpenAI(base_url=server.base_url, api_key="x")
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["RecordedRequest", "Reply", "ReplyFn", "ScriptedServer", "openai_refusal"]

logger = logging.getLogger(__name__)


@dataclass
class Reply:
    """One scripted answer.

    Attributes:
        content: the assistant message content (``None`` sends ``null``).
        status: HTTP status; anything but 200 sends an OpenAI-style error body.
        headers: extra response headers (``Retry-After`` ...).
        delay_s: extra wait before answering (a large value = a reply that never comes in time).
        body: a raw body sent instead of the chat-completion JSON.
        usage: ``(prompt_tokens, completion_tokens)``; default: characters / 4.
        disconnect: close the connection without answering.
    """

    content: str | None = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    body: str | None = None
    usage: tuple[int, int] | None = None
    disconnect: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def is_text_completion(self) -> bool:
        """A request to the text API (``/v1/completions``), which sends a prompt string."""
        return not self.path.rstrip("/").endswith("/chat/completions")

    @property
    def prompt(self) -> str:
        """The content of the last message (the judge prompt), or the text API's prompt."""
        if self.is_text_completion:
            return str(self.body.get("prompt") or "")
        messages = self.messages
        content = messages[-1].get("content") if messages else ""
        return content if isinstance(content, str) else json.dumps(content)


ReplyFn = Callable[[RecordedRequest], "Reply | str"]

# OpenAI's reasoning models, as the API names them (written apart from the client's own rule in
# ``humanlm.llm.params``, so that a mistake there shows up here).
_REASONING_MODEL = re.compile(r"^(?:gpt-5(?:\.\d+)?(?!-chat)|o[134])(?:-|$)")
_FIXED_VALUES = {"temperature": 1, "top_p": 1, "presence_penalty": 0, "frequency_penalty": 0}
_UNSUPPORTED = ("max_tokens", "logprobs", "top_logprobs", "logit_bias")


def openai_refusal(body: dict[str, Any]) -> dict[str, Any] | None:
    """The error body OpenAI answers (with HTTP 400) to this chat request, or ``None``.

    Only requests for a reasoning model are refused, for the fields its chat API documents as
    unsupported (module docstring).
    """
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str) or not _REASONING_MODEL.match(model):
        return None
    for name in _UNSUPPORTED:
        if name in body and (name == "max_tokens" or body[name] not in (None, False)):
            use = " Use 'max_completion_tokens' instead." if name == "max_tokens" else ""
            message = f"Unsupported parameter: '{name}' is not supported with this model.{use}"
            return _openai_error(message, name, "unsupported_parameter")
    for name, only in _FIXED_VALUES.items():
        value = body.get(name)
        if value is not None and value != only:
            message = (
                f"Unsupported value: '{name}' does not support {json.dumps(value)} with this "
                f"model. Only the default ({only}) value is supported."
            )
            return _openai_error(message, name, "unsupported_value")
    return None


def _openai_error(message: str, param: str, code: str) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops bursts of connections, and a dropped SYN is
    # retried only after a second: far more than a test's latency budget.
    request_queue_size = 1024


def _as_reply(reply: Reply | str) -> Reply:
    return reply if isinstance(reply, Reply) else Reply(content=reply)


class ScriptedServer:
    """An OpenAI-compatible chat server that plays back scripted replies.

    Replies are taken from the queue (``replies`` and ``enqueue``) first, then from
    ``reply_fn``; with neither, the server answers 500. With ``fault_rate > 0`` a seeded random
    draw replaces a reply by one of ``faults`` (the queue is not consumed then).

    Args:
        replies: scripted replies (strings are message contents).
        reply_fn: computes a reply from a request when the queue is empty.
        latency_s: time from a request's arrival to its answer (the server's own work included).
        fault_rate: probability that a request gets a random fault instead.
        faults: fault factories to draw from (see ``humanlm.testing.faults``).
        seed: seed of the fault draws.
        model: model name echoed in replies.
        openai_rules: refuse what OpenAI refuses for its reasoning models (module docstring).
    """

    def __init__(
        self,
        replies: Iterable[Reply | str] = (),
        *,
        reply_fn: ReplyFn | None = None,
        latency_s: float = 0.0,
        fault_rate: float = 0.0,
        faults: Sequence[Callable[[], Reply]] = (),
        seed: int = 0,
        model: str = "scripted",
        openai_rules: bool = True,
    ):
        self.reply_fn = reply_fn
        self.openai_rules = openai_rules
        self.refused = 0  # requests answered with a provider's refusal
        self.latency_s = latency_s
        self.fault_rate = fault_rate
        self.faults = list(faults)
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.faults_sent = 0
        self.in_flight = 0
        self.peak_in_flight = 0  # most chat requests answered at once
        self._queue: deque[Reply] = deque(_as_reply(r) for r in replies)
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = 0
        if fault_rate and not self.faults:
            raise ValueError("fault_rate > 0 needs a list of faults to draw from")

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ScriptedServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        handler = type("Handler", (_Handler,), {"scripted": self})
        self._httpd = _HTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; replies still waiting (hangs) are released at once."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running; call start()")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting -------------------------------------------------------------------------

    def enqueue(self, *replies: Reply | str) -> None:
        """Add replies to the end of the queue."""
        with self._lock:
            self._queue.extend(_as_reply(r) for r in replies)

    @property
    def pending(self) -> int:
        """Scripted replies not yet used."""
        with self._lock:
            return len(self._queue)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat-completion requests received so far."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def completion_requests(self) -> list[RecordedRequest]:
        """The text-completion (``/v1/completions``) requests received so far."""
        with self._lock:
            return [r for r in self.requests if r.is_text_completion]

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.fault_rate and self._rng.random() < self.fault_rate:
                self.faults_sent += 1
                return self._rng.choice(self.faults)()
            if self._queue:
                return self._queue.popleft()
        if self.reply_fn is not None:
            return _as_reply(self.reply_fn(request))
        return Reply(status=500, body=json.dumps({"error": {"message": "no scripted reply"}}))

    def _completion_body(self, request: RecordedRequest, reply: Reply) -> bytes:
        if reply.body is not None:
            return reply.body.encode("utf-8")
        if reply.status != 200:
            error = {"message": f"scripted error {reply.status}", "type": "scripted", "code": None}
            return json.dumps({"error": error}).encode("utf-8")
        prompt_chars = sum(len(str(m.get("content") or "")) for m in request.messages)
        prompt_chars += len(request.prompt) if request.is_text_completion else 0
        content = reply.content
        prompt_tokens, completion_tokens = reply.usage or (
            max(1, prompt_chars // 4),
            len(content or "") // 4,
        )
        with self._lock:
            self._ids += 1
            ident = self._ids
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }
        if request.is_text_completion:
            choice = {"index": 0, "text": content or "", "logprobs": None, "finish_reason": "stop"}
        body = {
            "id": f"{'cmpl' if request.is_text_completion else 'chatcmpl'}-scripted-{ident}",
            "object": "text_completion" if request.is_text_completion else "chat.completion",
            "created": int(time.time()),
            "model": request.model or self.model,
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return json.dumps(body).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    scripted: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("scripted server: " + format, *args)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True  # the client gave up (timeout): nothing to tell it

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path.rstrip("/").endswith("/models"):
            data = {"object": "list", "data": [{"id": self.scripted.model, "object": "model"}]}
            self._send(200, json.dumps(data).encode("utf-8"))
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        request = RecordedRequest(
            "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
        )
        if not self.path.rstrip("/").endswith("/completions"):
            self._send(404, b'{"error": {"message": "only /v1/(chat/)completions is served"}}')
            return
        server = self.scripted
        refusal = (
            openai_refusal(body) if server.openai_rules and not request.is_text_completion else None
        )
        if refusal is not None:
            with server._lock:
                server.requests.append(request)
                server.refused += 1
            self._send(400, json.dumps(refusal).encode("utf-8"))
            return
        reply = server._next_reply(request)
        payload = server._completion_body(request, reply)
        # The latency is the whole service time: reading the request and computing the reply
        # are part of it, so a busy machine does not slow the server down on top of it.
        wait = server.latency_s + reply.delay_s - (time.monotonic() - arrived)
        with server._lock:
            server.in_flight += 1
            server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
        try:
            stopped = wait > 0 and server._stopping.wait(wait)
        finally:
            with server._lock:
                server.in_flight -= 1
        if stopped:
            self.close_connection = True
            return
        if reply.disconnect:
            self.close_connection = True
            return
        self._send(reply.status, payload, reply.headers)
