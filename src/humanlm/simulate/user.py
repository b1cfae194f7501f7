"""``UserSimulator``: a trained user simulator behind a small Python API.

The conversation is given from the simulated user's side, as OpenAI-style messages:

- ``user`` messages without a ``name`` (or named ``HUMAN``) are the simulated user's own earlier
  messages;
- ``user`` messages with a ``name`` are other people in a thread (a Reddit post, an email);
- ``assistant`` messages are an AI assistant's turns;
- ``system`` messages, if any, are added to the persona.

The persona is plain text or a Humanual persona object (a dict, or its JSON text). The reply is
what the user writes next (no tags, no thinking), with the latent states and thinking the model
wrote, and whether the user ended the conversation (``humanlm.states.ending``).

Example:
    >>> sim = UserSimulator.from_spec("hf:runs/demo/humanlm/model")  # doctest: +SKIP
    >>> reply = sim.reply("A student who writes short messages.", [
    ...     {"role": "assistant", "content": "Hi! How can I help?"}])  # doctest: +SKIP
    >>> reply.text, reply.ended  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from humanlm.errors import HumanlmError
from humanlm.llm.specs import parse_spec
from humanlm.simulate.backends import GenerationSettings
from humanlm.simulate.engines import Engine, build_engine
from humanlm.simulate.prompt import SimPrompt, build_sim_prompt
from humanlm.simulate.vllm_args import VLLMSettings
from humanlm.states import LATENT_STATES, get_mode, get_state_set, is_end_signal
from humanlm.states.mode_file import load_mode
from humanlm.states.parsing import THINK_CLOSE, extract_response, parse_output
from humanlm.states.template import HUMAN

if TYPE_CHECKING:
    from humanlm.simulate.served import ServedUserSimulator

__all__ = [
    "BaseUserSimulator",
    "ConversationError",
    "Reply",
    "UserSimulator",
    "resolve_mode",
    "build_prompt",
    "split_persona",
]

logger = logging.getLogger(__name__)

# The prompt of a model that carries no training mode (a base model).
DEFAULT_MODE = "humanlm"

_ROLES = ("system", "developer", "user", "assistant")


class ConversationError(HumanlmError):
    """Messages that cannot be a conversation (the server answers them with HTTP 400).

    Attributes:
        param: where the problem is, e.g. ``messages[2].role``.
    """

    def __init__(self, message: str, *, param: str | None = None):
        self.param = param
        super().__init__(f"{param}: {message}" if param else message)


@dataclass(frozen=True)
class Reply:
    """What the simulated user writes next.

    Attributes:
        text: the message, with no tags and no thinking (``""`` when the user ended or the
            backend failed).
        ended: the user ended the conversation (the model wrote the end signal).
        states: latent states the model wrote (``stance``, ``emotion``, ...), when it wrote any.
        thinking: the model's thinking, when it thought.
        raw: the completion as generated (``None`` when the backend failed).
        finish_reason: ``stop`` or ``length``.
        error: why there is no reply (``timeout``, ``transport_error``, ...), else ``None``.
        completion_tokens: generated tokens, when known.
    """

    text: str
    ended: bool = False
    states: dict[str, str] = field(default_factory=dict)
    thinking: str | None = None
    raw: str | None = None
    finish_reason: str | None = None
    error: str | None = None
    completion_tokens: int | None = None


def _content(message: Any, where: str) -> str:
    if not isinstance(message, Mapping):
        raise ConversationError("each message must be an object", param=where)
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts: only text is understood
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") != "text":
                raise ConversationError(
                    "only text content parts are supported", param=f"{where}.content[{j}]"
                )
            texts.append(str(part.get("text") or ""))
        content = "".join(texts)
    if not isinstance(content, str):
        raise ConversationError("content must be a string", param=f"{where}.content")
    return content


def split_persona(messages: Sequence[Any]) -> tuple[str, list[Mapping[str, Any]]]:
    """Take the ``system``/``developer`` messages out as the persona; return it and the rest."""
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        raise ConversationError("must be a list of messages", param="messages")
    persona, rest = [], []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, Mapping) else None
        if role in ("system", "developer"):
            persona.append(_content(m, f"messages[{i}]"))
        else:
            rest.append(m)
    return "\n\n".join(p for p in persona if p.strip()), rest


def _persona_text(persona: str | Mapping[str, Any] | None) -> str:
    from humanlm.data.persona import render_persona

    if persona is None:
        return ""
    if isinstance(persona, str):
        stripped = persona.strip()
        if not stripped.startswith("{"):
            return stripped
        try:
            persona = json.loads(stripped)
        except ValueError:
            return stripped
    try:
        return render_persona(dict(persona))
    except HumanlmError as err:
        raise ConversationError(f"not a Humanual persona object ({err})", param="persona") from None


def build_prompt(
    persona: str | Mapping[str, Any] | None,
    messages: Sequence[Any],
    *,
    state_set: str,
    thinking: bool,
) -> SimPrompt:
    """The simulator prompt for a conversation given from the user's side (module docstring).

    Raises:
        ConversationError: a message with an unknown role, a bad name or empty content.
    """
    extra, _ = split_persona(messages)
    persona_text = "\n\n".join(t for t in (_persona_text(persona), extra) if t)
    context = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, Mapping):
            raise ConversationError("each message must be an object", param=where)
        role = m.get("role")
        if role in ("system", "developer"):
            continue
        if role not in _ROLES:
            raise ConversationError(
                f"unknown role {role!r}; use system, user or assistant", param=f"{where}.role"
            )
        content = _content(m, where)
        if not content.strip():
            raise ConversationError("content is empty", param=f"{where}.content")
        name = m.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConversationError("name must be a non-empty string", param=f"{where}.name")
        if role == "assistant":
            context.append({"role": "assistant", "name": "assistant", "content": content})
        else:
            context.append(
                {"role": "user", "name": name.strip() if name else HUMAN, "content": content}
            )
    example = {"persona": persona_text, "messages": context}
    return build_sim_prompt(example, thinking=thinking, state_set=state_set)


def parse_reply(raw: str | None, *, thinking: bool, finish_reason: str | None = None) -> Reply:
    """Read a raw completion: the response, the states and thinking, and the end signal.

    ``thinking``: the completion continues a prompt that opened a think block.
    """
    if raw is None:
        return Reply("", finish_reason=finish_reason)
    states = {
        name: value
        for name, value in parse_output(raw, LATENT_STATES, strict=False).fields.items()
        if value
    }
    if thinking and THINK_CLOSE not in raw:
        # The prompt opened a think block that never closed: all of it is thinking.
        return Reply(
            "", states=states, thinking=raw.strip() or None, raw=raw, finish_reason=finish_reason
        )
    text = extract_response(raw)
    ended = is_end_signal(text)
    found = parse_output(raw, [], strict=False).thinking
    return Reply(
        "" if ended else text,
        ended=ended,
        states=states,
        thinking=found or None,
        raw=raw,
        finish_reason=finish_reason,
    )


class BaseUserSimulator(ABC):
    """What every user simulator offers: its own ``areplies`` and ``aclose``, and from them one
    reply at a time, async (``areply``) or from synchronous code (``reply``)."""

    spec: str

    @abstractmethod
    async def areplies(
        self,
        persona: str | Mapping[str, Any] | None,
        messages: Sequence[Any],
        *,
        n: int = 1,
        settings: GenerationSettings | None = None,
    ) -> list[Reply]:
        """``n`` independent replies to the same conversation."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close connections (a later call opens new ones)."""

    async def areply(
        self, persona: str | Mapping[str, Any] | None, messages: Sequence[Any]
    ) -> Reply:
        """What the user writes next (async)."""
        [reply] = await self.areplies(persona, messages)
        return reply

    def reply(self, persona: str | Mapping[str, Any] | None, messages: Sequence[Any]) -> Reply:
        """What the user writes next (from synchronous code; not inside a running event loop)."""
        return asyncio.run(self._once(persona, messages))

    async def _once(self, persona: Any, messages: Sequence[Any]) -> Reply:
        try:
            return await self.areply(persona, messages)
        finally:
            await self.aclose()


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


class UserSimulator(BaseUserSimulator):
    """A user simulator: ``reply(persona, messages) -> Reply`` (and ``areply``, async).

    Args:
        engine: the backend (``humanlm.simulate.engines``); ``from_spec`` builds one.
        mode: the training mode of the model (``humanlm``, ``grpo``, ``sft``, ...), which decides
            the prompt (tagged or raw response) and whether it thinks first.
        settings: decoding settings (default: temperature 0.4, 512 new tokens without thinking
            or 1024 with it, the 4-gram ban where the backend applies it).
    """

    def __init__(
        self, engine: Engine, *, mode: str = "humanlm", settings: GenerationSettings | None = None
    ):
        chosen = get_mode(mode)
        self.engine = engine
        self.mode = chosen.name
        self.state_set = chosen.state_set
        self.thinking = chosen.thinking
        tagged = get_state_set(chosen.state_set).tagged
        base = settings or GenerationSettings(max_new_tokens=1024 if chosen.thinking else 512)
        stop = ("</response>",) if tagged else ()
        self.settings = dataclasses.replace(base, stop=stop)
        self.spec = engine.spec

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
        through our prompt with roles flipped (``humanlm.simulate.openai_chat``).

        Raises:
            ConfigError: unknown spec or mode, missing key, unreachable ``humanlm serve``.
        """
        parsed = parse_spec(spec, role="simulator", kinds=("hf", "vllm", "openai"))
        if parsed.kind == "openai" and parsed.base_url is not None:
            from humanlm.simulate.served import ServedUserSimulator, is_humanlm_server

            if is_humanlm_server(parsed.base_url, api_key_env=api_key_env):
                return ServedUserSimulator(
                    parsed.model,
                    base_url=parsed.base_url,
                    settings=settings,
                    api_key_env=api_key_env,
                )
        engine = build_engine(spec, api_key_env=api_key_env, vllm=vllm)
        return cls(engine, mode=resolve_mode(spec, mode), settings=settings)

    def prompt(self, persona: str | Mapping[str, Any] | None, messages: Sequence[Any]) -> SimPrompt:
        """The prompt the model gets for this conversation."""
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
        generations = await self.engine.generate([prompt] * n, settings or self.settings)
        replies = []
        for gen in generations:
            reply = parse_reply(
                gen.text,
                thinking=prompt.thinking and self.engine.continues_prompt,
                finish_reason=gen.finish_reason,
            )
            replies.append(
                dataclasses.replace(reply, error=gen.error, completion_tokens=gen.completion_tokens)
            )
        return replies

    async def aclose(self) -> None:
        """Close connections (a later call opens new ones)."""
        await self.engine.aclose()
