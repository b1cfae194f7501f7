"""The OpenAI wire format of ``humanlm serve``: request checks, settings, choices, errors.

Bad input raises ``BadRequest`` with the OpenAI ``param`` and ``code``; the app turns it into an
OpenAI-shaped 4xx answer.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi.responses import JSONResponse

from humanlm.generate.prompt import SimPrompt
from humanlm.generate.protocol import GenerationSettings
from humanlm.simulate.messages import ConversationError
from humanlm.simulate.reply import Reply
from humanlm.simulate.user import UserSimulator

__all__ = [
    "BadRequest",
    "Service",
    "cut_stops",
    "error_response",
    "flip_roles",
    "parse_stops",
    "sse",
    "usage",
]

_MAX_N = 16


class BadRequest(Exception):
    """A request the server refuses with a 4xx answer."""

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, status: int = 400
    ):
        self.message, self.param, self.code, self.status = message, param, code, status
        super().__init__(message)


def error_response(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> Any:
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
        raise BadRequest(f"{name} must be a number in [{low}, {high}]", param=name)
    return float(value)


def _integer(
    body: Mapping[str, Any], name: str, default: int | None, low: int, high: int
) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} must be an integer in [{low}, {high}]", param=name)
    return value


def parse_stops(body: Mapping[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if (
        not isinstance(stops, list)
        or len(stops) > 4
        or not all(isinstance(s, str) and s for s in stops)
    ):
        raise BadRequest(
            "stop must be a string or a list of up to 4 non-empty strings", param="stop"
        )
    return tuple(stops)


def cut_stops(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    cuts = [i for s in stops if (i := text.find(s)) >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


class Service:
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
        self.context_length = context_length or simulator.generator.context_length
        self.model_name = model_name
        self.end_text = end_text
        self.seed = seed
        self.ngram = ngram if simulator.generator.applies_ngram_ban else 0

    def settings(
        self, body: Mapping[str, Any], prompt_tokens: int | None, *, stop: tuple[str, ...]
    ) -> GenerationSettings:
        base = self.simulator.settings
        max_tokens = _integer(body, "max_completion_tokens", None, 1, 1 << 20)
        max_tokens = _integer(body, "max_tokens", max_tokens or base.max_new_tokens, 1, 1 << 20)
        context = self.context_length
        if context is not None and prompt_tokens is not None:
            if prompt_tokens >= context:
                raise BadRequest(
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
            raise BadRequest("the request body must be a JSON object")
        if not isinstance(body.get("model"), str):
            raise BadRequest("model: a model name is required", param="model")
        if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
            raise BadRequest("stream must be true or false", param="stream")
        return int(_integer(body, "n", 1, 1, _MAX_N) or 1)

    def chat_prompt(self, body: Mapping[str, Any]) -> tuple[SimPrompt, int | None]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty list", param="messages")
        try:
            prompt = self.simulator.prompt(None, messages)
        except ConversationError as err:
            raise BadRequest(str(err).split(": ", 1)[-1], param=err.param) from None
        return prompt, self.simulator.generator.count_tokens(prompt.text)

    def choice(self, index: int, reply: Reply, stops: tuple[str, ...]) -> dict[str, Any]:
        text, stopped = cut_stops(reply.text, stops)
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


def flip_roles(messages: Any) -> Any:
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


def usage(prompt_tokens: int | None, completions: list[int | None]) -> dict[str, int]:
    p = prompt_tokens or 0
    c = sum(t or 0 for t in completions)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def sse(chunks: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return stream()
