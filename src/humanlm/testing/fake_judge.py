"""An in-process ``Judge`` for tests that need a judge but not HTTP (trainer smoke tests).

It applies the real economy rules (empty -> 0, exact copy, duplicates once) and the Chat gate
(``chat_gate`` and the group's data source; ``voice`` answers it), scores the rest with a plain
function, and records every group it was asked about.

Example:
    >>> judge = FakeJudge(lambda candidate, truth, state: 0.5)
    >>> reward = functools.partial(state_reward, judge=judge)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from humanlm.judge.group import finish_group, gate_applies, plan_group
from humanlm.judge.verdict import AspectVerdict, GroupVerdict, Verdict
from humanlm.llm.ledger import Ledger
from humanlm.states import LATENT_STATES
from humanlm.testing.judge_replies import sounds_like_assistant

__all__ = ["FakeJudge", "JudgedGroup"]

ScoreFn = Callable[[str, str, str], "float | None"]


@dataclass(frozen=True)
class JudgedGroup:
    """One call the fake judge received: the state, the real reply, the distinct candidates and
    whether the Chat gate judged them."""

    state: str
    ground_truth: str
    candidates: tuple[str, ...]
    gated: bool = False


class FakeJudge:
    """A ``Judge`` whose scores come from ``score(candidate, ground_truth, state)``.

    A ``None`` from ``score`` makes the whole group unscored with reason ``parse_failure``, as a
    failed real judge would. Where the Chat gate applies, ``voice(candidate)`` says whether a
    candidate is written as the assistant (default: its stock phrases,
    ``humanlm.testing.judge_replies.sounds_like_assistant``).
    """

    name = "fake"
    prompt_version = "fake-v1"

    def __init__(
        self,
        score: ScoreFn | float = 0.5,
        *,
        voice: Callable[[str], bool] = sounds_like_assistant,
        chat_gate: str = "auto",
    ):
        gate_applies(chat_gate, None)
        self.score: ScoreFn = score if callable(score) else (lambda c, t, s, v=score: v)
        self.voice = voice
        self.chat_gate = chat_gate
        self.ledger = Ledger(model="fake")
        self.groups: list[JudgedGroup] = []

    def gates(self, source: str | None) -> bool:
        return gate_applies(self.chat_gate, source)

    async def judge_group(
        self,
        *,
        context: Sequence[Mapping[str, object]],
        ground_truth: str,
        state: str,
        candidates: Sequence[str | None],
        use_cache: bool = True,
        source: str | None = None,
    ) -> GroupVerdict:
        plan = plan_group(candidates, ground_truth, state=state)
        self.ledger.groups += 1
        if not plan.unique:
            self.ledger.no_call += 1
            return finish_group(
                plan, scores=None, failure=None, judge_model=self.name, prompt_version="fake-v1"
            )
        gate = self.gates(source)
        self.groups.append(JudgedGroup(state, ground_truth, plan.unique, gate))
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
            assistant_voice=[self.voice(c) for c in plan.unique] if gate and not failed else (),
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
