"""The ``openai:`` generator: any OpenAI-compatible server, through the text or the chat API.

``api="completions"`` (``/v1/completions``): the prompt string our multi-role template renders
is sent as is (with ``add_special_tokens: false`` to a server given by ``@BASE_URL``), so a
humanlm model behind ``vllm serve`` sees token for token what ``hf:`` and ``vllm:`` give it, as
in training. Use it for our models; ``humanlm serve --model openai:...`` proxies to it.

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

Token budget: ``hf:`` and ``vllm:`` stop at ``max_new_tokens``; a server may answer far more
than the ``max_tokens`` it was sent. A reply (thinking included) longer than
``REPLY_CHARS_PER_TOKEN`` (8) characters per token of the budget is cut there, with
``finish_reason`` ``length`` and ``Generation.cut`` set, so it is neither stored nor judged whole;
eval counts such replies as ``reply_cut``.

No-repeat n-gram ban: the OpenAI API has no such field. A vLLM server started with
``--logits-processors humanlm.model.vllm_ngram:NGramBanLogitsProcessor`` applies it to requests
carrying ``vllm_xargs: {"no_repeat_ngram_size": N, "ngram_ban_scope": SCOPE}``; with
``ngram_xargs=True`` every request carries it, else nothing is sent (``applies_ngram_ban`` false).

All requests of a run go through one ``humanlm.llm.ChatClient``: one concurrency bound, one
limiter, one ledger, the judge's retry policy and error classes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from humanlm.errors import ConfigError, HumanlmError
from humanlm.generate.prompt import SimPrompt
from humanlm.generate.protocol import Generation, GenerationSettings, failure_reason
from humanlm.generate.vllm import ngram_extra_args
from humanlm.llm.build import build_backend
from humanlm.llm.client import ChatClient
from humanlm.llm.limits import RetryPolicy
from humanlm.llm.replies import Completion
from humanlm.llm.specs import ModelSpec
from humanlm.states.parsing import close_open_tag, cut_at_stop
from humanlm.states.template import HUMAN

__all__ = ["OPENAI_APIS", "REPLY_CHARS_PER_TOKEN", "OpenAIGenerator", "to_chat_messages"]

logger = logging.getLogger(__name__)

# How an ``openai:`` generator is asked: chat messages, or our rendered prompt as text.
OPENAI_APIS = ("chat", "completions")
# The character cap of a reply per token of ``max_new_tokens``: a token is about 4 characters of
# English text; 8 leaves room for any tokenizer, and past it the server ignored the budget.
REPLY_CHARS_PER_TOKEN = 8


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


class OpenAIGenerator:
    """A model behind an OpenAI-compatible server, asked once per prompt.

    Args:
        model: the model name the server expects.
        base_url: the server (``None``: api.openai.com).
        api: ``chat`` (messages, for chat models) or ``completions`` (our rendered prompt).
        api_key_env: variable holding the key (default ``OPENAI_API_KEY``; ``none`` for a
            server that takes no key; a loopback server needs none).
        key_flag: the option naming that variable, in errors.
        ngram_xargs: ask a vLLM server for the n-gram ban through ``vllm_xargs``.
        concurrency: requests in flight at once, over every call.
        retry: attempts, backoff and deadlines of one request.
        seed: seed of the backoff jitter.

    Raises:
        ConfigError: an unknown ``api``, or an endpoint that needs a key whose variable is unset.
    """

    batch_size = 1  # each example flows on its own; the client bounds requests in flight
    context_length = None

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None,
        api: str = "chat",
        api_key_env: str | None = None,
        key_flag: str = "--simulator-api-key-env",
        ngram_xargs: bool = False,
        concurrency: int = 32,
        retry: RetryPolicy | None = None,
        seed: int = 0,
    ):
        if api not in OPENAI_APIS:
            raise ConfigError(f"simulator.api: {api!r} is not one of {', '.join(OPENAI_APIS)}")
        spec = ModelSpec("openai", model, base_url)
        self.spec = spec.display
        self.base_url = base_url
        self.api = api
        self.key_flag = key_flag
        self.applies_ngram_ban = ngram_xargs
        self.continues_prompt = api == "completions"
        backend = build_backend(spec, role="simulator", api_key_env=api_key_env, flag=key_flag)
        self.client = ChatClient(
            backend, name=self.spec, retry=retry, concurrency=concurrency, seed=seed
        )
        self._warned = False
        self._warned_cut = False

    def __repr__(self) -> str:
        return f"OpenAIGenerator(spec={self.spec!r}, api={self.api!r})"

    def count_tokens(self, text: str) -> None:
        return None

    def health(self) -> None:
        return None

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        if settings.no_repeat_ngram_size and not self.applies_ngram_ban and not self._warned:
            self._warned = True
            logger.warning(
                "%s: no n-gram ban (the OpenAI API has none; a vLLM server with our logits "
                "processor applies it with simulator.ngram_xargs: true)",
                self.spec,
            )
        return list(await asyncio.gather(*(self._one(p, settings) for p in prompts)))

    async def aclose(self) -> None:
        await self.client.aclose()

    def _params(self, prompt: SimPrompt, s: GenerationSettings) -> dict[str, Any]:
        params = s.request_params()
        if s.stop:
            params["stop"] = list(s.stop)
        extra: dict[str, Any] = {}
        if self.base_url is not None and self.api == "chat":
            extra["chat_template_kwargs"] = {"enable_thinking": prompt.thinking}
        if self.applies_ngram_ban:
            extra["vllm_xargs"] = ngram_extra_args(s)
        if self.base_url is not None and self.api == "completions":
            extra["add_special_tokens"] = False  # tokenize the prompt as hf: and vllm: do
        if extra:
            params["extra_body"] = extra
        return params

    async def _one(self, prompt: SimPrompt, s: GenerationSettings) -> Generation:
        params = self._params(prompt, s)
        try:
            if self.api == "completions":
                answer = await self.client.ask_text(prompt.text, params=params)
            else:
                chat = to_chat_messages(prompt.messages)
                answer = await self.client.ask(chat, params=params)
        except HumanlmError as err:  # bad credentials, unknown model or URL: retrying cannot help
            raise HumanlmError(f"{err} ({self.key_flag} names the variable)") from None
        if not answer.ok or answer.completion is None:
            reason = failure_reason(answer.reason)
            logger.warning("%s: no reply after retries (%s)", self.spec, reason)
            return Generation(None, error=reason)
        return self._generation(answer.completion, s)

    def _generation(self, completion: Completion, s: GenerationSettings) -> Generation:
        text = completion.text
        if completion.reasoning:
            text = f"<think>\n{completion.reasoning.strip()}\n</think>\n\n{text.lstrip()}"
        if completion.finish_reason == "stop":
            text = close_open_tag(text, s.stop)  # the server cut the stop string off
        text = cut_at_stop(text, s.stop)
        counted = completion.output_tokens if completion.usage_valid else 0
        cap = s.max_new_tokens * REPLY_CHARS_PER_TOKEN
        if len(text) <= cap:
            return Generation(
                text, finish_reason=completion.finish_reason, completion_tokens=counted or None
            )
        if not self._warned_cut:
            self._warned_cut = True
            logger.warning(
                "%s: a reply of %d characters was cut at %d (%d per token of max_new_tokens=%d); "
                "such replies are counted as reply_cut",
                self.spec,
                len(text),
                cap,
                REPLY_CHARS_PER_TOKEN,
                s.max_new_tokens,
            )
        return Generation(
            text[:cap], finish_reason="length", completion_tokens=counted or None, cut=True
        )
