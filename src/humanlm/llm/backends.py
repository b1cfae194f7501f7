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
import os
import urllib.parse
import urllib.request
import weakref
from collections.abc import AsyncGenerator
from typing import Any, Protocol

import aiohttp

from humanlm import __version__
from humanlm.errors import ConfigError
from humanlm.llm.failures import TransportError, classify_error, status_error
from humanlm.llm.params import fit_params, is_openai_reasoning
from humanlm.llm.replies import Completion, read_completion

__all__ = ["ChatBackend", "LiteLLMBackend", "OpenAIBackend"]

logger = logging.getLogger(__name__)

LITELLM_HINT = "pip install 'humanlm[litellm]'"


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
        return read_completion(await self._post("/chat/completions", body, params, timeout_s))

    async def complete_text(
        self,
        prompt: str,
        *,
        timeout_s: float,
        params: dict[str, Any] | None = None,
    ) -> Completion:
        """Send one text-completion request: ``prompt`` goes to the model exactly as given."""
        body = {"model": self.model, "prompt": prompt}
        return read_completion(await self._post("/completions", body, params, timeout_s))

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
        return read_completion(response)

    async def aclose(self) -> None:
        return None
