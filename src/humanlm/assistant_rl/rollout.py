"""``UserRollout``: TRL's ``rollout_func`` for an assistant that talks with a simulated user.

``GRPOTrainer(rollout_func=...)`` hands the rollout each prompt of a generation batch (a GRPO
group is the same prompt several times) and the trainer. The rollout plays one episode per prompt
(``humanlm.assistant_rl.episode``), sampling the policy's turns through the trainer's own
generation step, so ``use_vllm`` and the ``GRPOConfig`` sampling settings apply turn by turn. It
returns the tokens, ``env_mask`` (TRL multiplies it into the loss mask: the user's tokens get no
loss) and one ``episode`` per rollout, which TRL passes to every reward function as a keyword.

Each step logs ``episodes/<stop reason>`` (the share of episodes that stopped so), the mean
assistant and user turns, and a ``stop_reason`` column in the completions table.

Example:
    >>> rollout = UserRollout(user=UserSimulator.from_spec("hf:runs/humanlm/model"),
    ...                       scenarios=load_scenarios("scenarios.jsonl"), max_turns=4)
    ...  # doctest: +SKIP
    >>> trainer = GRPOTrainer(model, reward_funcs=[user_end_reward], args=GRPOConfig(...),
    ...                       train_dataset=rollout.dataset(system="You are helpful."),
    ...                       rollout_func=rollout)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Coroutine, Sequence
from typing import Any

from datasets import Dataset

from humanlm.assistant_rl.episode import (
    STOP_REASONS,
    User,
    check_assistant_template,
    play_episodes,
)
from humanlm.errors import ConfigError
from humanlm.simulate import Scenario

__all__ = ["SCENARIO_KEY", "UserRollout"]

logger = logging.getLogger(__name__)

# The prompt's first message carries its scenario's id under this key (TRL gives a rollout the
# prompts only); chat templates read role and content alone.
SCENARIO_KEY = "scenario_id"


class UserRollout:
    """Episodes with a simulated user, as a TRL ``rollout_func``.

    Args:
        user: the simulator (``UserSimulator.from_spec(spec)``: any spec, a served one too).
        scenarios: who the user is and what they want (``humanlm.simulate.load_scenarios``).
        max_turns: assistant turns per episode.
        max_tokens: completion tokens per episode, the user's turns included (default: the
            trainer's ``max_completion_length``).
        empty_retries: how often an empty user turn is asked again.

    Raises:
        ConfigError: no scenarios, repeated scenario ids, ``max_turns`` below 1.
    """

    def __init__(
        self,
        *,
        user: User,
        scenarios: Sequence[Scenario],
        max_turns: int = 4,
        max_tokens: int | None = None,
        empty_retries: int = 2,
    ):
        problems = []
        if not scenarios:
            problems.append("no scenarios")
        ids = [s.id for s in scenarios]
        if len(set(ids)) != len(ids):
            problems.append("scenario ids must be unique")
        if max_turns < 1:
            problems.append(f"max_turns must be >= 1, got {max_turns}")
        if max_tokens is not None and max_tokens < 1:
            problems.append(f"max_tokens must be >= 1, got {max_tokens}")
        if problems:
            raise ConfigError(problems)
        self.user = user
        self.scenarios = {s.id: s for s in scenarios}
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self.empty_retries = empty_retries
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: Any = None
        self._checked: set[int] = set()

    def __repr__(self) -> str:
        return f"UserRollout(user={self.user.spec!r}, scenarios={len(self.scenarios)})"

    def dataset(self, *, system: str | None = None) -> Dataset:
        """The training prompts: one row per scenario, the assistant's view of its opening.

        Args:
            system: the assistant's system message (``None``: none).
        """
        rows = []
        for scenario in self.scenarios.values():
            head = [{"role": "system", "content": system}] if system else []
            messages = head + [dict(m) for m in scenario.messages]
            if not messages:  # the user opens: the prompt is only a placeholder to carry the id
                messages = [{"role": "system", "content": ""}]
            messages[0] = {**messages[0], SCENARIO_KEY: scenario.id}
            rows.append({"prompt": messages})
        return Dataset.from_list(rows)

    def __call__(self, prompts: list[list[dict[str, Any]]], trainer: Any) -> dict[str, Any]:
        """Play one episode per prompt; TRL's ``rollout_func`` contract."""
        tokenizer = trainer.processing_class
        if id(tokenizer) not in self._checked:
            check_assistant_template(tokenizer)
            self._checked.add(id(tokenizer))
        scenarios, system = [], []
        for prompt in prompts:
            ident = prompt[0].get(SCENARIO_KEY) if prompt else None
            if ident not in self.scenarios:
                raise ConfigError(
                    f"a prompt names scenario {ident!r}, which this rollout does not have; "
                    "build the train dataset with UserRollout.dataset()"
                )
            scenarios.append(self.scenarios[ident])
            first = prompt[0]
            system.append(first["content"] if first["role"] == "system" else None)

        def generate(ids: list[list[int]]) -> tuple[list[list[int]], list[list[float]] | None]:
            # TRL's own step for continuing token sequences (its tool loop uses it the same
            # way): vLLM or transformers, with the GRPOConfig sampling settings.
            return trainer._generate_single_turn(ids, None, {}, num_generations=1)

        played = play_episodes(
            scenarios,
            system=system,
            user=self.user,
            tokenizer=tokenizer,
            generate=generate,
            run_async=self._run,
            max_turns=self.max_turns,
            max_tokens=self.max_tokens or trainer.max_completion_length,
            empty_retries=self.empty_retries,
            template_kwargs=getattr(trainer, "chat_template_kwargs", None),
        )
        self._log(trainer, [p.episode for p in played])
        logprobs = [p.logprobs for p in played]
        return {
            "prompt_ids": [p.prompt_ids for p in played],
            "completion_ids": [p.completion_ids for p in played],
            "logprobs": None if any(lp is None for lp in logprobs) else logprobs,
            "env_mask": [p.env_mask for p in played],
            "episode": [p.episode for p in played],
        }

    def _log(self, trainer: Any, episodes: list[Any]) -> None:
        """Stop reasons and turns, through the trainer's metric and table hooks (the ones TRL
        hands reward functions as ``log_metric`` and ``log_extra``)."""
        reasons = Counter(e.stop_reason for e in episodes)
        for reason in STOP_REASONS:
            trainer._log_metric(f"episodes/{reason}", reasons[reason] / len(episodes))
        turns = sum(e.assistant_turns for e in episodes) / len(episodes)
        trainer._log_metric("episodes/assistant_turns", turns)
        trainer._log_metric(
            "episodes/user_turns", sum(e.user_turns for e in episodes) / len(episodes)
        )
        trainer._log_completion_extra("stop_reason", [e.stop_reason for e in episodes])
        logger.info("episodes: %s", ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run on the rollout's own event loop, which keeps the user's connections between
        steps (TRL calls the rollout from synchronous code)."""
        if self._loop is None:
            from trl.trainer.utils import start_event_loop_in_daemon

            self._thread, self._loop, ready = start_event_loop_in_daemon(name="humanlm-user")
            ready.wait()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        """Close the user's connections and stop the rollout's event loop."""
        if self._loop is None:
            return
        from trl.trainer.utils import shutdown_event_loop_in_daemon

        asyncio.run_coroutine_threadsafe(self.user.aclose(), self._loop).result()
        shutdown_event_loop_in_daemon(self._thread, self._loop)
        self._loop = self._thread = None
