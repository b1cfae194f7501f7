"""The ``humanlm_assistant`` agent loop: an assistant policy in a conversation with a simulated user.

The verl counterpart of ``humanlm.assistant_rl.UserRollout`` (TRL): the policy writes the
assistant's turns through verl's rollout server, a humanlm ``UserSimulator`` (any spec, a
``humanlm serve`` URL included) writes the user's, and one episode is one rollout:

- the user's turns enter the token stream through verl's Continuous Token builder (the way
  verl's tool loop appends tool results) with ``response_mask`` 0: no loss on them;
- the episode stops for one of ``humanlm.assistant_rl.STOP_REASONS`` (the user's end signal,
  ``max_turns``, the response budget, an empty turn, a failed simulator), recorded per rollout;
- the reward is computed here, from ``humanlm.assistant_rl.rewards`` on the finished
  ``Episode``: the weighted sum of an LLM judge of the conversation and the user's own end
  state. verl takes a score an agent loop sets and skips its reward workers.

Rows come from ``scenario_rows`` (verl's own ``RLHFDataset`` reads them); the settings from the
``humanlm_assistant`` node of the config (``AssistantLoopSettings``). Importing this module
registers the loop under ``humanlm_assistant``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import (
    AgentLoopBase,
    AgentLoopMetrics,
    AgentLoopOutput,
    register,
)
from verl.utils.profiler import simple_timer

from humanlm.assistant_rl.episode import Episode
from humanlm.assistant_rl.rewards import ConversationJudge, judge_reward, user_end_reward
from humanlm.errors import ConfigError
from humanlm.simulate import ConversationError, Reply, Scenario, UserSimulator

__all__ = [
    "AGENT_NAME",
    "AssistantLoopSettings",
    "HumanlmAssistantLoop",
    "assistant_settings",
    "scenario_rows",
]

logger = logging.getLogger(__name__)

AGENT_NAME = "humanlm_assistant"
_THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class AssistantLoopSettings:
    """The ``humanlm_assistant`` node of the config.

    Attributes:
        user: the simulator spec (``hf:``, ``vllm:``, ``openai:MODEL@URL``).
        user_api_key_env: the variable holding the simulator endpoint's key, if it needs one.
        max_turns: assistant turns per episode.
        empty_retries: how often an empty user turn is asked again.
        judge: the judge spec of ``judge_reward`` (``None``: no judge reward).
        judge_api_key_env: the variable holding the judge's key.
        judge_weight, user_end_weight: the weights of the two rewards in the episode's score.
    """

    user: str
    user_api_key_env: str | None = None
    max_turns: int = 4
    empty_retries: int = 2
    judge: str | None = None
    judge_api_key_env: str | None = None
    judge_weight: float = 1.0
    user_end_weight: float = 0.0


def assistant_settings(node: Mapping[str, Any] | None) -> AssistantLoopSettings:
    """Read and check the ``humanlm_assistant`` config node, all problems at once.

    Raises:
        ConfigError: a missing user spec, unknown keys, bad numbers, no reward with weight.
    """
    values = dict(node or {})
    known = set(AssistantLoopSettings.__dataclass_fields__)
    problems = [f"humanlm_assistant.{k}: unknown setting" for k in sorted(set(values) - known)]
    if not isinstance(values.get("user"), str) or not values["user"]:
        problems.append("humanlm_assistant.user: set the simulator spec (e.g. openai:sim@URL)")
    for key in ("max_turns", "empty_retries"):
        value = values.get(key, AssistantLoopSettings.__dataclass_fields__[key].default)
        low = 1 if key == "max_turns" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            problems.append(f"humanlm_assistant.{key}: an integer >= {low}, got {value!r}")
    weights = {}
    for key in ("judge_weight", "user_end_weight"):
        value = values.get(key, AssistantLoopSettings.__dataclass_fields__[key].default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            problems.append(f"humanlm_assistant.{key}: a number, got {value!r}")
        weights[key] = value
    if values.get("judge") is None and not weights.get("user_end_weight"):
        problems.append("humanlm_assistant: no reward; set judge (a judge spec) or user_end_weight")
    if problems:
        raise ConfigError(problems)
    return AssistantLoopSettings(**{k: v for k, v in values.items() if k in known})


def scenario_rows(
    scenarios: Sequence[Scenario], *, system: str | None = None
) -> list[dict[str, Any]]:
    """One verl dataset row per scenario (write them to parquet for ``data.train_files``).

    ``prompt`` is the assistant's view (its system message, then the opening turns); the user's
    persona and goal travel in ``extra_info``.

    Raises:
        ConfigError: a scenario with neither opening turns nor a system message (verl needs a
            prompt to render).
    """
    rows = []
    for s in scenarios:
        head = [{"role": "system", "content": system}] if system else []
        prompt = head + [dict(m) for m in s.messages]
        if not prompt:
            raise ConfigError(
                f"scenario {s.id!r}: no opening turns and no system message; give either"
            )
        persona = s.persona if isinstance(s.persona, str) else json.dumps(dict(s.persona))
        rows.append(
            {
                "prompt": prompt,
                "data_source": AGENT_NAME,
                "agent_name": AGENT_NAME,
                "extra_info": {"scenario_id": s.id, "persona": persona, "goal": s.goal},
            }
        )
    return rows


# One simulator and one judge per process and event loop: a loop object lives for one rollout,
# while the simulator's connections (or its model) must outlive it.
_SHARED: dict[tuple[str, str | None, int], Any] = {}


def _shared(kind: str, spec: str, key_env: str | None) -> Any:
    ident = (f"{kind}:{spec}", key_env, id(asyncio.get_running_loop()))
    if ident not in _SHARED:
        if kind == "user":
            _SHARED[ident] = UserSimulator.from_spec(spec, api_key_env=key_env)
        else:
            _SHARED[ident] = ConversationJudge.from_spec(spec, api_key_env=key_env)
    return _SHARED[ident]


def _visible(text: str) -> str:
    """What the user sees of an assistant turn: no thinking block."""
    if _THINK_CLOSE in text:
        text = text.split(_THINK_CLOSE, 1)[1]
    return text.strip()


@register(AGENT_NAME)
class HumanlmAssistantLoop(AgentLoopBase):
    """One episode of an assistant policy with a simulated user (verl requires subclassing
    ``AgentLoopBase``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.settings = assistant_settings(self.config.get("humanlm_assistant"))
        self.response_length = self.rollout_config.response_length

    async def _ask(self, persona: Any, conversation: list[dict[str, str]]) -> Reply:
        user = _shared("user", self.settings.user, self.settings.user_api_key_env)
        reply = Reply("")
        for _ in range(1 + self.settings.empty_retries):
            try:
                reply = await user.areply(persona, conversation)
            except ConversationError as err:
                return Reply("", error=str(err))
            if reply.error or reply.ended or reply.text.strip():
                break
        return reply

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        info = kwargs.get("extra_info") or {}
        messages = [dict(m) for m in kwargs["raw_prompt"]]
        scenario = Scenario(
            str(info.get("scenario_id", "")),
            info.get("persona") or "",
            info.get("goal") or "",
            tuple(m for m in messages if m["role"] != "system"),
        )
        persona = scenario.persona_for_user()
        counts = {"assistant": 0, "user": 0}
        stop, error, states = None, None, {}
        timing: dict[str, float] = {}

        def read(reply: Reply) -> str | None:
            nonlocal stop, error, states
            states = dict(reply.states) or states
            if reply.error:
                stop, error = "user_error", reply.error
            elif reply.ended:
                stop = "user_ended"
            elif not reply.text.strip():
                stop = "empty_user_turn"
            else:
                counts["user"] += 1
                return reply.text
            return None

        if not messages or messages[-1]["role"] != "user":  # the simulated user opens
            text = read(await self._ask(persona, self._conversation(messages)))
            if text is not None:
                messages.append({"role": "user", "content": text})
        ids = await self.ct_build_initial_tokens(messages)
        prompt_length = len(ids)
        mask: list[int] = []
        logprobs: list[float] | None = []
        request_id = uuid4().hex
        while stop is None:
            with simple_timer("generate_sequences", timing):
                output = await self.server_manager.generate(
                    request_id=request_id, prompt_ids=ids, sampling_params=sampling_params
                )
            merged, mask, logprobs = await self.ct_merge_assistant_token(
                ids,
                list(output.token_ids),
                mask,
                logprobs if (logprobs or output.log_probs) else None,
                assistant_logprobs=list(output.log_probs) if output.log_probs else None,
            )
            ids = merged.token_ids
            counts["assistant"] += 1
            text = _visible(self.tokenizer.decode(output.token_ids, skip_special_tokens=True))
            messages.append({"role": "assistant", "content": text})
            if len(mask) >= self.response_length:
                stop = "length"
            elif not text:
                stop = "empty_assistant_turn"
            elif counts["assistant"] >= self.settings.max_turns:
                stop = "max_turns"
            if stop is not None:
                break
            text = read(await self._ask(persona, self._conversation(messages)))
            if text is None:
                break
            before = list(messages)
            messages.append({"role": "user", "content": text})
            merged, new_mask, new_logprobs = await self.ct_merge_context_msg(
                before, messages, ids, mask, logprobs or None
            )
            if len(new_mask) >= self.response_length:
                stop = "length"  # no room left for the policy to answer
                messages.pop()
                break
            ids, mask = merged.token_ids, new_mask
            logprobs = new_logprobs if logprobs else logprobs

        episode = Episode(
            scenario_id=scenario.id,
            messages=tuple(messages),
            stop_reason=stop,
            assistant_turns=counts["assistant"],
            user_turns=counts["user"],
            goal=scenario.goal,
            persona=scenario.persona,
            user_states=states,
            error=error,
        )
        score, parts = await self._score(episode)
        response_ids = ids[prompt_length:]
        if not response_ids:
            # The user failed to open: verl needs a response token; it gets no loss.
            response_ids, mask, logprobs = [self.tokenizer.eos_token_id], [0], None
        return AgentLoopOutput(
            prompt_ids=ids[:prompt_length],
            response_ids=response_ids[: self.response_length],
            response_mask=mask[: self.response_length],
            response_logprobs=logprobs[: self.response_length] if logprobs else None,
            reward_score=score,
            num_turns=counts["assistant"] + counts["user"] + 1,
            metrics=AgentLoopMetrics(generate_sequences=timing.get("generate_sequences", 0.0)),
            extra_fields={
                "turn_scores": [],
                "tool_rewards": [],
                "reward_extra_info": {
                    "stop_reason": stop,
                    "assistant_turns": counts["assistant"],
                    "user_turns": counts["user"],
                    **parts,
                },
            },
        )

    @staticmethod
    def _conversation(messages: list[dict[str, str]]) -> list[dict[str, str]]:
        return [m for m in messages if m["role"] != "system"]

    async def _score(self, episode: Episode) -> tuple[float, dict[str, float]]:
        """The weighted episode reward and its parts; an unscored part (``None``: the judge
        could not read its reply, or the simulator failed) counts 0 and is flagged, because
        verl's score is a number."""
        s = self.settings
        parts: dict[str, float | None] = {}
        if s.judge is not None:
            judge = _shared("judge", s.judge, s.judge_api_key_env)
            [parts["judge"]] = await judge_reward([], [], episode=[episode], judge=judge)
        [parts["user_end"]] = user_end_reward([], [], episode=[episode])
        weights = {"judge": s.judge_weight, "user_end": s.user_end_weight}
        score = sum(weights[k] * (v or 0.0) for k, v in parts.items())
        extra = {f"reward/{k}": (v if v is not None else 0.0) for k, v in parts.items()}
        extra["reward/unscored"] = float(any(v is None for v in parts.values()))
        return float(score), extra
