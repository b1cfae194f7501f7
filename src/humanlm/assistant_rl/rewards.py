"""Episode rewards for an assistant trained against a simulated user, as TRL reward functions.

Each reward reads the ``episode`` keyword (one ``Episode`` per rollout, from ``UserRollout``),
so any function with TRL's reward contract that does the same plugs in beside them; bind their
arguments with ``functools.partial`` and weigh them with ``GRPOConfig.reward_weights``.

- ``judge_reward``: an LLM judge of the whole conversation (``ConversationJudge``, any
  ``openai:``/``litellm:`` spec, through ``humanlm.llm``), 0 to 1; a reply it cannot read is
  unscored (``None``), never 0;
- ``task_reward``: a Python check of the episode (``check(episode) -> float | bool | None``);
- ``user_end_reward``: the user's own end state: 1 when the user ended the conversation, else 0.

An episode whose simulator failed (``user_error``) is unscored by all three: the environment
failed, not the policy. TRL logs each as ``rewards/<name>/mean`` and their weighted sum as
``reward``.

Example:
    >>> judge = ConversationJudge.from_spec("openai:gpt-4o-mini")  # doctest: +SKIP
    >>> reward_funcs = [partial(judge_reward, judge=judge), user_end_reward]  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from humanlm.assistant_rl.episode import Episode
from humanlm.data.transcript import render_transcript
from humanlm.llm.build import build_backend
from humanlm.llm.client import ChatClient
from humanlm.llm.jsonreply import find_json
from humanlm.llm.limits import RetryPolicy
from humanlm.llm.specs import parse_spec
from humanlm.llm.templates import PromptFolder
from humanlm.states.render import render

__all__ = [
    "ConversationJudge",
    "ConversationVerdict",
    "judge_reward",
    "task_reward",
    "user_end_reward",
]

PROMPTS = PromptFolder("humanlm.assistant_rl")
TEMPLATE = "conversation"
MAX_SCORE = 10

_ENDINGS = {
    "user_ended": "the person ended it",
    "max_turns": "the assistant's turns ran out",
    "length": "it reached its length limit",
    "empty_assistant_turn": "the assistant wrote nothing",
    "empty_user_turn": "the person stopped writing",
    "user_error": "the person could not be reached",
}
_SPEAKERS = {"user": "Person", "assistant": "Assistant"}


@dataclass(frozen=True)
class ConversationVerdict:
    """The judge's grade of one conversation.

    Attributes:
        score: 0 to 1 (the judge's 0-10 divided by 10), or ``None`` when unscored.
        reason: ``ok``, or why there is no score (``user_error``, ``timeout``, a parse problem).
        raw: the judge's last reply, when there was one.
        explanation: the judge's own reason for its grade.
    """

    score: float | None
    reason: str
    raw: str | None = None
    explanation: str = ""


def _parse(text: str) -> tuple[tuple[float, str] | None, str]:
    """A judge reply -> ``((score 0-1, its reason), "ok")`` or ``(None, problem)``."""
    found, problem = find_json(text, prefer="score")
    if found is None:
        return None, problem
    score = found.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        return None, "no numeric score"
    if not 0 <= score <= MAX_SCORE:
        return None, "off_scale"
    return (score / MAX_SCORE, str(found.get("reason") or "")), "ok"


class ConversationJudge:
    """An LLM that grades the assistant's side of a finished conversation.

    Args:
        client: the judge model behind the one retry loop (``humanlm.llm.ChatClient``).
    """

    def __init__(self, client: ChatClient):
        self.client = client
        self.prompt_version = PROMPTS.version(TEMPLATE)

    def __repr__(self) -> str:
        return f"ConversationJudge({self.client.name!r})"

    @classmethod
    def from_spec(
        cls,
        spec: str,
        *,
        api_key_env: str | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 16,
        params: dict[str, Any] | None = None,
    ) -> ConversationJudge:
        """Build from ``openai:MODEL[@BASE_URL]`` or ``litellm:PROVIDER/MODEL``.

        Raises:
            ConfigError: a bad spec, or a missing key (the variable ``api_key_env`` names).
        """
        parsed = parse_spec(spec, role="judge", kinds=("openai", "litellm"))
        backend = build_backend(parsed, role="judge", api_key_env=api_key_env, params=params)
        client = ChatClient(backend, name=parsed.display, retry=retry, concurrency=concurrency)
        return cls(client)

    def prompt(self, episode: Episode) -> str:
        """The judge prompt for one episode (the conversation sanitised, system message left out)."""
        turns = [
            {"name": _SPEAKERS.get(m["role"], m["role"]), "content": m["content"]}
            for m in episode.conversation()
        ]
        return render(
            PROMPTS.load(TEMPLATE),
            goal=episode.goal.strip() or "(not stated: infer it from the conversation)",
            conversation=render_transcript(turns),
            ending=_ENDINGS.get(episode.stop_reason, episode.stop_reason),
        )

    async def judge(self, episode: Episode) -> ConversationVerdict:
        """Grade one episode; a failed simulator leaves it unscored without a call."""
        if episode.stop_reason == "user_error":
            return ConversationVerdict(None, "user_error")
        answer = await self.client.ask(
            [{"role": "user", "content": self.prompt(episode)}], parse=_parse
        )
        if not answer.ok:
            return ConversationVerdict(None, answer.reason, answer.raw)
        score, explanation = answer.value
        return ConversationVerdict(score, "ok", answer.raw, explanation)

    async def aclose(self) -> None:
        await self.client.aclose()


async def judge_reward(
    prompts: list[Any],
    completions: list[Any],
    *,
    episode: list[Episode],
    judge: ConversationJudge,
    log_metric: Callable[[str, float], None] | None = None,
    log_extra: Callable[[str, list[Any]], None] | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """The LLM judge's grade of each conversation, 0 to 1 (``None``: unscored)."""
    verdicts = await asyncio.gather(*(judge.judge(e) for e in episode))
    if log_metric is not None:
        unscored = sum(v.score is None for v in verdicts) / max(len(verdicts), 1)
        log_metric("judge/unscored", unscored)
    if log_extra is not None:
        log_extra("judge_reason", [v.explanation or v.reason for v in verdicts])
    return [v.score for v in verdicts]


def task_reward(
    prompts: list[Any],
    completions: list[Any],
    *,
    episode: list[Episode],
    check: Callable[[Episode], float | bool | None],
    **kwargs: Any,
) -> list[float | None]:
    """``check(episode)`` of each episode as a number (``True`` is 1; ``None``: unscored)."""
    rewards: list[float | None] = []
    for e in episode:
        value = None if e.stop_reason == "user_error" else check(e)
        rewards.append(None if value is None else float(value))
    return rewards


def user_end_reward(
    prompts: list[Any], completions: list[Any], *, episode: Sequence[Episode], **kwargs: Any
) -> list[float | None]:
    """1 when the user ended the conversation themselves, else 0 (``None``: the simulator failed)."""
    return [None if e.stop_reason == "user_error" else float(e.user_ended) for e in episode]
