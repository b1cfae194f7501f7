"""The ``openai:`` simulator: any OpenAI-compatible ``/v1/chat/completions`` server plays HUMAN.

Message mapping (our prompt -> chat messages):

- the system prompt (persona + task) -> one ``system`` message;
- the target user's own earlier messages (named ``HUMAN``) -> ``assistant`` messages, since the
  chat model speaks as HUMAN;
- every other message (other authors, and a chatbot's turns in WildChat) -> a ``user`` message
  whose content starts with ``"<author> wrote:"`` on its own line, so the model knows who
  said what (the ``name`` field of the API is not used: many servers reject names with spaces).

Thinking: for a server given by ``@BASE_URL`` (vLLM, SGLang) the switch is sent as
``chat_template_kwargs.enable_thinking``; api.openai.com does not take that field, so nothing is
sent there. Reasoning the server returns separately (``reasoning_content``) is put back in front
of the reply as a think block, so the raw output has the same shape as with local backends.
The no-repeat n-gram ban cannot be requested through this API (``ngram_ban`` = 0).

Requests run concurrently (at most ``settings.concurrency`` at once) and are retried with the
judge's policy and backoff (``humanlm.llm.limits``); errors are classified as for the judge.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import openai

from humanlm.errors import ConfigError, HumanlmError
from humanlm.llm.backends import TransportError, classify_error
from humanlm.llm.limits import backoff_delay
from humanlm.simulate.backends import Generation, GenerationSettings
from humanlm.simulate.prompt import SimPrompt
from humanlm.states.template import HUMAN

__all__ = ["OpenAISimulator", "to_chat_messages"]

logger = logging.getLogger(__name__)

_PLACEHOLDER_KEY = "EMPTY"


def to_chat_messages(messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """Map our ``{role, name, content}`` prompt messages to chat messages (module docstring)."""
    chat = []
    for m in messages:
        if m["role"] == "system":
            chat.append({"role": "system", "content": m["content"]})
        elif m["role"] == "user" and m.get("name") == HUMAN:
            chat.append({"role": "assistant", "content": m["content"]})
        else:
            author = m.get("name") or m["role"]
            chat.append({"role": "user", "content": f"{author} wrote:\n{m['content']}"})
    return chat


def _close_open_tag(text: str, stop: Sequence[str]) -> str:
    """Servers cut the stop string off; put a closing tag back after its opened tag."""
    for close in stop:
        opening = close.replace("</", "<", 1)
        if text.rfind(opening) > text.rfind(close):
            return text + close
    return text


class OpenAISimulator:
    """A chat model behind an OpenAI-compatible server, asked once per prompt.

    Args:
        model: the model name the server expects.
        base_url: the server (``None``: api.openai.com).
        settings: decoding settings (``concurrency`` and ``retry`` apply here).
        api_key_env: variable holding the key (default ``OPENAI_API_KEY``); with a base URL a
            missing key sends a placeholder (local vLLM/SGLang servers need none).

    Raises:
        ConfigError: api.openai.com without a key.
    """

    batch_size = 1  # each example flows on its own; concurrency bounds requests in flight
    ngram_ban = 0

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None,
        settings: GenerationSettings,
        api_key_env: str | None = None,
    ):
        env = api_key_env or "OPENAI_API_KEY"
        api_key = os.environ.get(env) or (_PLACEHOLDER_KEY if base_url else None)
        if api_key is None:
            raise ConfigError(
                f"simulator openai:{model} needs an API key in ${env}; export it, or name "
                "another variable with --simulator-api-key-env"
            )
        self.model = model
        self.base_url = base_url
        self.spec = f"openai:{model}" + (f"@{_without_credentials(base_url)}" if base_url else "")
        self.settings = settings
        self.send_thinking = base_url is not None
        self.failures: Counter[str] = Counter()
        self._rng = random.Random(settings.seed)
        self._make_client = lambda: openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,  # we retry, with the judge's policy
            http_client=openai.DefaultAsyncHttpxClient(),
        )
        self._clients: weakref.WeakKeyDictionary[Any, openai.AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )
        self._slots: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = weakref.WeakKeyDictionary()
        if settings.no_repeat_ngram_size:
            logger.warning("%s: the chat API has no n-gram ban; generating without it", self.spec)

    def __repr__(self) -> str:
        return f"OpenAISimulator(spec={self.spec!r})"

    async def generate(self, prompts: Sequence[SimPrompt]) -> list[Generation]:
        return list(await asyncio.gather(*(self._one(p) for p in prompts)))

    async def aclose(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

    def _loop_state(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore]:
        # A client's connection pool and a semaphore belong to the loop that made them.
        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = self._make_client()
            self._slots[loop] = asyncio.Semaphore(self.settings.concurrency)
        return self._clients[loop], self._slots[loop]

    def _request(self, prompt: SimPrompt) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_chat_messages(prompt.messages),
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_new_tokens,
            "seed": s.seed,
        }
        if s.stop:
            body["stop"] = list(s.stop)
        if self.send_thinking:
            body["extra_body"] = {"chat_template_kwargs": {"enable_thinking": prompt.thinking}}
        return body

    async def _one(self, prompt: SimPrompt) -> Generation:
        client, slot = self._loop_state()
        async with slot:  # the deadline starts once the request may go out
            return await self._attempts(client, self._request(prompt))

    async def _attempts(self, client: openai.AsyncOpenAI, request: dict[str, Any]) -> Generation:
        """Try until a reply comes, the retries are spent or the deadline passes."""
        retry = self.settings.retry
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry.timeout_s
        reason = "timeout"
        for attempt in range(retry.max_retries + 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                response = await asyncio.wait_for(
                    client.chat.completions.create(
                        **request, timeout=min(retry.request_timeout_s, remaining)
                    ),
                    timeout=remaining,
                )
                return self._generation(response)
            except (asyncio.TimeoutError, TimeoutError):
                error = TransportError("timeout")
            except openai.OpenAIError as exc:
                classified = classify_error(exc, where=self.spec)
                if not isinstance(classified, TransportError):
                    # Bad credentials, unknown model or URL: retrying cannot help.
                    raise HumanlmError(_refusal(self.spec, exc)) from None
                error = classified
            except ValueError:  # a 2xx whose body is not JSON
                error = TransportError("server_error")
            http_failure = error.kind in ("server_error", "rate_limited")
            reason = "transport_error" if http_failure else error.kind
            if not error.is_retryable or attempt == retry.max_retries:
                break
            delay = backoff_delay(attempt, retry, retry_after=error.retry_after, rng=self._rng)
            if loop.time() + delay >= deadline:
                break
            logger.debug("%s: %s, retrying in %.2fs", self.spec, error.kind, delay)
            await asyncio.sleep(delay)
        self.failures[reason] += 1
        logger.warning("%s: no reply after retries (%s)", self.spec, reason)
        return Generation(None, error=reason)

    def _generation(self, response: Any) -> Generation:
        choices = getattr(response, "choices", None) or []
        if not choices:
            return Generation("", finish_reason=None)
        choice = choices[0]
        message = choice.message
        text = getattr(message, "content", None) or ""
        reasoning = getattr(message, "reasoning_content", None) or getattr(
            message, "reasoning", None
        )
        if isinstance(reasoning, str) and reasoning.strip():
            text = f"<think>\n{reasoning.strip()}\n</think>\n\n{text.lstrip()}"
        if choice.finish_reason == "stop":
            text = _close_open_tag(text, self.settings.stop)
        return Generation(text, finish_reason=choice.finish_reason)


def _refusal(spec: str, exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    if status == 404:
        return f"simulator {spec}: HTTP 404, unknown model or wrong base URL"
    return (
        f"simulator {spec}: the server refused the credentials (HTTP {status}); check the key "
        "variable (--simulator-api-key-env)"
    )


def _without_credentials(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
