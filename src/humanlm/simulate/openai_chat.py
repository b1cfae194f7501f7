"""The ``openai:`` simulator: any OpenAI-compatible server plays HUMAN, in one of two APIs.

``api="completions"`` (``/v1/completions``): the prompt string our multi-role template renders
is sent as is, so a humanlm model behind ``vllm serve`` (or any OpenAI-compatible server) sees
token for token what ``hf:`` and ``vllm:`` give it, as in training. Use it for our models.

``api="chat"`` (``/v1/chat/completions``, the default): for general chat models, which speak as
``assistant``. Training roles -> chat roles:

- the system prompt (persona + task) -> one ``system`` message;
- the target user's own earlier messages (user turns named ``HUMAN``, the role the model is
  asked to play) -> ``assistant`` messages, since the chat model speaks as HUMAN;
- every other user turn (other authors) and a chatbot's assistant turns in WildChat (the party
  HUMAN talks to) -> ``user`` messages whose content starts with ``"<author> wrote:"`` on its own
  line (``assistant wrote:`` for the chatbot), so the model knows who said what (the ``name``
  field of the API is not used: many servers reject names with spaces);
- the generation prompt (``<name>HUMAN</name>`` and the think block) is the server's own: the
  thinking switch is sent as ``chat_template_kwargs.enable_thinking`` to a server given by
  ``@BASE_URL`` (vLLM, SGLang); api.openai.com does not take that field, so nothing is sent there.

Reasoning the server returns separately (``reasoning_content``) is put back in front of the reply
as a think block, so the raw output has the same shape as with local backends.

No-repeat n-gram ban: the OpenAI API has no such field. A vLLM server started with
``--logits-processors humanlm.model.vllm_ngram:NGramBanLogitsProcessor`` applies it to requests
carrying ``vllm_xargs: {"no_repeat_ngram_size": N, "ngram_ban_scope": SCOPE}``; with ``ngram_xargs=True`` every request
carries it (``ngram_ban`` = N, recorded as requested from the server), else nothing is sent
(``ngram_ban`` = 0).

Requests run concurrently (at most ``settings.concurrency`` at once) and are retried with the
judge's policy and backoff (``humanlm.llm.client.ChatClient``); errors are classified as for the
judge.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from humanlm.errors import ConfigError, HumanlmError
from humanlm.llm.backends import Completion
from humanlm.llm.build import build_backend
from humanlm.llm.client import ChatClient
from humanlm.llm.specs import ModelSpec
from humanlm.simulate.backends import (
    SIMULATOR_APIS,
    Generation,
    GenerationSettings,
    ngram_extra_args,
)
from humanlm.simulate.prompt import SimPrompt
from humanlm.states.parsing import close_open_tag
from humanlm.states.template import HUMAN

__all__ = ["SIMULATOR_APIS", "OpenAISimulator", "to_chat_messages"]

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


class OpenAISimulator:
    """A model behind an OpenAI-compatible server, asked once per prompt.

    Args:
        model: the model name the server expects.
        base_url: the server (``None``: api.openai.com).
        settings: decoding settings (``concurrency`` and ``retry`` apply here).
        api_key_env: variable holding the key (default ``OPENAI_API_KEY``; ``none`` for a
            server that takes no key; a loopback server needs none).
        api: ``chat`` (messages, for chat models) or ``completions`` (our rendered prompt).
        ngram_xargs: ask a vLLM server for the n-gram ban through ``vllm_xargs``.

    Raises:
        ConfigError: an endpoint that needs a key whose variable is unset, an unknown ``api``.
    """

    batch_size = 1  # each example flows on its own; concurrency bounds requests in flight

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None,
        settings: GenerationSettings,
        api_key_env: str | None = None,
        api: str = "chat",
        ngram_xargs: bool = False,
    ):
        if api not in SIMULATOR_APIS:
            raise ConfigError(f"simulator_api: {api!r} is not one of {', '.join(SIMULATOR_APIS)}")
        spec = ModelSpec("openai", model, base_url)
        self.model = model
        self.base_url = base_url
        self.spec = spec.display
        self.settings = settings
        self.api = api
        self.ngram_ban = settings.no_repeat_ngram_size if ngram_xargs else 0
        self.send_thinking = base_url is not None and api == "chat"
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
        if settings.no_repeat_ngram_size and not self.ngram_ban:
            logger.warning(
                "%s: no n-gram ban (the OpenAI API has none; a vLLM server with our logits "
                "processor applies it with simulator_ngram_xargs: true)",
                self.spec,
            )

    def __repr__(self) -> str:
        return f"OpenAISimulator(spec={self.spec!r})"

    async def generate(self, prompts: Sequence[SimPrompt]) -> list[Generation]:
        return list(await asyncio.gather(*(self._one(p) for p in prompts)))

    async def aclose(self) -> None:
        await self.client.aclose()

    def _params(self, prompt: SimPrompt) -> dict[str, Any]:
        s = self.settings
        body = s.request_params()
        if s.stop:
            body["stop"] = list(s.stop)
        extra: dict[str, Any] = {}
        if self.send_thinking:
            extra["chat_template_kwargs"] = {"enable_thinking": prompt.thinking}
        if self.ngram_ban:
            extra["vllm_xargs"] = ngram_extra_args(s)
        if self.api == "completions" and self.base_url is not None:
            extra["add_special_tokens"] = False  # tokenize the prompt as hf: and vllm: do
        if extra:
            body["extra_body"] = extra
        return body

    async def _one(self, prompt: SimPrompt) -> Generation:
        try:
            if self.api == "completions":
                answer = await self.client.ask_text(prompt.text, params=self._params(prompt))
            else:
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
            text = close_open_tag(text, self.settings.stop)
        return Generation(text, finish_reason=completion.finish_reason)
