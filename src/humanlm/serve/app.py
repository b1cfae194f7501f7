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

    humanlm serve --model hf:runs/demo/model --port 8000
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from humanlm.errors import ConfigError
from humanlm.simulate.backends import GenerationSettings
from humanlm.simulate.prompt import SimPrompt
from humanlm.simulate.user import ConversationError, Reply, UserSimulator
from humanlm.states import END_SIGNAL

__all__ = ["build_app", "run_serve"]

logger = logging.getLogger(__name__)

_MAX_N = 16


class _BadRequest(Exception):
    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, status: int = 400
    ):
        self.message, self.param, self.code, self.status = message, param, code, status
        super().__init__(message)


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> Any:
    kind = {
        401: "authentication_error",
        404: "not_found_error",
        405: "invalid_request_error",
        413: "invalid_request_error",
    }.get(status, "invalid_request_error" if status < 500 else "server_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def _number(body: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _BadRequest(f"{name} must be a number in [{low}, {high}]", param=name)
    return float(value)


def _integer(
    body: Mapping[str, Any], name: str, default: int | None, low: int, high: int
) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _BadRequest(f"{name} must be an integer in [{low}, {high}]", param=name)
    return value


def _stops(body: Mapping[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if (
        not isinstance(stops, list)
        or len(stops) > 4
        or not all(isinstance(s, str) and s for s in stops)
    ):
        raise _BadRequest(
            "stop must be a string or a list of up to 4 non-empty strings", param="stop"
        )
    return tuple(stops)


def _cut(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    cuts = [i for s in stops if (i := text.find(s)) >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


class _Service:
    """Request parsing and answering, independent of the web framework's plumbing."""

    def __init__(
        self,
        simulator: UserSimulator,
        *,
        model_name: str,
        end_text: str,
        seed: int,
        ngram: int,
        context_length: int | None,
    ):
        self.simulator = simulator
        self.context_length = context_length or simulator.engine.context_length
        self.model_name = model_name
        self.end_text = end_text
        self.seed = seed
        self.ngram = ngram if simulator.engine.applies_ngram_ban else 0

    def settings(
        self, body: Mapping[str, Any], prompt_tokens: int | None, *, stop: tuple[str, ...]
    ) -> GenerationSettings:
        base = self.simulator.settings
        max_tokens = _integer(body, "max_completion_tokens", None, 1, 1 << 20)
        max_tokens = _integer(body, "max_tokens", max_tokens or base.max_new_tokens, 1, 1 << 20)
        context = self.context_length
        if context is not None and prompt_tokens is not None:
            if prompt_tokens >= context:
                raise _BadRequest(
                    f"this model's context length is {context} tokens; the prompt has "
                    f"{prompt_tokens}. Shorten the messages.",
                    param="messages",
                    code="context_length_exceeded",
                )
            max_tokens = min(max_tokens, context - prompt_tokens)
        return dataclasses.replace(
            base,
            temperature=_number(body, "temperature", base.temperature, 0.0, 2.0),
            top_p=_number(body, "top_p", base.top_p, 1e-9, 1.0),
            max_new_tokens=max_tokens,
            seed=_integer(body, "seed", self.seed, -(1 << 63), (1 << 63) - 1),
            no_repeat_ngram_size=self.ngram,
            stop=stop,
        )

    def check_common(self, body: Any) -> int:
        if not isinstance(body, Mapping):
            raise _BadRequest("the request body must be a JSON object")
        if not isinstance(body.get("model"), str):
            raise _BadRequest("model: a model name is required", param="model")
        if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
            raise _BadRequest("stream must be true or false", param="stream")
        return int(_integer(body, "n", 1, 1, _MAX_N) or 1)

    def chat_prompt(self, body: Mapping[str, Any]) -> tuple[SimPrompt, int | None]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest("messages must be a non-empty list", param="messages")
        try:
            prompt = self.simulator.prompt(None, messages)
        except ConversationError as err:
            raise _BadRequest(str(err).split(": ", 1)[-1], param=err.param) from None
        return prompt, self.simulator.engine.count_tokens(prompt.text)

    def choice(self, index: int, reply: Reply, stops: tuple[str, ...]) -> dict[str, Any]:
        text, stopped = _cut(reply.text, stops)
        content = self.end_text if reply.ended else text
        return {
            "index": index,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop" if stopped or reply.ended else (reply.finish_reason or "stop"),
            "humanlm": {
                "ended": reply.ended,
                "states": reply.states,
                "thinking": reply.thinking,
                "raw": reply.raw,
            },
        }


def _flip(messages: Any) -> Any:
    """Harnesses that let an LLM play the user send its own turns as ``assistant`` and the
    agent's as ``user``; swap them back (named ``user`` messages are other people: kept)."""
    if not isinstance(messages, list):
        return messages
    swap = {"user": "assistant", "assistant": "user"}
    flipped = []
    for m in messages:
        if isinstance(m, Mapping) and m.get("role") in swap and not m.get("name"):
            m = {**m, "role": swap[m["role"]]}
        flipped.append(m)
    return flipped


def _usage(prompt_tokens: int | None, completions: list[int | None]) -> dict[str, int]:
    p = prompt_tokens or 0
    c = sum(t or 0 for t in completions)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _sse(chunks: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return stream()


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
        simulator: the user simulator (its engine decides batching and the n-gram ban).
        model_name: the id listed by ``/v1/models`` (requests may name any model).
        api_key: when set, ``/v1/*`` requests must send ``Authorization: Bearer <key>``.
        end_text: the ``content`` of a reply that ends the conversation.
        seed: the sampling seed of requests that send none.
        no_repeat_ngram_size: the n-gram ban of every request (0: off), where applied.
        context_length: the most tokens of prompt plus reply (default: the model's own limit).
    """
    service = _Service(
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
    async def http_error(request: Request, exc: HTTPException) -> Any:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Any:
        return _error(400, "the request is not valid")

    @app.exception_handler(_BadRequest)
    async def bad_request(request: Request, exc: _BadRequest) -> Any:
        return _error(exc.status, exc.message, param=exc.param, code=exc.code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Any:
        logger.exception("request failed")
        return _error(500, "the server failed to answer this request", code="internal_error")

    @app.middleware("http")
    async def check_key(request: Request, call_next: Any) -> Any:
        if api_key and request.url.path.startswith(("/v1/", "/flipped/v1/")):
            sent = request.headers.get("authorization", "")
            token = sent[7:] if sent.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(token.encode(), api_key.encode()):
                return _error(401, "invalid or missing API key", code="invalid_api_key")
        return await call_next(request)

    async def read_json(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except ValueError:
            raise _BadRequest("the request body is not valid JSON") from None

    @app.get("/health")
    async def health() -> dict[str, str]:
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
            body = {**body, "messages": _flip(body.get("messages"))}
        stops = _stops(body)
        prompt, prompt_tokens = service.chat_prompt(body)
        settings = service.settings(body, prompt_tokens, stop=simulator.settings.stop)
        generations = await simulator.engine.generate([prompt] * n, settings)
        if all(g.text is None for g in generations):
            return _error(
                502, f"the model backend failed ({generations[0].error})", code="backend_error"
            )
        from humanlm.simulate.user import parse_reply

        replies = [
            dataclasses.replace(
                parse_reply(g.text, thinking=prompt.thinking, finish_reason=g.finish_reason),
                completion_tokens=g.completion_tokens,
            )
            for g in generations
        ]
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        choices = [service.choice(i, r, stops) for i, r in enumerate(replies)]
        usage = _usage(prompt_tokens, [r.completion_tokens for r in replies])
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": body["model"],
                    "choices": choices,
                    "usage": usage,
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
            chunks.append({**head, "choices": [], "usage": usage})
        return StreamingResponse(_sse(chunks), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await read_json(request)
        n = service.check_common(body)
        if body.get("echo"):
            raise _BadRequest("echo is not supported", param="echo")
        raw = body.get("prompt")
        texts = [raw] if isinstance(raw, str) else raw
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(t, str) and t for t in texts)
        ):
            raise _BadRequest(
                "prompt must be a non-empty string or list of strings", param="prompt"
            )
        stops = _stops(body)
        prompts, counts = [], []
        for text in texts:
            tokens = simulator.engine.count_tokens(text)
            prompts.append((SimPrompt(text=text, messages=(), thinking=False), tokens))
            counts.append(tokens)
        settings = [service.settings(body, tokens, stop=stops) for _, tokens in prompts]
        # One settings object for all prompts: the tightest token budget.
        merged = min(settings, key=lambda s: s.max_new_tokens)
        batch = [p for p, _ in prompts for _ in range(n)]
        generations = await simulator.engine.generate(batch, merged)
        if all(g.text is None for g in generations):
            return _error(
                502, f"the model backend failed ({generations[0].error})", code="backend_error"
            )
        choices = []
        for i, g in enumerate(generations):
            text, stopped = _cut(g.text or "", stops)
            choices.append(
                {
                    "index": i,
                    "text": text,
                    "logprobs": None,
                    "finish_reason": "stop" if stopped else (g.finish_reason or "stop"),
                }
            )
        usage = _usage(sum(c or 0 for c in counts), [g.completion_tokens for g in generations])
        ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": body["model"],
        }
        if not body.get("stream"):
            return JSONResponse({**head, "choices": choices, "usage": usage})
        chunks = [{**head, "choices": [c]} for c in choices]
        return StreamingResponse(_sse(chunks), media_type="text/event-stream")

    return app


def run_serve(
    *,
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key_env: str | None = None,
    mode: str = "humanlm",
    served_name: str | None = None,
    max_batch: int = 32,
    batch_window_ms: float = 5.0,
    end_text: str = END_SIGNAL,
    backend_key_env: str | None = None,
    context_length: int | None = None,
) -> None:
    """Serve ``model`` until interrupted.

    Example:
        >>> run_serve(model="hf:runs/demo/model", port=8000)  # doctest: +SKIP

    Supports ``hf:`` (concurrent requests batched dynamically into one ``generate``),
    ``vllm:`` (vLLM's async engine schedules them) and ``openai:MODEL@URL`` (a proxy to a
    ``/v1/completions`` endpoint serving a model trained with our template).

    Raises:
        ConfigError: a bad spec or mode, or ``api_key_env`` names an unset variable.
    """
    import os

    import uvicorn

    from humanlm.serve.batching import BatchingEngine
    from humanlm.simulate.engines import build_engine

    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ConfigError(
                f"--api-key-env {api_key_env}: the variable is not set; export it, or drop the "
                "option to serve without a key"
            )
    engine = build_engine(model, api_key_env=backend_key_env, raw_completions=True)
    if model.startswith("hf:"):
        engine = BatchingEngine(engine, max_batch=max_batch, window_s=batch_window_ms / 1000)
    simulator = UserSimulator(engine, mode=mode)
    name = served_name or model.split(":", 1)[1].rstrip("/").split("/")[-1].split("@")[0]
    app = build_app(
        simulator,
        model_name=name,
        api_key=api_key,
        end_text=end_text,
        context_length=context_length,
    )
    logger.info("serving %s as %r on http://%s:%d/v1", engine.spec, name, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
