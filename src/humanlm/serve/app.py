"""``humanlm serve``: a user simulator behind an OpenAI-compatible HTTP API (FastAPI + uvicorn).

Routes: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions`` (the conversation from
the simulated user's side, see ``humanlm.simulate.user``; ``stream``, ``temperature``, ``top_p``,
``max_tokens``, ``n``, ``seed``, ``stop``) and ``POST /v1/completions`` (raw prompt text in,
raw completion out). Under ``/flipped/v1/`` the chat roles are swapped first, for harnesses that
send the user simulator's own turns as ``assistant`` (tau-bench style). Each chat choice carries a ``humanlm`` extension field: ``ended``,
``states``, ``thinking``, ``raw``. An ended conversation answers ``content`` = the end text
(default ``<|endconversation|>``) so a client that ignores the extension still gets a
non-empty turn. Bad requests get OpenAI-shaped 4xx errors; docs/serve.md has the details.

Run it:

    humanlm serve --model hf:runs/demo/humanlm/model --port 8000
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from humanlm.errors import ConfigError
from humanlm.generate.batching import BatchingGenerator
from humanlm.generate.build import GENERATOR_KINDS, build_generator
from humanlm.generate.prompt import SimPrompt
from humanlm.generate.vllm_settings import VLLMSettings
from humanlm.llm.specs import parse_spec
from humanlm.serve.protocol import (
    BadRequest,
    Service,
    cut_stops,
    error_response,
    flip_roles,
    parse_stops,
    sse,
    usage,
)
from humanlm.simulate.user import UserSimulator, resolve_mode
from humanlm.states import END_SIGNAL

__all__ = ["build_app", "run_serve"]

logger = logging.getLogger(__name__)


def build_app(
    simulator: UserSimulator,
    *,
    model_name: str,
    api_key: str | None = None,
    end_text: str = END_SIGNAL,
    seed: int = 0,
    no_repeat_ngram_size: int = 4,
    context_length: int | None = None,
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

    @app.exception_handler(HTTPException)
    async def httperror_response(request: Request, exc: HTTPException) -> Any:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validationerror_response(request: Request, exc: RequestValidationError) -> Any:
        return error_response(400, "the request is not valid")

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> Any:
        return error_response(exc.status, exc.message, param=exc.param, code=exc.code)

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

    @app.middleware("http")
    async def check_key(request: Request, call_next: Any) -> Any:
        if api_key and request.url.path.startswith(("/v1/", "/flipped/v1/")):
            sent = request.headers.get("authorization", "")
            token = sent[7:] if sent.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(token.encode(), api_key.encode()):
                return error_response(401, "invalid or missing API key", code="invalid_api_key")
        return await call_next(request)

    async def read_json(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except ValueError:
            raise BadRequest("the request body is not valid JSON") from None

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
        body = await read_json(request)
        n = service.check_common(body)
        if request.url.path.startswith("/flipped/"):
            body = {**body, "messages": flip_roles(body.get("messages"))}
        stops = parse_stops(body)
        prompt, prompt_tokens = service.chat_prompt(body)
        settings = service.settings(body, prompt_tokens, stop=simulator.settings.stop)
        generations = await simulator.generator.generate([prompt] * n, settings)
        if all(g.text is None for g in generations):
            return error_response(
                502, f"the model backend failed ({generations[0].error})", code="backend_error"
            )
        replies = [simulator.read(g, prompt) for g in generations]
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        choices = [service.choice(i, r, stops) for i, r in enumerate(replies)]
        counted = usage(prompt_tokens, [r.completion_tokens for r in replies])
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": body["model"],
                    "choices": choices,
                    "usage": counted,
                }
            )
        head = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body["model"],
        }
        chunks = []
        for c in choices:
            i = c["index"]
            chunks.append(
                {
                    **head,
                    "choices": [
                        {
                            "index": i,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ],
                }
            )
            chunks.append(
                {
                    **head,
                    "choices": [
                        {
                            "index": i,
                            "delta": {"content": c["message"]["content"]},
                            "finish_reason": None,
                        }
                    ],
                }
            )
            chunks.append(
                {
                    **head,
                    "choices": [
                        {
                            "index": i,
                            "delta": {},
                            "finish_reason": c["finish_reason"],
                            "humanlm": c["humanlm"],
                        }
                    ],
                }
            )
        options = body.get("stream_options")
        if isinstance(options, Mapping) and options.get("include_usage"):
            chunks.append({**head, "choices": [], "usage": counted})
        return StreamingResponse(sse(chunks), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await read_json(request)
        n = service.check_common(body)
        if body.get("echo"):
            raise BadRequest("echo is not supported", param="echo")
        raw = body.get("prompt")
        texts = [raw] if isinstance(raw, str) else raw
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(t, str) and t for t in texts)
        ):
            raise BadRequest("prompt must be a non-empty string or list of strings", param="prompt")
        stops = parse_stops(body)
        prompts, counts = [], []
        for text in texts:
            tokens = simulator.generator.count_tokens(text)
            prompts.append((SimPrompt(text=text, messages=(), thinking=False), tokens))
            counts.append(tokens)
        settings = [service.settings(body, tokens, stop=stops) for _, tokens in prompts]
        # One settings object for all prompts: the tightest token budget.
        merged = min(settings, key=lambda s: s.max_new_tokens)
        batch = [p for p, _ in prompts for _ in range(n)]
        generations = await simulator.generator.generate(batch, merged)
        if all(g.text is None for g in generations):
            return error_response(
                502, f"the model backend failed ({generations[0].error})", code="backend_error"
            )
        choices = []
        for i, g in enumerate(generations):
            text, stopped = cut_stops(g.text or "", stops)
            choices.append(
                {
                    "index": i,
                    "text": text,
                    "logprobs": None,
                    "finish_reason": "stop" if stopped else (g.finish_reason or "stop"),
                }
            )
        counted = usage(sum(c or 0 for c in counts), [g.completion_tokens for g in generations])
        ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": body["model"],
        }
        if not body.get("stream"):
            return JSONResponse({**head, "choices": choices, "usage": counted})
        chunks = [{**head, "choices": [c]} for c in choices]
        return StreamingResponse(sse(chunks), media_type="text/event-stream")

    return app


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
    vllm: VLLMSettings | None = None,
) -> None:
    """Serve ``model`` until interrupted.

    Example:
        >>> run_serve(model="hf:runs/demo/humanlm/model", port=8000)  # doctest: +SKIP

    Supports ``hf:`` (concurrent requests batched dynamically into one ``generate``),
    ``vllm:`` (vLLM's async engine schedules them; ``vllm`` sets how it starts) and
    ``openai:MODEL@URL`` (a proxy to a
    ``/v1/completions`` endpoint serving a model trained with our template).

    Raises:
        ConfigError: a bad spec or mode, or ``api_key_env`` names an unset variable.
    """
    import os

    import uvicorn

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
    )
    logger.info("serving %s as %r on http://%s:%d/v1", generator.spec, name, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
