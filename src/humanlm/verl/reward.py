"""``HumanlmRewardManager``: verl reward manager that judges each GRPO group in one call.

verl gives a reward manager one rollout at a time, tagged with its group id ``uid``. This manager
decodes the rollout, cuts it after its first closing tag (where the rollout server stopped), parses
it exactly as the TRL reward does (``humanlm.judge.reward.extract_candidate``),
buffers it by ``(uid, example_id, state)`` until the group's n members are in
(``humanlm.verl.groups.GroupBuffer``), and makes one ``Judge.judge_group`` call for the group:
same prompt, cache, ledger and failure rules as the TRL path (the batched comparative judge).

Configure it under ``reward`` (never the legacy ``custom_reward_function`` / ``reward_model`` keys,
which ``main_ppo`` ignores)::

    reward:
      num_workers: 1                 # one worker sees whole groups (verl routes rollouts at random)
      reward_manager: {source: importlib, name: HumanlmRewardManager,
                       module: {path: pkg://humanlm.verl.reward}}
      reward_kwargs:
        judge: {spec: openai:gpt-5-mini, temperature: 1.0, cache: judge_cache.sqlite}
        group_timeout_s: 300         # judge an incomplete group after this long
        max_wait_s: 1800             # a rollout's reward is a recorded failure after this long
        ledger_dir: null             # where judge_ledger.json and reward_metrics.jsonl go

Rewards are on the 0-1 scale. A rollout the judge could not score gets the mean score of the
scored members of its group (0 when there are none): its GRPO advantage is then 0, the verl
counterpart of TRL's ``None``; it is counted in ``judge_failed`` and never reported as a score.
Every rollout returns the same extra-info keys (``EXTRA_KEYS``); a per-state key is ``None`` for
the other states' rollouts, so verl's validation means are taken over that state only.

A step whose every reward is such a fill would train on nothing. verl hands the manager one
rollout at a time and never says where a step ends, so the manager counts training rollouts
unscored in a row: when a whole step's worth (``data.train_batch_size`` x ``rollout.n``) is, the
reward of the last one raises ``JudgeUnavailableError`` naming the judge, its reasons and the
server's message for a refused request, and so does every later training rollout (without a
judge call). The exception ends verl's rollout of that step, so no update is made from it (TRL's
guard instead stops after the step, past ``max_unscored_fraction``). Steps that are only partly
unscored train on the scored rollouts, as on TRL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.protocol import DataProto

from humanlm.config import JudgeConfig
from humanlm.errors import ConfigError, JudgeUnavailableError
from humanlm.judge import Judge, build_judge
from humanlm.judge.reward import extract_candidate
from humanlm.states import STATE_NAMES, get_state
from humanlm.states.parsing import cut_at_closing_tag
from humanlm.verl.groups import GroupBuffer

__all__ = [
    "EXTRA_KEYS",
    "HumanlmRewardManager",
    "RewardSettings",
    "build_reward_judge",
    "reward_settings",
]

logger = logging.getLogger(__name__)

EXTRA_KEYS: tuple[str, ...] = (
    "judge_score",
    "judge_failed",
    "judge_reason",
    "valid_format",
    "group_complete",
    *(f"state_reward/{s}" for s in STATE_NAMES),
    *(f"valid_format/{s}" for s in STATE_NAMES),
)
_METRICS_FILE = "reward_metrics.jsonl"
_REPORT_EVERY_S = 60.0


@dataclass(frozen=True)
class RewardSettings:
    """``reward.reward_kwargs`` of the verl config (see the module docstring)."""

    judge: JudgeConfig
    group_timeout_s: float = 300.0
    max_wait_s: float = 1800.0
    ledger_dir: str | None = None


def reward_settings(reward_kwargs: Mapping[str, Any] | None) -> RewardSettings:
    """Read and check ``reward.reward_kwargs``; every problem is reported at once.

    Raises:
        ConfigError: unknown keys, a non-positive timeout, a bad judge section.
    """
    data = dict(reward_kwargs or {})
    judge_data = dict(data.pop("judge", None) or {})
    problems = []
    known = {f.name for f in dataclasses.fields(RewardSettings)} - {"judge"}
    problems += [f"reward.reward_kwargs.{k}: unknown key" for k in data if k not in known]
    judge_known = {f.name for f in dataclasses.fields(JudgeConfig)}
    problems += [
        f"reward.reward_kwargs.judge.{k}: unknown key; known keys: {', '.join(sorted(judge_known))}"
        for k in judge_data
        if k not in judge_known
    ]
    if problems:
        raise ConfigError(problems)
    judge = JudgeConfig(**judge_data)
    settings = RewardSettings(judge=judge, **{k: data[k] for k in data})
    for name in ("group_timeout_s", "max_wait_s"):
        if not float(getattr(settings, name)) > 0:
            problems.append(f"reward.reward_kwargs.{name}: must be > 0 seconds")
    if problems:
        raise ConfigError(problems)
    return settings


def build_reward_judge(cfg: JudgeConfig) -> Judge:
    """The judge of the reward, built as the TRL path builds it."""
    return build_judge(cfg)


@dataclass(frozen=True)
class _Rollout:
    """One rollout waiting for its judgement."""

    state: str
    candidate: str | None
    ground_truth: str
    context: list[dict[str, str]]
    source: str | None = None  # the data source: decides the judge's Chat gate


@dataclass(frozen=True)
class _Judged:
    """The judgement of one rollout; ``fill`` is its reward when ``score`` is None."""

    score: float | None
    reason: str
    fill: float
    complete: bool


def _unscored(items: Sequence[_Rollout], reason: str) -> list[_Judged]:
    return [_Judged(None, reason, 0.0, False) for _ in items]


class HumanlmRewardManager(RewardManagerBase):
    """verl reward manager for HumanLM (verl requires subclassing ``RewardManagerBase``).

    Args:
        config: the whole verl config (reads ``reward.reward_kwargs`` and the rollout ``n``).
        tokenizer: the policy tokenizer, to decode responses.
        compute_score: verl's rule-based score function; unused.
        reward_router_address, reward_model_tokenizer: unused (no reward model).
        judge: a ready judge instead of the one ``reward.reward_kwargs.judge`` describes (tests).
    """

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
        *,
        judge: Judge | None = None,
    ):
        super().__init__(config, tokenizer, compute_score)
        self.settings = reward_settings(config.reward.get("reward_kwargs"))
        self.judge = judge if judge is not None else build_reward_judge(self.settings.judge)
        rollout = config.actor_rollout_ref.rollout
        self.group_sizes = {"train": int(rollout.n), "val": int(rollout.val_kwargs.n)}
        # Training rollouts of one step: a run of that many unscored stops the run.
        self.step_rollouts = int(config.data.train_batch_size) * int(rollout.n)
        self._unscored_run: Counter[str] = Counter()  # reasons of the current run
        self.stopped: str | None = None
        self.groups: GroupBuffer[_Rollout, _Judged] = GroupBuffer(
            self._judge_group,
            _unscored,
            timeout_s=self.settings.group_timeout_s,
            max_wait_s=self.settings.max_wait_s,
        )
        self._period: defaultdict[str, float] = defaultdict(float)
        self._last_report = time.monotonic()

    async def run_single(self, data: DataProto) -> dict[str, Any]:
        """Reward of one rollout: ``{"reward_score": float, "reward_extra_info": {...}}``."""
        item = data[-1]  # multi-sequence outputs are rewarded on their last sequence
        info = item.non_tensor_batch.get("extra_info") or {}
        split = str(info.get("split", "train"))
        if split == "train" and self.stopped is not None:
            raise JudgeUnavailableError(self.stopped)
        state = str(info["state"])
        get_state(state)
        response_ids = item.batch["responses"]
        length = int(item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
        text = await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.tokenizer.decode(response_ids[:length], skip_special_tokens=True)
        )
        candidate = extract_candidate(
            cut_at_closing_tag(text), state, tagged=bool(info.get("tagged", True))
        )
        rollout = _Rollout(
            state=state,
            candidate=candidate,
            ground_truth=str(item.non_tensor_batch["reward_model"]["ground_truth"]),
            context=[{"name": m["name"], "content": m["content"]} for m in info["context"]],
            source=item.non_tensor_batch.get("data_source"),
        )
        uid = item.non_tensor_batch.get("uid")
        size = self.group_sizes.get(split, 1) if uid is not None else 1
        key = (str(uid), str(info.get("example_id")), state)
        judged = await self.groups.submit(key, rollout, size=size)
        self._count(state, judged, valid=candidate is not None)
        if split == "train":
            self._guard(judged)
        return {
            "reward_score": judged.score if judged.score is not None else judged.fill,
            "reward_extra_info": _extra_info(state, judged, valid=candidate is not None),
        }

    async def _judge_group(self, items: Sequence[_Rollout], complete: bool) -> list[_Judged]:
        first = items[0]
        verdict = await self.judge.judge_group(
            context=first.context,
            ground_truth=first.ground_truth,
            state=first.state,
            candidates=[it.candidate for it in items],
            source=first.source,
        )
        scored = [s for s in verdict.scores if s is not None]
        fill = sum(scored) / len(scored) if scored else 0.0
        return [_Judged(v.score, v.reason, fill, complete) for v in verdict.verdicts]

    def _guard(self, judged: _Judged) -> None:
        """Stop when a step's worth of training rollouts in a row went unscored (module
        docstring); later training rollouts raise the same error before they are judged."""
        if self.stopped is None:
            if judged.score is not None:
                self._unscored_run.clear()
                return
            self._unscored_run[judged.reason] += 1
            if self._unscored_run.total() < self.step_rollouts:
                return
            reasons = ", ".join(f"{k} x{v}" for k, v in sorted(self._unscored_run.items()))
            refused = self.judge.ledger.last_refusal
            self.stopped = (
                f"judge {self.judge.name} left {self._unscored_run.total()} training rollouts "
                f"in a row unscored, a whole step's worth (data.train_batch_size x rollout.n = "
                f"{self.step_rollouts}): the step would train on no score at all. Reasons: "
                f"{reasons}" + (f"; last refused request: {refused}" if refused else "") + ". "
                "Fix the judge, then resume from the last checkpoint (trainer.resume_mode=auto)."
            )
            logger.error("humanlm reward: %s", self.stopped)
            self.report()
        raise JudgeUnavailableError(self.stopped)

    def _count(self, state: str, judged: _Judged, *, valid: bool) -> None:
        """Accumulate per-state means for the periodic report (verl logs no train extras)."""
        period = self._period
        period["samples"] += 1
        period[f"valid/{state}"] += int(valid)
        period[f"n/{state}"] += 1
        period["unscored"] += int(judged.score is None)
        if judged.score is None:
            period[f"reason/{judged.reason}"] += 1
        period["incomplete"] += int(not judged.complete)
        if judged.score is not None:
            period[f"scored/{state}"] += 1
            period[f"sum/{state}"] += judged.score
        if time.monotonic() - self._last_report >= _REPORT_EVERY_S:
            self.report()

    def report(self) -> dict[str, float]:
        """Log (and with ``ledger_dir``, write) the metrics since the last report; reset them."""
        period, self._period = self._period, defaultdict(float)
        self._last_report = time.monotonic()
        n = period["samples"]
        if not n:
            return {}
        metrics: dict[str, float] = {
            "samples": n,
            "judge/unscored_frac": period["unscored"] / n,
            "group/incomplete_frac": period["incomplete"] / n,
        }
        for key in sorted(k for k in period if k.startswith("reason/")):
            metrics[f"judge/unscored/{key.removeprefix('reason/')}"] = period[key]
        for s in STATE_NAMES:
            if period[f"n/{s}"]:
                metrics[f"valid_format/{s}"] = period[f"valid/{s}"] / period[f"n/{s}"]
            if period[f"scored/{s}"]:
                metrics[f"state_reward/{s}"] = period[f"sum/{s}"] / period[f"scored/{s}"]
        logger.info("humanlm reward: %s", json.dumps(metrics, sort_keys=True))
        logger.info(self.judge.ledger.summary())
        if self.settings.ledger_dir:
            folder = Path(self.settings.ledger_dir)
            folder.mkdir(parents=True, exist_ok=True)
            self.judge.ledger.write(folder)
            with (folder / _METRICS_FILE).open("a", encoding="utf-8") as out:
                out.write(json.dumps({"time": time.time(), **metrics}) + "\n")
        return metrics


def _extra_info(state: str, judged: _Judged, *, valid: bool) -> dict[str, Any]:
    """The fixed set of extra keys (``EXTRA_KEYS``); per-state keys of other states are None."""
    fmt = 1.0 if valid else 0.0
    info: dict[str, Any] = {
        "judge_score": judged.score,
        "judge_failed": 1.0 if judged.score is None else 0.0,
        "judge_reason": judged.reason,
        "valid_format": fmt,
        "group_complete": 1.0 if judged.complete else 0.0,
    }
    info.update({f"state_reward/{s}": judged.score if s == state else None for s in STATE_NAMES})
    info.update({f"valid_format/{s}": fmt if s == state else None for s in STATE_NAMES})
    return info
