"""``humanlm serve``: a user simulator behind an OpenAI-compatible HTTP API (FastAPI + uvicorn).

Routes: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions`` (the conversation from
the simulated user's side, see ``humanlm.simulate.user``; ``stream``, ``temperature``, ``top_p``,
``max_tokens``, ``n``, ``seed``, ``stop``) and ``POST /v1/completions`` (raw prompt text in,
raw completion out). Under ``/flipped/v1/`` the messages are read as an agent benchmark's user
model gets them (its own turns as ``assistant``; tau2-bench's scenario as persona and goal; see
``humanlm.simulate.benchmark_user``). Each chat choice carries a ``humanlm`` extension field:
``ended``, ``states``, ``thinking``, ``raw``. An ended conversation answers ``content`` = the end text
(default ``<|endconversation|>``) so a client that ignores the extension still gets a
non-empty turn. Bad requests get OpenAI-shaped 4xx errors; docs/serve.md has the details.

One client cannot take the server down: bodies are limited (``Guard``), requests are read in
worker threads (never on the event loop), and the work of a client that leaves is cancelled.

Run it:

    humanlm serve --model hf:runs/demo/humanlm/model --port 8000
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from humanlm.errors import ConfigError, HumanlmError
from humanlm.generate.batching import BatchingGenerator
from humanlm.generate.build import GENERATOR_KINDS, build_generator
from humanlm.generate.protocol import Generation, GenerationSettings
from humanlm.generate.vllm_settings import VLLMSettings
from humanlm.llm.specs import parse_spec
from humanlm.serve.guard import Guard
from humanlm.serve.limits import LARGE_BODY_BYTES, MAX_BODY_MB
from humanlm.serve.protocol import (
    BadRequest,
    Job,
    Service,
    cut_stops,
    error_response,
    sse,
    usage,
)
from humanlm.simulate.user import UserSimulator, resolve_mode
from humanlm.states import END_SIGNAL

__all__ = ["build_app", "run_serve"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


async def _disconnected(request: Request) -> None:
    # Once the body is read, the next message is the disconnect (or the response's end).
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_gone(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result, or ``_ClientGone`` as soon as the client leaves; then ``work`` is
    cancelled, which drops its prompts from the batch queue or stops their rows."""
    task = asyncio.ensure_future(work)
    # A task cancelled here may still end in an error nobody awaits: read it, so it is not logged.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        raise _ClientGone
    return task.result()


class _OneAtATime:
    """Blocking calls in a worker thread, one at a time. A call keeps its turn until it really
    ends, also when its caller was cancelled (the client left) and nobody waits for it."""

    def __init__(self) -> None:
        self._turn = asyncio.Semaphore(1)

    async def run(self, call: Callable[[], T]) -> T:
        await self._turn.acquire()
        loop = asyncio.get_running_loop()
        lock = threading.Lock()
        state = {"started": False, "dropped": False}

        def in_thread() -> T:
            with lock:
                if state["dropped"]:  # cancelled before a thread took it
                    raise _ClientGone
                state["started"] = True
            try:
                return call()
            finally:
                loop.call_soon_threadsafe(self._turn.release)

        try:
            return await anyio.to_thread.run_sync(in_thread, abandon_on_cancel=True)
        except BaseException:
            with lock:
                if not state["started"]:
                    state["dropped"] = True
                    self._turn.release()
            raise


def build_app(
    simulator: UserSimulator,
    *,
    model_name: str,
    api_key: str | None = None,
    end_text: str = END_SIGNAL,
    seed: int = 0,
    no_repeat_ngram_size: int = GenerationSettings.no_repeat_ngram_size,
    context_length: int | None = None,
    max_body_mb: float = MAX_BODY_MB,
) -> Any:
    """The FastAPI application serving ``simulator``.

    Args:
        simulator: the user simulator (its generator decides batching and the n-gram ban).
        model_name: the id listed by ``/v1/models`` (requests may name any model).
        api_key: when set, ``/v1/*`` requests must send ``Authorization: Bearer <key>``.
        end_text: the ``content`` of a reply that ends the conversation.
        seed: the sampling seed of requests that send none.
        no_repeat_ngram_size: the n-gram ban of every request (0: off), where applied.
        context_length: the most tokens of prompt plus reply (default: the model's own limit).
        max_body_mb: the largest request body taken, in MiB (413 above it).
    """
    service = Service(
        simulator,
        model_name=model_name,
        end_text=end_text,
        seed=seed,
        ngram=no_repeat_ngram_size,
        context_length=context_length,
    )
    app = FastAPI(title="humanlm serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    large = _OneAtATime()  # bodies over LARGE_BODY_BYTES are read one at a time

    @app.exception_handler(HTTPException)
    async def httperror_response(request: Request, exc: HTTPException) -> Any:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validationerror_response(request: Request, exc: RequestValidationError) -> Any:
        return error_response(400, "the request is not valid")

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> Any:
        return error_response(exc.status, exc.message, param=exc.param, code=exc.code)

    @app.exception_handler(_ClientGone)
    async def client_gone(request: Request, exc: _ClientGone) -> Any:
        # Nobody reads it; the access log records the 499.
        return error_response(499, "the client closed the request", code="client_closed")

    def engine_problem() -> str | None:
        # An engine that runs in another process (vLLM) can die under the server.
        return simulator.generator.health()

    @app.exception_handler(Exception)
    async def internalerror_response(request: Request, exc: Exception) -> Any:
        problem = engine_problem()
        if problem is not None:
            logger.error("request failed: %s", problem)
            return error_response(503, problem, code="engine_unavailable")
        logger.exception("request failed")
        return error_response(
            500, "the server failed to answer this request", code="internal_error"
        )

    async def off_loop(size: int, read: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(read, *args, **kwargs)
        if size > LARGE_BODY_BYTES:
            return await large.run(call)
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)

    async def generate(job: Job) -> list[Generation]:
        try:
            generations = await simulator.generator.generate(job.prompts, job.settings)
        except HumanlmError as err:  # the proxied backend refused our key or model
            raise BadRequest(
                f"the model backend refused the request ({err})", status=502, code="backend_error"
            ) from None
        failed = [g for g in generations if g.text is None]
        if failed:
            raise BadRequest(
                f"the model backend failed ({failed[0].error})", code="backend_error", status=502
            )
        return generations

    @app.get("/health")
    async def health() -> Any:
        problem = engine_problem()
        if problem is not None:
            return JSONResponse(
                status_code=503, content={"status": "error", "model": model_name, "error": problem}
            )
        return {"status": "ok", "model": model_name}

    @app.get("/v1/models")
    @app.get("/flipped/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "humanlm"}],
        }

    @app.post("/v1/chat/completions")
    @app.post("/flipped/v1/chat/completions")
    async def chat(request: Request) -> Any:
        raw = await request.body()
        flipped = request.url.path.startswith("/flipped/")

        async def answer() -> Any:
            job = await off_loop(len(raw), service.prepare_chat, raw, flipped=flipped)
            generations = await generate(job)
            return await anyio.to_thread.run_sync(chat_response, job, generations)

        return await _unless_gone(request, answer())

    def chat_response(job: Job, generations: list[Generation]) -> Any:
        prompt = job.prompts[0]  # the n copies of one prompt
        replies = [simulator.read(g, prompt) for g in generations]
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        choices = [service.choice(i, r, job.stops) for i, r in enumerate(replies)]
        counted = usage(job.prompt_tokens, [r.completion_tokens for r in replies])
        model = job.body["model"]
        if not job.body.get("stream"):
            return JSONResponse(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": choices,
                    "usage": counted,
                }
            )
        head = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
        chunks = []
        for c in choices:
            i = c["index"]
            opening = {"role": "assistant", "content": ""}
            chunks.append(
                {**head, "choices": [{"index": i, "delta": opening, "finish_reason": None}]}
            )
            content = {"content": c["message"]["content"]}
            chunks.append(
                {**head, "choices": [{"index": i, "delta": content, "finish_reason": None}]}
            )
            last = {
                "index": i,
                "delta": {},
                "finish_reason": c["finish_reason"],
                "humanlm": c["humanlm"],
            }
            chunks.append({**head, "choices": [last]})
        options = job.body.get("stream_options")
        if isinstance(options, Mapping) and options.get("include_usage"):
            chunks.append({**head, "choices": [], "usage": counted})
        return StreamingResponse(sse(chunks), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        raw = await request.body()

        async def answer() -> Any:
            job = await off_loop(len(raw), service.prepare_completions, raw)
            generations = await generate(job)
            return await anyio.to_thread.run_sync(completions_response, job, generations)

        return await _unless_gone(request, answer())

    def completions_response(job: Job, generations: list[Generation]) -> Any:
        choices = []
        for i, g in enumerate(generations):
            text, stopped = cut_stops(g.text or "", job.stops)
            choices.append(
                {
                    "index": i,
                    "text": text,
                    "logprobs": None,
                    "finish_reason": "stop" if stopped else (g.finish_reason or "stop"),
                }
            )
        counted = usage(job.prompt_tokens, [g.completion_tokens for g in generations])
        ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": job.body["model"],
        }
        if not job.body.get("stream"):
            return JSONResponse({**head, "choices": choices, "usage": counted})
        chunks = [{**head, "choices": [c]} for c in choices]
        return StreamingResponse(sse(chunks), media_type="text/event-stream")

    return Guard(app, api_key=api_key, max_body_bytes=int(max_body_mb * (1 << 20)))


def run_serve(
    *,
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key_env: str | None = None,
    mode: str | None = None,
    served_name: str | None = None,
    max_batch: int = 32,
    batch_window_ms: float = 20.0,
    end_text: str = END_SIGNAL,
    backend_key_env: str | None = None,
    context_length: int | None = None,
    max_body_mb: float = MAX_BODY_MB,
    vllm: VLLMSettings | None = None,
) -> None:
    """Serve ``model`` until interrupted.

    Example:
        >>> run_serve(model="hf:runs/demo/humanlm/model", port=8000)  # doctest: +SKIP

    Supports ``hf:`` (concurrent requests batched dynamically into one ``generate``),
    ``vllm:`` (vLLM's async engine schedules them; ``vllm`` sets how it starts) and
    ``openai:MODEL@URL`` (a proxy to a
    ``/v1/completions`` endpoint serving a model trained with our template).

    The options and the address are checked before the model loads: a busy port stops the
    command at once.

    Raises:
        ConfigError: a bad spec, mode or body limit, ``api_key_env`` names an unset variable,
            or the address cannot be bound (the port is in use).
    """
    import os

    import uvicorn

    if not max_body_mb > 0:
        raise ConfigError(f"--max-body-mb {max_body_mb}: must be a positive number of MiB")
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ConfigError(
                f"--api-key-env {api_key_env}: the variable is not set; export it, or drop the "
                "option to serve without a key"
            )
    chosen_mode = resolve_mode(model, mode)  # before the model loads: a bad mode file stops here
    parsed = parse_spec(model, role="simulator", kinds=GENERATOR_KINDS)
    if parsed.kind == "openai" and parsed.base_url is None:
        raise ConfigError(
            f"model spec {model!r}: the proxy needs the completions endpoint, "
            "openai:MODEL@http://HOST:PORT/v1"
        )
    sock = _bind(host, port)  # listens once the model is loaded
    # An openai: model is proxied through its text API: it gets our rendered prompt.
    generator = build_generator(
        model,
        api="completions",
        api_key_env=backend_key_env,
        key_flag="--backend-api-key-env",
        vllm=vllm,
    )
    if parsed.kind == "hf":
        window_s = batch_window_ms / 1000
        generator = BatchingGenerator(generator, max_batch=max_batch, window_s=window_s)
    simulator = UserSimulator(generator, mode=chosen_mode)
    name = served_name or model.split(":", 1)[1].rstrip("/").split("/")[-1].split("@")[0]
    app = build_app(
        simulator,
        model_name=name,
        api_key=api_key,
        end_text=end_text,
        context_length=context_length,
        max_body_mb=max_body_mb,
    )
    logger.info("serving %s as %r on http://%s:%d/v1", generator.spec, name, host, port)
    # uvicorn's own access log is off: the guard writes one line per request.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not listening yet), or one line saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is fine
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"--port {port}: {host}:{port} is in use (another server?); stop it or choose "
                "another --port"
            ) from None
        reason = err.strerror or str(err)
        raise ConfigError(f"--host {host}: cannot listen on {host}:{port} ({reason})") from None
    sock.set_inheritable(True)
    return sock
