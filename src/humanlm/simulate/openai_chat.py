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
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from humanlm.errors import HumanlmError
from humanlm.llm.backends import Completion
from humanlm.llm.build import build_backend
from humanlm.llm.client import ChatClient
from humanlm.llm.specs import ModelSpec
from humanlm.simulate.backends import Generation, GenerationSettings
from humanlm.simulate.prompt import SimPrompt
from humanlm.states.template import HUMAN

__all__ = ["OpenAISimulator", "to_chat_messages"]

logger = logging.getLogger(__name__)

_HTTP_FAILURES = ("server_error", "rate_limited")


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
        api_key_env: variable holding the key (default ``OPENAI_API_KEY``; ``none`` for a
            server that takes no key; a loopback server needs none).

    Raises:
        ConfigError: an endpoint that needs a key whose variable is unset.
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
        spec = ModelSpec("openai", model, base_url)
        self.model = model
        self.base_url = base_url
        self.spec = spec.display
        self.settings = settings
        self.send_thinking = base_url is not None
        self.failures: Counter[str] = Counter()
        backend = build_backend(
            spec, role="simulator", api_key_env=api_key_env, flag="--simulator-api-key-env"
        )
        self.client = ChatClient(
            backend,
            name=self.spec,
            retry=settings.retry,
            concurrency=settings.concurrency,
            seed=settings.seed,
        )
        if settings.no_repeat_ngram_size:
            logger.warning("%s: the chat API has no n-gram ban; generating without it", self.spec)

    def __repr__(self) -> str:
        return f"OpenAISimulator(spec={self.spec!r})"

    async def generate(self, prompts: Sequence[SimPrompt]) -> list[Generation]:
        return list(await asyncio.gather(*(self._one(p) for p in prompts)))

    async def aclose(self) -> None:
        await self.client.aclose()

    def _params(self, prompt: SimPrompt) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {
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
        try:
            answer = await self.client.ask(
                to_chat_messages(prompt.messages), params=self._params(prompt)
            )
        except HumanlmError as err:  # bad credentials, unknown model or URL: retrying cannot help
            raise HumanlmError(f"{err} (--simulator-api-key-env names the variable)") from None
        if answer.ok and answer.completion is not None:
            return self._generation(answer.completion)
        reason = "transport_error" if answer.reason in _HTTP_FAILURES else answer.reason
        self.failures[reason] += 1
        logger.warning("%s: no reply after retries (%s)", self.spec, reason)
        return Generation(None, error=reason)

    def _generation(self, completion: Completion) -> Generation:
        text = completion.text
        if completion.reasoning:
            text = f"<think>\n{completion.reasoning.strip()}\n</think>\n\n{text.lstrip()}"
        if completion.finish_reason == "stop":
            text = _close_open_tag(text, self.settings.stop)
        return Generation(text, finish_reason=completion.finish_reason)
