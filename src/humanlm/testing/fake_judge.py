"""An in-process ``Judge`` for tests that need a judge but not HTTP (trainer smoke tests).

It applies the real economy rules (empty -> 0, exact copy, duplicates once) and scores the rest
with a plain function, recording every group it was asked about.

Example:
    >>> judge = FakeJudge(lambda candidate, truth, state: 0.5)
    >>> reward = functools.partial(state_reward, judge=judge)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from humanlm.judge.group import finish_group, plan_group
from humanlm.judge.verdict import AspectVerdict, GroupVerdict, Verdict
from humanlm.llm.ledger import Ledger
from humanlm.states import LATENT_STATES

__all__ = ["FakeJudge", "JudgedGroup"]

ScoreFn = Callable[[str, str, str], "float | None"]


@dataclass(frozen=True)
class JudgedGroup:
    """One call the fake judge received: the state, the real reply and the distinct candidates."""

    state: str
    ground_truth: str
    candidates: tuple[str, ...]


class FakeJudge:
    """A ``Judge`` whose scores come from ``score(candidate, ground_truth, state)``.

    A ``None`` from ``score`` makes the whole group unscored with reason ``parse_failure``, as a
    failed real judge would.
    """

    name = "fake"
    prompt_version = "fake-v1"

    def __init__(self, score: ScoreFn | float = 0.5):
        self.score: ScoreFn = score if callable(score) else (lambda c, t, s, v=score: v)
        self.ledger = Ledger(model="fake")
        self.groups: list[JudgedGroup] = []

    async def judge_group(
        self,
        *,
        context: Sequence[Mapping[str, object]],
        ground_truth: str,
        state: str,
        candidates: Sequence[str | None],
        use_cache: bool = True,
    ) -> GroupVerdict:
        plan = plan_group(candidates, ground_truth, state=state)
        self.ledger.groups += 1
        if not plan.unique:
            self.ledger.no_call += 1
            return finish_group(
                plan, scores=None, failure=None, judge_model=self.name, prompt_version="fake-v1"
            )
        self.groups.append(JudgedGroup(state, ground_truth, plan.unique))
        self.ledger.record_call(latency_s=0.0, input_tokens=0, output_tokens=0)
        scores = [self.score(c, ground_truth, state) for c in plan.unique]
        failed = any(s is None for s in scores)
        if failed:
            self.ledger.record_unscored("parse_failure")
        return finish_group(
            plan,
            scores=None if failed else [float(s) for s in scores if s is not None],
            failure="parse_failure" if failed else None,
            judge_model=self.name,
            prompt_version=self.prompt_version,
            calls=1,
        )

    async def judge_aspects(
        self,
        *,
        context: Sequence[Mapping[str, object]],
        ground_truth: str,
        response: str | None,
        states: Sequence[str] = LATENT_STATES,
        use_cache: bool = True,
    ) -> AspectVerdict:
        self.ledger.groups += 1
        text = (response or "").strip()
        scores = {s: (self.score(text, ground_truth, s) if text else 0.0) for s in states}
        reason = "ok" if text else "bad_format"
        if any(v is None for v in scores.values()):
            reason = "parse_failure"
        verdicts = {
            s: Verdict(v, reason, self.name, self.prompt_version) for s, v in scores.items()
        }
        return AspectVerdict(verdicts, reason, calls=int(bool(text)))

    async def aclose(self) -> None:
        return None
