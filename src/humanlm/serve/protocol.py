"""The OpenAI wire format of ``humanlm serve``: request checks, settings, choices, errors.

Bad input raises ``BadRequest`` with the OpenAI ``param`` and ``code``; the app turns it into an
OpenAI-shaped 4xx answer. Reading a request (JSON, prompt rendering, token counts) is plain
blocking code: the app runs it in a worker thread, off the event loop.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from humanlm.generate.prompt import SimPrompt
from humanlm.generate.protocol import GenerationSettings
from humanlm.serve.limits import MAX_CHOICES, MAX_DEPTH, MAX_STOP_CHARS
from humanlm.simulate.benchmark_user import from_harness_messages
from humanlm.simulate.messages import ConversationError
from humanlm.simulate.reply import Reply
from humanlm.simulate.user import UserSimulator

__all__ = [
    "BadRequest",
    "Job",
    "Service",
    "cut_stops",
    "error_response",
    "harness_messages",
    "parse_body",
    "parse_stops",
    "sse",
    "usage",
]


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
    }.get(status, "invalid_request_error" if status < 500 else "server_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def _refuse_constant(name: str) -> Any:
    raise BadRequest(f"the request body is not valid JSON ({name} is not a JSON number)")


def parse_body(raw: bytes) -> Any:
    """The JSON request body, refused when it is not JSON (``NaN`` included), nests deeper than
    ``MAX_DEPTH`` or holds a lone surrogate escape (``"\\ud800"``: not text, and no tokenizer
    or UTF-8 encoder takes it)."""
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadRequest(f"the request body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    _check_tree(body)
    return body


def _check_tree(body: Any) -> None:
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:  # a loop, not recursion: the nesting is the client's to choose
        value, where, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise BadRequest(f"the request body nests deeper than {MAX_DEPTH} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key, where)
                    stack.append((item, f"{where}.{key}" if where else key, depth + 1))
            else:
                stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            f"{where or 'the body'}: a lone surrogate escape (such as \\ud800, half of a "
            "UTF-16 pair) is not text; send the whole character or drop it",
            param=where or None,
        ) from None


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
        or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stops)
    ):
        raise BadRequest(
            f"stop must be a string or a list of up to 4 strings of 1 to {MAX_STOP_CHARS} "
            "characters",
            param="stop",
        )
    return tuple(stops)


def cut_stops(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    cuts = [i for s in stops if (i := text.find(s)) >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


@dataclass(frozen=True)
class Job:
    """A checked request, ready to generate: one prompt per completion asked for."""

    body: Mapping[str, Any]
    prompts: list[SimPrompt]
    settings: GenerationSettings
    stops: tuple[str, ...]
    prompt_tokens: int | None


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
        return int(_integer(body, "n", 1, 1, MAX_CHOICES) or 1)

    def prepare_chat(self, raw: bytes, *, flipped: bool) -> Job:
        """Read a chat request (blocking: rendering and counting a long prompt take a while)."""
        body = parse_body(raw)
        n = self.check_common(body)
        if flipped:
            body = {**body, "messages": harness_messages(body.get("messages"))}
        stops = parse_stops(body)
        prompt, prompt_tokens = self.chat_prompt(body)
        settings = self.settings(body, prompt_tokens, stop=self.simulator.settings.stop)
        return Job(body, [prompt] * n, settings, stops, prompt_tokens)

    def prepare_completions(self, raw: bytes) -> Job:
        """Read a ``/v1/completions`` request (blocking); at most ``MAX_CHOICES`` completions,
        prompts times ``n``."""
        body = parse_body(raw)
        n = self.check_common(body)
        if body.get("echo"):
            raise BadRequest("echo is not supported", param="echo")
        raw_prompt = body.get("prompt")
        texts = [raw_prompt] if isinstance(raw_prompt, str) else raw_prompt
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(t, str) and t for t in texts)
        ):
            raise BadRequest("prompt must be a non-empty string or list of strings", param="prompt")
        if len(texts) * n > MAX_CHOICES:
            raise BadRequest(
                f"at most {MAX_CHOICES} completions per request (prompts x n); this one asks "
                f"for {len(texts) * n}. Split the prompts over several requests.",
                param="prompt" if len(texts) > 1 else "n",
            )
        stops = parse_stops(body)
        counts = [self.simulator.generator.count_tokens(text) for text in texts]
        settings = [self.settings(body, tokens, stop=stops) for tokens in counts]
        # One settings object for all prompts: the tightest token budget.
        merged = min(settings, key=lambda s: s.max_new_tokens)
        prompts = [SimPrompt(text=t, messages=(), thinking=False) for t in texts for _ in range(n)]
        return Job(body, prompts, merged, stops, sum(c or 0 for c in counts))

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


def harness_messages(messages: Any) -> list[dict[str, str]]:
    """Messages from a harness that lets an LLM play the user (its own turns sent as
    ``assistant``, the agent's as ``user``) in humanlm's roles, with the persona and goal read
    from the harness's system message (tau2-bench's ``<scenario>``, tau-bench's instruction) and
    its guidelines for an LLM left out.

    Raises:
        BadRequest: not a list of messages, tool messages, unknown roles.
    """
    try:
        instructions, conversation = from_harness_messages(messages)
    except ConversationError as err:
        raise BadRequest(str(err).split(": ", 1)[-1], param=err.param) from None
    persona = instructions.persona_for_user()
    return [{"role": "system", "content": persona}, *conversation] if persona else conversation


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
