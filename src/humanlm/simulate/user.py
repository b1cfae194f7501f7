"""``UserSimulator``: a trained user simulator behind a small Python API.

The conversation is given from the simulated user's side, as OpenAI-style messages
(``humanlm.simulate.messages``): ``user`` messages without a ``name`` are the user's own earlier
turns, ``user`` messages with a ``name`` are other people in a thread, ``assistant`` messages are
an AI assistant's. The reply (``humanlm.simulate.reply.Reply``) is what the user writes next (no
tags, no thinking), with the latent states and thinking the model wrote, and whether the user
ended the conversation.

Example:
    >>> sim = UserSimulator.from_spec("hf:runs/demo/humanlm/model")  # doctest: +SKIP
    >>> reply = sim.reply("A student who writes short messages.", [
    ...     {"role": "assistant", "content": "Hi! How can I help?"}])  # doctest: +SKIP
    >>> reply.text, reply.ended  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from humanlm.generate.build import GENERATOR_KINDS, build_generator
from humanlm.generate.prompt import SimPrompt
from humanlm.generate.protocol import Generation, GenerationSettings, Generator
from humanlm.generate.vllm_settings import VLLMSettings
from humanlm.llm.specs import parse_spec
from humanlm.simulate.messages import build_prompt
from humanlm.simulate.reply import Replier, Reply, parse_reply
from humanlm.simulate.served import ServedUserSimulator, is_humanlm_server
from humanlm.states import get_mode, get_state_set
from humanlm.states.mode_file import load_mode

__all__ = ["DEFAULT_MODE", "UserSimulator", "resolve_mode"]

logger = logging.getLogger(__name__)

# The prompt of a model that carries no training mode (a base model).
DEFAULT_MODE = "humanlm"


def resolve_mode(spec: str, mode: str | None = None) -> str:
    """The training mode a model is prompted in: ``mode`` as set (the log says when it replaces
    the saved one), else the mode saved with the model (``humanlm_mode.json``), else
    ``humanlm``.

    Raises:
        ConfigError: an unknown mode, or an unreadable mode file.
    """
    saved = load_mode(spec)
    if mode is None:
        if saved is not None:
            logger.info("mode %s (saved in %s)", saved.mode.name, saved.source)
        return saved.mode.name if saved is not None else DEFAULT_MODE
    get_mode(mode)
    if saved is not None and saved.mode.name != mode:
        logger.warning(
            "mode %s (set) replaces the training mode %s saved in %s",
            mode,
            saved.mode.name,
            saved.source,
        )
    return mode


class UserSimulator(Replier):
    """A user simulator: ``reply(persona, messages) -> Reply`` (and ``areply``, async).

    Args:
        generator: the backend (``humanlm.generate``); ``from_spec`` builds one.
        mode: the training mode of the model (``humanlm``, ``grpo``, ``sft``, ...), which decides
            the prompt (tagged or raw response) and whether it thinks first.
        settings: decoding settings (default: temperature 0.4, the mode's new-token budget, the
            4-gram ban where the backend applies it).
    """

    def __init__(
        self,
        generator: Generator,
        *,
        mode: str = DEFAULT_MODE,
        settings: GenerationSettings | None = None,
    ):
        chosen = get_mode(mode)
        self.generator = generator
        self.mode = chosen.name
        self.state_set = chosen.state_set
        self.thinking = chosen.thinking
        tagged = get_state_set(chosen.state_set).tagged
        base = settings or GenerationSettings(max_new_tokens=chosen.max_new_tokens)
        self.settings = dataclasses.replace(base, stop=("</response>",) if tagged else ())
        self.spec = generator.spec

    def __repr__(self) -> str:
        return f"UserSimulator(spec={self.spec!r}, mode={self.mode!r})"

    @classmethod
    def from_spec(
        cls,
        spec: str,
        *,
        mode: str | None = None,
        settings: GenerationSettings | None = None,
        api_key_env: str | None = None,
        vllm: VLLMSettings | None = None,
    ) -> UserSimulator | ServedUserSimulator:
        """Build from ``hf:PATH``, ``vllm:PATH`` or ``openai:MODEL[@BASE_URL]``.

        ``mode`` unset: the training mode saved with the model (``resolve_mode``).
        An ``openai:`` URL that is a ``humanlm serve`` (its ``/v1/models`` says
        ``owned_by: humanlm``) gets the conversation as is; any other chat model plays the user
        through our prompt with roles flipped (``humanlm.generate.openai``).

        Raises:
            ConfigError: unknown spec or mode, missing key, unreachable ``humanlm serve``.
        """
        parsed = parse_spec(spec, role="simulator", kinds=GENERATOR_KINDS)
        if parsed.kind == "openai" and parsed.base_url is not None:
            if is_humanlm_server(parsed.base_url, api_key_env=api_key_env):
                return ServedUserSimulator(
                    parsed.model,
                    base_url=parsed.base_url,
                    settings=settings,
                    api_key_env=api_key_env,
                )
        generator = build_generator(spec, settings=settings, api_key_env=api_key_env, vllm=vllm)
        return cls(generator, mode=resolve_mode(spec, mode), settings=settings)

    def prompt(self, persona: str | Mapping[str, Any] | None, messages: Sequence[Any]) -> SimPrompt:
        """The prompt the model gets for this conversation.

        Raises:
            ConversationError: messages that cannot be a conversation.
        """
        return build_prompt(persona, messages, state_set=self.state_set, thinking=self.thinking)

    async def areplies(
        self,
        persona: str | Mapping[str, Any] | None,
        messages: Sequence[Any],
        *,
        n: int = 1,
        settings: GenerationSettings | None = None,
    ) -> list[Reply]:
        """``n`` independent replies to the same conversation (one batch)."""
        prompt = self.prompt(persona, messages)
        generations = await self.generator.generate([prompt] * n, settings or self.settings)
        return [self.read(g, prompt) for g in generations]

    def read(self, generation: Generation, prompt: SimPrompt) -> Reply:
        """The ``Reply`` in one generation for ``prompt``."""
        reply = parse_reply(
            generation.text,
            thinking=prompt.thinking and self.generator.continues_prompt,
            finish_reason=generation.finish_reason,
        )
        return dataclasses.replace(
            reply,
            error=generation.error,
            completion_tokens=generation.completion_tokens,
            cut=generation.cut,
        )

    async def aclose(self) -> None:
        """Close connections (a later call opens new ones)."""
        await self.generator.aclose()
