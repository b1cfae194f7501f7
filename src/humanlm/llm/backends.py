"""Chat backends: one request in, one ``Completion`` out, failures as ``TransportError``.

``OpenAIBackend`` also speaks the text API (``complete_text``: ``/v1/completions`` with a prompt
string), for a model whose own chat template was applied on our side. Every field of a request
goes in ``params`` (fitted to the model by ``humanlm.llm.params.fit_params``); a reply keeps all
its choices, each with the fields a server added to it (``Choice.extra``)::

    completion = await backend.complete_text(
        prompt, timeout_s=60,
        params={"max_tokens": 512, "temperature": 1.0, "top_p": 1.0, "stop": ["</r>"],
                "seed": 0, "n": 2, "extra_body": {"vllm_xargs": {...}}},
    )
    completion.choices[1].text, completion.choices[1].finish_reason, completion.output_tokens
    completion = await backend.complete(messages, timeout_s=60, params={"n": 2})
    completion.choices[0].extra.get("humanlm")  # a field a server added beside the message

Backends do no retrying (litellm's own retries are switched off): send requests through
``ChatClient.ask`` / ``ask_text``, which retries so that every attempt is counted in the ledger,
``Retry-After`` is honoured and the overall deadline of a call holds. Credentials live only
inside the request headers; they never appear in a ``repr``, a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import urllib.parse
import urllib.request
import weakref
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import openai

from humanlm import __version__
from humanlm.errors import ConfigError, JudgeUnavailableError
from humanlm.llm.limits import parse_retry_after
from humanlm.llm.params import fit_params, is_openai_reasoning

__all__ = [
    "MAX_USAGE_TOKENS",
    "ChatBackend",
    "Choice",
    "Completion",
    "LiteLLMBackend",
    "OpenAIBackend",
    "TransportError",
    "classify_error",
    "provider_message",
    "read_usage",
    "status_error",
]

logger = logging.getLogger(__name__)

LITELLM_HINT = "pip install 'humanlm[litellm]'"


@dataclass(frozen=True)
class Choice:
    """One choice of a reply (a request with ``n`` gets ``n``).

    Attributes:
        text: the message content (chat) or the text (text API); ``""`` when there was none.
        finish_reason: why it ended (``stop``, ``length`` ...), as the server said.
        reasoning: reasoning the server returned apart from the text (chat only).
        extra: the choice's fields beyond the API's own (``humanlm serve`` adds ``humanlm``).
    """

    text: str
    finish_reason: str | None = None
    reasoning: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    """One reply: the first choice's text, finish reason and reasoning, the token usage of the
    whole reply (0 when the server reported none) and every choice in ``choices``.

    ``usage_valid`` is false when the server's ``usage`` held a count that is not a
    non-negative integer (``read_usage``); the counts are then 0 and the reply itself stands.
    """

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    reasoning: str | None = None
    usage_valid: bool = True
    choices: tuple[Choice, ...] = ()


class TransportError(Exception):
    """A request that got no usable HTTP answer.

    Attributes:
        kind: ``rate_limited``, ``server_error``, ``timeout``, ``connection_error`` (retryable)
            or ``rejected`` (another 4xx: retrying the same request cannot help).
        retry_after: seconds the server asked us to wait, if it said.
        status: the HTTP status, if there was one.
        detail: the server's own message for a refused request (``rejected``), secrets removed.
        param: the request field the server named as the cause, if it named one.
    """

    def __init__(
        self,
        kind: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        detail: str | None = None,
        param: str | None = None,
    ):
        self.kind, self.retry_after, self.status = kind, retry_after, status
        self.detail, self.param = detail, param
        text = f"{kind}" + (f" (HTTP {status})" if status else "")
        super().__init__(text + (f": {detail}" if detail else ""))

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
        """Send one chat request (``params`` added to the backend's own request fields,
        ``n`` included: every choice is in ``Completion.choices``).

        Raises ``TransportError`` or ``JudgeUnavailableError``."""
        ...

    async def aclose(self) -> None: ...


def _headers_of(exc: BaseException) -> dict[str, str] | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return dict(headers) if headers is not None else None


# Key-like text a server may echo back (``Incorrect API key provided: sk-...``).
_SECRET = re.compile(r"(?i)\b(?:sk|rk|sess)-[A-Za-z0-9_\-*.]{6,}|\bbearer\s+\S+")
_DETAIL_CHARS = 300


def provider_message(body: Any, *, secrets: tuple[str, ...] = ()) -> tuple[str | None, str | None]:
    """``(message, param)`` of an error body (OpenAI's ``{"error": {"message", "param", ...}}``,
    the SDK's parsed ``error`` object, or plain text), with anything key-like removed and the
    message cut to 300 characters; ``(None, None)`` when there is no message."""
    if isinstance(body, bytes | bytearray):
        try:
            body = json.loads(body)
        except ValueError:
            body = body.decode("utf-8", "replace")
    if isinstance(body, dict):
        error = body.get("error", body)
        error = error if isinstance(error, dict) else {"message": error}
        message, param = error.get("message"), error.get("param")
    else:
        message, param = body, None
    if not isinstance(message, str) or not message.strip():
        return None, None
    text = " ".join(message.split())
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _SECRET.sub("[redacted]", text)
    if len(text) > _DETAIL_CHARS:
        text = text[: _DETAIL_CHARS - 3] + "..."
    return text, param if isinstance(param, str) else None


def classify_error(
    exc: BaseException, *, where: str, role: str = "judge", secrets: tuple[str, ...] = ()
) -> Exception:
    """Turn an SDK exception into ``TransportError`` or ``JudgeUnavailableError``.

    Works for openai exceptions and litellm's (which subclass them or carry ``status_code``).
    Only a refused request (``rejected``) keeps the server's message, secrets removed: it says
    which field to change. Other messages name the judge and the status only.
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
    body = getattr(exc, "body", None) or getattr(exc, "message", None)
    return status_error(
        status, _headers_of(exc), where=where, role=role, body=body, secrets=secrets
    )


def status_error(
    status: int,
    headers: Mapping[str, str] | None,
    *,
    where: str,
    role: str = "judge",
    body: Any = None,
    secrets: tuple[str, ...] = (),
) -> Exception:
    """The error of an HTTP error status (4xx/5xx): ``TransportError`` or, for credentials and
    unknown endpoints (which retrying cannot fix), ``JudgeUnavailableError``. A refused request
    (``rejected``) carries the server's message from ``body`` (see ``provider_message``)."""
    if status in (401, 403):
        return JudgeUnavailableError(
            f"{role} {where} refused the credentials (HTTP {status}); check the API key variable"
        )
    if status == 404:
        return JudgeUnavailableError(
            f"{role} {where} answered HTTP 404: unknown model or wrong base URL"
        )
    retry_after = parse_retry_after(headers)
    if status == 429:
        return TransportError("rate_limited", retry_after=retry_after, status=status)
    if status >= 500 or status in (408, 409):
        return TransportError("server_error", retry_after=retry_after, status=status)
    detail, param = provider_message(body, secrets=secrets)
    return TransportError("rejected", status=status, detail=detail, param=param)


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` of a JSON reply, or ``obj.name`` of a litellm response object."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


# More tokens than any model takes in one request: a count above it is a broken report.
MAX_USAGE_TOKENS = 100_000_000


def _count(value: Any) -> int | None:
    """A token count: a non-negative integer (a float with an integral value too), at most
    ``MAX_USAGE_TOKENS``; ``None`` for anything else (negative, fractional, text, a boolean)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= MAX_USAGE_TOKENS:
        return None
    return value


def read_usage(usage: Any) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` of a reply's ``usage`` (a JSON object or an SDK
    object); a missing ``usage`` or count is 0. ``None`` when a count is not a non-negative
    integer: the call's usage is then unknown, never a negative or made-up number."""
    if usage is None:
        return 0, 0
    if isinstance(usage, str | int | float | list):
        return None  # a number, a text or a list where the counts belong
    prompt = _count(_field(usage, "prompt_tokens"))
    completion = _count(_field(usage, "completion_tokens"))
    if prompt is None or completion is None:
        return None
    return prompt, completion


def _usage(response: Any) -> tuple[int, int, bool]:
    counts = read_usage(_field(response, "usage"))
    return (0, 0, False) if counts is None else (*counts, True)


# The fields a choice has in the API itself; any other field is a server's own (``extra``).
_CHOICE_FIELDS = frozenset({"index", "message", "text", "finish_reason", "logprobs", "delta"})


def _choice(choice: Any) -> Choice:
    """A chat choice (text in ``message.content``) or a text-API one (text in ``text``)."""
    message = _field(choice, "message")
    text = _field(message, "content") if message is not None else _field(choice, "text")
    reasoning = _field(message, "reasoning_content") or _field(message, "reasoning")
    if isinstance(choice, dict):
        extra = {k: v for k, v in choice.items() if k not in _CHOICE_FIELDS}
    else:  # an SDK object (litellm) keeps the server's own fields in ``model_extra``
        extra = dict(getattr(choice, "model_extra", None) or {})
    finish = _field(choice, "finish_reason")
    return Choice(
        text if isinstance(text, str) else "",
        finish_reason=finish if isinstance(finish, str) else None,
        reasoning=reasoning if isinstance(reasoning, str) and reasoning.strip() else None,
        extra=extra,
    )


def _completion(response: Any) -> Completion:
    """The ``Completion`` of a chat or text-API reply; no choices gives an empty text."""
    input_tokens, output_tokens, valid = _usage(response)
    choices = _field(response, "choices")
    if not isinstance(choices, list):
        choices = []
    read = tuple(_choice(choice) for choice in choices)
    first = read[0] if read else Choice("")
    return Completion(
        first.text,
        input_tokens,
        output_tokens,
        finish_reason=first.finish_reason,
        reasoning=first.reasoning,
        usage_valid=valid,
        choices=read,
    )


OPENAI_URL = "https://api.openai.com/v1"
# Connections per event loop, as the SDK's own pool allows; ChatClient bounds concurrency.
_MAX_CONNECTIONS = 1000


def _env_proxy(url: str) -> str | None:
    """The proxy ``HTTP(S)_PROXY`` names for ``url`` unless ``NO_PROXY`` exempts it, as the
    SDK's httpx client reads them. (aiohttp's own ``trust_env`` would also send credentials
    from ``~/.netrc``, which clash with the key's header.)"""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


async def _close_at_shutdown(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await session.close()


class OpenAIBackend:
    """Any OpenAI-compatible chat server (OpenAI, vLLM, SGLang, ``humanlm serve``).

    Chat and text requests go over ``aiohttp``, one session per event loop (its connection pool
    belongs to the loop that opened it). The SDK's request path (its header building, httpx
    pool and reply handling) costs about six times the CPU of the exchange itself, and a judge
    step sends dozens of requests at once (``benchmarks/judge.py``). The key goes only into the
    request headers. Await ``aclose`` before closing an event loop by hand; ``asyncio.run``
    closes the session of its loop by itself.

    Args:
        model: the model name the server expects.
        api_key: the key (kept inside the HTTP clients only).
        base_url: the server (``None``: ``OPENAI_BASE_URL`` if set, as for the SDK, else
            api.openai.com).
        params: extra request fields (``temperature``, ``max_tokens``, ``seed`` ...); they and
            those of each request are sent as the model accepts them (``humanlm.llm.params``).
        role: what the model is for, in error messages (``judge``, ``simulator`` ...).
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
        self.params = fit_params(model, params)
        self._fits = is_openai_reasoning(model)
        self._secrets = (api_key,)
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"humanlm/{__version__}",
        }
        for header, variable in (
            ("OpenAI-Organization", "OPENAI_ORG_ID"),
            ("OpenAI-Project", "OPENAI_PROJECT_ID"),
        ):
            if value := os.environ.get(variable):
                headers[header] = value
        self._url = url
        self._proxy = _env_proxy(url)
        # Sent with each request, not as the session's defaults: aiohttp adds those to a
        # proxy's CONNECT too, and would pass the key to the proxy as Proxy-Authorization.
        self._headers = headers
        self._make_session = lambda: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=_MAX_CONNECTIONS)
        )
        self._sessions: weakref.WeakKeyDictionary[
            Any, tuple[aiohttp.ClientSession, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    def identity(self) -> dict[str, Any]:
        # The endpoint is left out on purpose: the same model behind another port or proxy
        # gives the same verdicts, and re-scoring should not miss the cache for that.
        return {"backend": "openai", "model": self.model}

    async def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        entry = self._sessions.get(loop)
        if entry is not None and not entry[0].closed:
            return entry[0]
        for stale in [other for other in self._sessions if other.is_closed()]:
            del self._sessions[stale]  # its loop has ended (the entry would keep it alive)
        session = self._make_session()
        # Closes the session when the loop shuts down (``asyncio.run`` closes every open async
        # generator first), so a caller that never awaits ``aclose`` leaves no open session.
        closer = _close_at_shutdown(session)
        await anext(closer)
        self._sessions[loop] = (session, closer)
        return session

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
        return _completion(await self._post("/completions", body, params, timeout_s))

    async def _post(
        self, path: str, body: dict[str, Any], params: dict[str, Any] | None, timeout_s: float
    ) -> dict[str, Any]:
        """POST one JSON body: the reply's JSON object, or the failure as ``TransportError``
        (``JudgeUnavailableError`` for refused credentials or an unknown endpoint)."""
        if params and self._fits:
            params = fit_params(self.model, params)
        body = {**body, **self.params, **(params or {})}
        if extra := body.pop("extra_body", None):  # merged into the JSON, as the SDK does
            body.update(extra)
        try:
            session = await self._session()
            async with session.post(
                self._url + path,
                data=json.dumps(body),
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                proxy=self._proxy,
            ) as response:
                status, headers = response.status, response.headers
                raw = await response.read()
        except (asyncio.TimeoutError, TimeoutError):
            raise TransportError("timeout") from None
        except aiohttp.ClientError:  # refused, dropped or cut-off connections
            raise TransportError("connection_error") from None
        if status >= 400:
            raise status_error(
                status,
                headers,
                where=f"openai:{self.model}",
                role=self.role,
                body=raw,
                secrets=self._secrets,
            )
        try:
            data = json.loads(raw)
        except ValueError:  # a 2xx whose body is not JSON
            raise TransportError("server_error") from None
        if not isinstance(data, dict):
            raise TransportError("server_error")  # JSON, but not a reply object
        return data

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        entry = self._sessions.pop(loop, None)
        if entry is not None:
            await entry[1].aclose()  # closes the session


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
        self.params = fit_params(model, params)
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
                **{**self.params, **fit_params(self.model, params)},
            )
        except Exception as exc:  # litellm raises many types; all become a classified failure
            secrets = (self._api_key,) if self._api_key else ()
            where = f"litellm:{self.model}"
            raise classify_error(exc, where=where, role=self.role, secrets=secrets) from None
        return _completion(response)

    async def aclose(self) -> None:
        return None
