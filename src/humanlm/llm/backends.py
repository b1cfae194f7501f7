"""Chat backends: one request in, one ``Completion`` out, failures as ``TransportError``.

``OpenAIBackend`` also speaks the text API (``complete_text``: ``/v1/completions`` with a prompt
string), for a model whose own chat template was applied on our side.

Backends do no retrying (the SDK's own retries are switched off): ``humanlm.llm.ChatClient``
retries, so that every attempt is counted in the ledger, ``Retry-After`` is honoured and the
overall deadline of a call holds. Credentials live only inside the SDK client; they never appear in a ``repr``, a log
line or an exception message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
import openai

from humanlm.errors import ConfigError, JudgeUnavailableError
from humanlm.llm.limits import parse_retry_after

__all__ = [
    "ChatBackend",
    "Completion",
    "LiteLLMBackend",
    "OpenAIBackend",
    "TransportError",
    "classify_error",
]

logger = logging.getLogger(__name__)

LITELLM_HINT = "pip install 'humanlm[litellm]'"


@dataclass(frozen=True)
class Completion:
    """One chat reply: its text, token usage (0 when the server reported none), why it ended
    (``stop``, ``length`` ...) and any reasoning the server returned apart from the text."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    reasoning: str | None = None


class TransportError(Exception):
    """A request that got no usable HTTP answer.

    Attributes:
        kind: ``rate_limited``, ``server_error``, ``timeout``, ``connection_error`` (retryable)
            or ``rejected`` (another 4xx: retrying the same request cannot help).
        retry_after: seconds the server asked us to wait, if it said.
        status: the HTTP status, if there was one.
    """

    def __init__(self, kind: str, *, retry_after: float | None = None, status: int | None = None):
        self.kind, self.retry_after, self.status = kind, retry_after, status
        super().__init__(f"{kind}" + (f" (HTTP {status})" if status else ""))

    @property
    def is_retryable(self) -> bool:
        return self.kind != "rejected"


class ChatBackend(Protocol):
    """What ``ChatClient`` needs from a chat API."""

    model: str

    def identity(self) -> dict[str, Any]:
        """What identifies the answering model for the cache (no secrets)."""
        ...

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        timeout_s: float,
        params: dict[str, Any] | None = None,
    ) -> Completion:
        """Send one chat request (``params`` added to the backend's own request fields).

        Raises ``TransportError`` or ``JudgeUnavailableError``."""
        ...

    async def aclose(self) -> None: ...


def _headers_of(exc: BaseException) -> dict[str, str] | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return dict(headers) if headers is not None else None


def classify_error(exc: BaseException, *, where: str, role: str = "judge") -> Exception:
    """Turn an SDK exception into ``TransportError`` or ``JudgeUnavailableError``.

    Works for openai exceptions and litellm's (which subclass them or carry ``status_code``).
    The messages name the judge and the status only: server error bodies can echo request
    details, so they are not copied.
    """
    if isinstance(exc, openai.APITimeoutError | asyncio.TimeoutError | TimeoutError):
        return TransportError("timeout")
    if isinstance(exc, openai.APIConnectionError):
        return TransportError("connection_error")
    if isinstance(exc, openai.APIResponseValidationError):
        return TransportError("server_error")  # a 2xx whose body is not a chat completion
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        name = type(exc).__name__.lower()
        if "timeout" in name:
            return TransportError("timeout")
        if "connection" in name:
            return TransportError("connection_error")
        return TransportError("server_error")
    retry_after = parse_retry_after(_headers_of(exc))
    if status in (401, 403):
        return JudgeUnavailableError(
            f"{role} {where} refused the credentials (HTTP {status}); check the API key variable"
        )
    if status == 404:
        return JudgeUnavailableError(
            f"{role} {where} answered HTTP 404: unknown model or wrong base URL"
        )
    if status == 429:
        return TransportError("rate_limited", retry_after=retry_after, status=status)
    if status >= 500 or status in (408, 409):
        return TransportError("server_error", retry_after=retry_after, status=status)
    return TransportError("rejected", status=status)


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` of a JSON reply, or ``obj.name`` of a litellm response object."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _usage(response: Any) -> tuple[int, int]:
    usage = _field(response, "usage")
    if usage is None:
        return 0, 0
    return int(_field(usage, "prompt_tokens") or 0), int(_field(usage, "completion_tokens") or 0)


def _completion(response: Any) -> Completion:
    input_tokens, output_tokens = _usage(response)
    choices = _field(response, "choices")
    if not isinstance(choices, list) or not choices:
        return Completion("", input_tokens, output_tokens)
    choice = choices[0]
    message = _field(choice, "message")
    text = _field(message, "content") or ""
    reasoning = _field(message, "reasoning_content") or _field(message, "reasoning")
    return Completion(
        text if isinstance(text, str) else "",
        input_tokens,
        output_tokens,
        finish_reason=_field(choice, "finish_reason"),
        reasoning=reasoning if isinstance(reasoning, str) and reasoning.strip() else None,
    )


def _text_completion(response: Any) -> Completion:
    input_tokens, output_tokens = _usage(response)
    choices = _field(response, "choices")
    if not isinstance(choices, list) or not choices:
        return Completion("", input_tokens, output_tokens)
    choice = choices[0]
    text = _field(choice, "text") or ""
    return Completion(
        text if isinstance(text, str) else "",
        input_tokens,
        output_tokens,
        finish_reason=_field(choice, "finish_reason"),
    )


class OpenAIBackend:
    """Any OpenAI-compatible chat server through ``openai.AsyncOpenAI`` (OpenAI, vLLM, SGLang).

    One SDK client per event loop (its connection pool belongs to the loop that opened it).

    Args:
        model: the model name the server expects.
        api_key: the key (kept inside the SDK client only).
        base_url: the server (``None``: api.openai.com).
        params: extra request fields (``temperature``, ``max_tokens``, ``seed`` ...).
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        params: dict[str, Any] | None = None,
        role: str = "judge",
    ):
        self.model = model
        self.role = role
        self.base_url = base_url
        self.params = dict(params or {})
        # A plain SDK http client: the default wrapper schedules its own close on whatever loop
        # runs when it is garbage-collected, which fails for a client of a finished loop.
        self._make_client = lambda: openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(),
        )
        self._clients: weakref.WeakKeyDictionary[Any, openai.AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    def identity(self) -> dict[str, Any]:
        # The endpoint is left out on purpose: the same model behind another port or proxy
        # gives the same verdicts, and re-scoring should not miss the cache for that.
        return {"backend": "openai", "model": self.model}

    def sdk(self) -> openai.AsyncOpenAI:
        """The SDK client of the running event loop, for requests other than a chat reply
        (completions, several choices); send them through ``ChatClient.call``."""
        return self._client()

    def _client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._make_client()
        return client

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        timeout_s: float,
        params: dict[str, Any] | None = None,
    ) -> Completion:
        body = {"model": self.model, "messages": messages}
        return _completion(await self._post("/chat/completions", body, params, timeout_s))

    async def complete_text(
        self,
        prompt: str,
        *,
        timeout_s: float,
        params: dict[str, Any] | None = None,
    ) -> Completion:
        """Send one text-completion request: ``prompt`` goes to the model exactly as given."""
        body = {"model": self.model, "prompt": prompt}
        return _text_completion(await self._post("/completions", body, params, timeout_s))

    async def _post(
        self, path: str, body: dict[str, Any], params: dict[str, Any] | None, timeout_s: float
    ) -> dict[str, Any]:
        # The SDK's generic ``post``, not the typed ``create``: ``create`` walks every message
        # through its TypedDict transform and builds pydantic models of the reply, which together
        # cost more CPU than the HTTP exchange (benchmarks/eval_throughput.py); our bodies are
        # plain JSON already, and we read four fields of the reply. The SDK still sends the key,
        # maps HTTP errors to its exceptions and applies the timeout. ``extra_body`` is merged
        # into the JSON as ``create`` does.
        body = {**body, **self.params, **(params or {})}
        options: dict[str, Any] = {"timeout": timeout_s, "security": {"bearer_auth": True}}
        if extra := body.pop("extra_body", None):
            options["extra_json"] = extra
        try:
            raw = await self._client().post(
                path, body=body, cast_to=httpx2.Response, options=options
            )
            data = raw.json()
        except openai.OpenAIError as exc:
            raise classify_error(exc, where=f"openai:{self.model}", role=self.role) from None
        except ValueError:  # a 2xx whose body is not JSON
            raise TransportError("server_error") from None
        if not isinstance(data, dict):
            raise TransportError("server_error")  # JSON, but not a reply object
        return data

    async def aclose(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()


class LiteLLMBackend:
    """Other providers (Anthropic, Gemini, ...) through the optional ``litellm`` package.

    Args:
        model: ``PROVIDER/MODEL`` as litellm names it (``anthropic/claude-haiku-4-5``).
        api_key: a key to pass explicitly, or ``None`` to let litellm read the provider's own
            variable (``ANTHROPIC_API_KEY`` ...).
        params: extra request fields.

    Raises:
        ConfigError: litellm is not installed.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        params: dict[str, Any] | None = None,
        role: str = "judge",
    ):
        # Offline machines cannot fetch litellm's remote price map at import time.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        try:
            import litellm
        except ImportError:
            raise ConfigError(
                f"{role} 'litellm:{model}' needs the optional litellm package: {LITELLM_HINT}"
            ) from None
        self._litellm = litellm
        self.model = model
        self.role = role
        self.params = dict(params or {})
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"LiteLLMBackend(model={self.model!r})"

    def identity(self) -> dict[str, Any]:
        return {"backend": "litellm", "model": self.model}

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        timeout_s: float,
        params: dict[str, Any] | None = None,
    ) -> Completion:
        extra = {"api_key": self._api_key} if self._api_key else {}
        try:
            response = await self._litellm.acompletion(
                model=self.model,
                messages=messages,
                timeout=timeout_s,
                num_retries=0,
                **extra,
                **{**self.params, **(params or {})},
            )
        except Exception as exc:  # litellm raises many types; all become a classified failure
            raise classify_error(exc, where=f"litellm:{self.model}", role=self.role) from None
        return _completion(response)

    async def aclose(self) -> None:
        return None
