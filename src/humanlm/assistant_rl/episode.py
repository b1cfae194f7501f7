"""One episode: an assistant policy in a multi-turn conversation with a simulated user.

The policy's sequence is the conversation in its own chat template. The prompt is the assistant's
system message (if any) and the opening turns; the completion is every assistant turn and, in
between, the user's turns. Each token of the completion carries a mask value: 1 for the tokens
the policy sampled, 0 for the tokens it did not (the user's message and the template tokens
around it), so the user's turns get no loss.

Episodes advance together, one round at a time: every active episode gets its next assistant
turn in one generation batch, then every episode still running asks its user at once. An
episode stops for the first of these reasons (``STOP_REASONS``):

- ``user_ended``: the simulated user wrote the end signal (``<|endconversation|>``);
- ``max_turns``: the assistant has written ``max_turns`` turns;
- ``length``: the completion reached the token budget (the assistant's turn is cut there, or
  the user's next turn would not fit and is left out);
- ``empty_assistant_turn``: the assistant wrote nothing the user could read;
- ``empty_user_turn``: the user wrote nothing, also when asked again;
- ``user_error``: the simulator failed after its retries (the rewards leave such an episode
  unscored: the environment failed, not the policy).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from humanlm.errors import ConfigError, HumanlmError
from humanlm.simulate import ConversationError, Reply, Scenario

__all__ = [
    "STOP_REASONS",
    "Episode",
    "EpisodeTokens",
    "User",
    "check_assistant_template",
    "play_episodes",
    "user_turn_ids",
]

logger = logging.getLogger(__name__)

STOP_REASONS: dict[str, str] = {
    "user_ended": "the simulated user ended the conversation (the end signal)",
    "max_turns": "the assistant wrote max_turns turns",
    "length": "the completion reached its token budget",
    "empty_assistant_turn": "the assistant wrote nothing the user could read",
    "empty_user_turn": "the simulated user wrote nothing, also when asked again",
    "user_error": "the simulator failed after its retries",
}

_THINK_CLOSE = "</think>"


class User(Protocol):
    """What an episode needs of a user simulator (``humanlm.simulate.UserSimulator`` has it)."""

    spec: str

    async def areply(self, persona: Any, messages: Sequence[Any]) -> Reply: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Episode:
    """A finished episode, as the rewards see it.

    Attributes:
        scenario_id: the scenario it played.
        messages: the conversation as the assistant saw it (``system`` first when given; the
            assistant's thinking is left out).
        stop_reason: one of ``STOP_REASONS``.
        assistant_turns: turns the policy wrote.
        user_turns: turns the simulator wrote (an opening it wrote included).
        goal: what the user wanted (the scenario's goal, ``""`` when none).
        persona: the user's persona (text or a Humanual persona object).
        user_states: the latent states the simulator wrote in its last reply, when it wrote any.
        error: why the simulator failed (``user_error``), else ``None``.
    """

    scenario_id: str
    messages: tuple[dict[str, str], ...]
    stop_reason: str
    assistant_turns: int
    user_turns: int
    goal: str = ""
    persona: str | Mapping[str, Any] = ""
    user_states: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def user_ended(self) -> bool:
        return self.stop_reason == "user_ended"

    def conversation(self) -> list[dict[str, str]]:
        """The turns without the system message."""
        return [m for m in self.messages if m["role"] != "system"]


@dataclass(frozen=True)
class EpisodeTokens:
    """What the policy's trainer gets for one episode.

    Attributes:
        prompt_ids: the prompt (system message and opening turns, then the assistant's turn
            opener).
        completion_ids: the assistant's and the user's turns, in order.
        env_mask: one value per completion token: 1 sampled by the policy, 0 not.
        logprobs: the sampler's log-probability per completion token (0.0 where the mask is 0),
            or ``None`` when the generator gave none.
        episode: the episode these tokens came from.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    env_mask: list[int]
    logprobs: list[float] | None
    episode: Episode


# token ids of each prompt -> (new token ids of each, their log-probabilities or None)
Generate = Callable[[list[list[int]]], "tuple[list[list[int]], list[list[float]] | None]"]
# a coroutine -> its result, run on the event loop that owns the user's connections
RunAsync = Callable[[Coroutine[Any, Any, Any]], Any]


def _render(tokenizer: Any, messages: Sequence[Mapping[str, str]], **kwargs: Any) -> list[int]:
    ids = tokenizer.apply_chat_template(
        [{"role": m["role"], "content": m["content"]} for m in messages],
        tokenize=True,
        return_dict=False,
        **kwargs,
    )
    return list(ids)


def check_assistant_template(tokenizer: Any) -> None:
    """Refuse a tokenizer whose chat template does not open an assistant turn to generate.

    humanlm's own simulator template opens a turn of the user HUMAN; a policy trained with it
    would learn to write as the user.

    Raises:
        ConfigError: the template opens no assistant turn.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("the assistant's tokenizer has no chat template; set one")
    probe = [{"role": "user", "content": "x"}]
    with_opener = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
    bare = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=False)
    opener = with_opener[len(bare) :] if with_opener.startswith(bare) else with_opener
    if "assistant" not in opener or "HUMAN" in opener:
        raise ConfigError(
            f"the assistant's chat template ends a prompt with {opener!r}, not an assistant "
            "turn (humanlm's simulator template speaks as the user); use the assistant "
            "model's own chat template"
        )


def user_turn_ids(tokenizer: Any, text: str, **template_kwargs: Any) -> list[int]:
    """The tokens that follow an assistant turn's end-of-turn token: the user's message in the
    chat template, then the opener of the next assistant turn.

    Rendered after a stand-in exchange, as TRL renders tool results, so the tokens are the
    template's own (a newline after the end-of-turn token included). They are taken after the
    stand-in's end-of-turn tokens, counted, because a template may render an earlier assistant
    turn differently once a user turn follows it (Qwen3 drops its empty think block).

    Raises:
        HumanlmError: the template ends no turn with the end-of-turn token and renders the
            stand-in exchange differently once a turn follows.
    """
    stand_in = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    prefix = _render(tokenizer, stand_in, add_generation_prompt=False, **template_kwargs)
    full = _render(
        tokenizer,
        [*stand_in, {"role": "user", "content": text}],
        add_generation_prompt=True,
        **template_kwargs,
    )
    eos = tokenizer.eos_token_id
    turns = prefix.count(eos)
    ends = [i for i, t in enumerate(full) if t == eos]
    if turns and len(ends) > turns:
        return full[ends[turns - 1] + 1 :]
    if full[: len(prefix)] != prefix:
        raise HumanlmError(
            "the assistant's chat template renders earlier turns differently once a user turn "
            "follows; its user turns cannot be appended token by token"
        )
    return full[len(prefix) :]


def _visible(text: str) -> str:
    """What the user sees of an assistant turn: no thinking block."""
    if _THINK_CLOSE in text:
        text = text.split(_THINK_CLOSE, 1)[1]
    return text.strip()


@dataclass
class _Play:
    """An episode while it runs."""

    scenario: Scenario
    messages: list[dict[str, str]]
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] | None = field(default_factory=list)
    assistant_turns: int = 0
    user_turns: int = 0
    user_states: dict[str, str] = field(default_factory=dict)
    stop_reason: str | None = None
    error: str | None = None

    def finish(self) -> EpisodeTokens:
        assert self.stop_reason is not None
        episode = Episode(
            scenario_id=self.scenario.id,
            messages=tuple(self.messages),
            stop_reason=self.stop_reason,
            assistant_turns=self.assistant_turns,
            user_turns=self.user_turns,
            goal=self.scenario.goal,
            persona=self.scenario.persona,
            user_states=self.user_states,
            error=self.error,
        )
        return EpisodeTokens(
            self.prompt_ids, self.completion_ids, self.env_mask, self.logprobs, episode
        )


async def _ask(user: User, play: _Play, empty_retries: int) -> Reply:
    """The user's next reply; an empty one is asked again.

    Messages the simulator refuses end the episode as ``user_error``; a wrong spec or key
    (any other ``HumanlmError``) stops the run.
    """
    conversation = [m for m in play.messages if m["role"] != "system"]
    reply = Reply("")
    for _ in range(1 + empty_retries):
        try:
            reply = await user.areply(play.scenario.persona_for_user(), conversation)
        except ConversationError as err:
            return Reply("", error=str(err))
        if reply.error or reply.ended or reply.text.strip():
            break
    return reply


async def _ask_all(user: User, plays: list[_Play], empty_retries: int) -> list[Reply]:
    return list(await asyncio.gather(*(_ask(user, p, empty_retries) for p in plays)))


def _read_reply(play: _Play, reply: Reply) -> str | None:
    """Record the user's reply; return its text when the episode goes on, else stop it."""
    if reply.states:
        play.user_states = dict(reply.states)
    if reply.error:
        play.stop_reason, play.error = "user_error", reply.error
    elif reply.ended:
        play.stop_reason = "user_ended"
    elif not reply.text.strip():
        play.stop_reason = "empty_user_turn"
    else:
        play.user_turns += 1
        return reply.text
    return None


def play_episodes(
    scenarios: Sequence[Scenario],
    *,
    system: Sequence[str | None],
    user: User,
    tokenizer: Any,
    generate: Generate,
    run_async: RunAsync,
    max_turns: int,
    max_tokens: int,
    empty_retries: int = 2,
    template_kwargs: Mapping[str, Any] | None = None,
) -> list[EpisodeTokens]:
    """Play one episode per scenario (the same scenario may come several times: a GRPO group).

    Args:
        scenarios: the scenario of each episode.
        system: the assistant's system message of each episode (``None``: none).
        user: the user simulator.
        tokenizer: the policy's tokenizer, with an assistant chat template.
        generate: samples the policy's next turn for each token sequence, stopping at its
            end-of-turn token.
        run_async: runs a coroutine on the loop that owns the user's connections.
        max_turns: assistant turns per episode.
        max_tokens: completion tokens per episode (the user's turns included).
        empty_retries: how often an empty user turn is asked again.
        template_kwargs: extra chat-template arguments (``enable_thinking`` ...).
    """
    kwargs = dict(template_kwargs or {})
    plays = []
    for scenario, text in zip(scenarios, system, strict=True):
        head = [{"role": "system", "content": text}] if text else []
        plays.append(_Play(scenario, head + [dict(m) for m in scenario.messages]))

    # A scenario with no opening turns: the simulated user opens, in the prompt.
    openers = [p for p in plays if not p.messages or p.messages[-1]["role"] != "user"]
    replies = run_async(_ask_all(user, openers, empty_retries))
    for play, reply in zip(openers, replies, strict=True):
        text = _read_reply(play, reply)
        if text is not None:
            play.messages.append({"role": "user", "content": text})
    for play in plays:
        play.prompt_ids = _render(tokenizer, play.messages, add_generation_prompt=True, **kwargs)

    active = [p for p in plays if p.stop_reason is None]
    while active:
        new_ids, new_logprobs = generate([p.prompt_ids + p.completion_ids for p in active])
        for i, (play, ids) in enumerate(zip(active, new_ids, strict=True)):
            ids = list(ids)[: max_tokens - len(play.completion_ids)]
            play.completion_ids += ids
            play.env_mask += [1] * len(ids)
            if new_logprobs is None or play.logprobs is None:
                play.logprobs = None
            else:
                play.logprobs += list(new_logprobs[i])[: len(ids)]
            text = _visible(tokenizer.decode(ids, skip_special_tokens=True))
            play.messages.append({"role": "assistant", "content": text})
            play.assistant_turns += 1
            if len(play.completion_ids) >= max_tokens:
                play.stop_reason = "length"
            elif not text:
                play.stop_reason = "empty_assistant_turn"
            elif play.assistant_turns >= max_turns:
                play.stop_reason = "max_turns"
        asking = [p for p in active if p.stop_reason is None]
        replies = run_async(_ask_all(user, asking, empty_retries))
        for play, reply in zip(asking, replies, strict=True):
            text = _read_reply(play, reply)
            if text is None:
                continue
            turn = user_turn_ids(tokenizer, text, **kwargs)
            if play.completion_ids[-1] != tokenizer.eos_token_id:
                # The turn hit the per-turn token limit: close it as the template would.
                turn = [tokenizer.eos_token_id, *turn]
            if len(play.completion_ids) + len(turn) >= max_tokens:
                play.stop_reason = "length"  # no room left for the policy to answer
                continue
            play.messages.append({"role": "user", "content": text})
            play.completion_ids += turn
            play.env_mask += [0] * len(turn)
            if play.logprobs is not None:
                play.logprobs += [0.0] * len(turn)
        active = [p for p in active if p.stop_reason is None]
    for play in plays:
        if not play.completion_ids:
            # Stopped before the policy wrote anything (the user failed to open): TRL needs a
            # token per completion, so one end-of-turn token stands there, with no loss.
            play.completion_ids, play.env_mask = [tokenizer.eos_token_id], [0]
            play.logprobs = None if play.logprobs is None else [0.0]
    return [p.finish() for p in plays]
