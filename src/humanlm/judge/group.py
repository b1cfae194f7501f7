"""Economy rules of a group judgement, shared by every judge backend.

Before a call: empty candidates score 0 (``bad_format``), exact copies of the real reply are set
aside (response state only), identical candidates are merged, and only the distinct rest is
numbered and sent. The end signal (``humanlm.states.ending``) is scored exactly, without a call:
ending when the real user ended is an exact copy, and ending when they did not, or not ending
when they did, scores 0 (``end_mismatch``). After the call the scores are mapped back to every
original position, and exact copies get ``min(1, best + 0.1)`` (1.0 when nothing else was
judged).

The copy bonus is for the response alone, as in the paper's reference: a latent state (stance,
emotion, ...) that happens to repeat the real reply word for word is judged like any other.

The Chat gate: in a chat with an AI assistant the simulator plays the human user, and a
simulator that slips into the assistant's role (answering, helping, explaining, hedging
neutrally) has failed whatever its wording shares with the real reply. Where the gate applies
(``gate_applies``: the judge's ``chat_gate`` setting and the example's data source), the same
judge call also says per candidate whether it is written from the assistant's side; such a
candidate scores 0 with reason ``assistant_voice``, a scored reason counted on its own, never an
unscored one. Candidates settled without a call (empty, end signal, exact copy of the real
user's reply) are not gated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from humanlm.config import CHAT_GATES
from humanlm.judge.verdict import GroupVerdict, Verdict
from humanlm.states.ending import is_end_signal
from humanlm.states.prompts import CHAT_SOURCES
from humanlm.states.registry import RESPONSE

__all__ = [
    "ASSISTANT_VOICE",
    "CHAT_GATE_SOURCES",
    "COPY_BONUS",
    "GroupPlan",
    "finish_group",
    "gate_applies",
    "plan_group",
]

# An exact copy of the real reply beats the best judged candidate by this much (capped at 1).
COPY_BONUS = 0.1
# Data sources whose conversations are chats with an AI assistant: ``chat_gate: auto`` gates them.
CHAT_GATE_SOURCES = CHAT_SOURCES
# The reason of a candidate the Chat gate set to 0.
ASSISTANT_VOICE = "assistant_voice"


def gate_applies(setting: str, source: str | None) -> bool:
    """Whether the Chat gate judges an example from ``source`` under the ``chat_gate`` setting.

    Raises:
        ValueError: ``setting`` is not ``auto``, ``on`` or ``off``.
    """
    if setting not in CHAT_GATES:
        raise ValueError(f"chat_gate must be one of {', '.join(CHAT_GATES)}, got {setting!r}")
    return setting == "on" or (setting == "auto" and source in CHAT_GATE_SOURCES)


def _normal(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class GroupPlan:
    """What to send for one group and how to map the answer back.

    Attributes:
        unique: distinct judgeable candidates, in order of first appearance; they are shown to
            the judge as numbers 1..len(unique).
        slots: per original candidate, ``("judge", i)`` (index into ``unique``), ``("empty", -1)``,
            ``("copy", -1)`` or ``("end_mismatch", -1)``.
    """

    unique: tuple[str, ...]
    slots: tuple[tuple[str, int], ...]


def plan_group(
    candidates: Sequence[str | None], ground_truth: str, *, state: str = RESPONSE
) -> GroupPlan:
    """Sort candidates into empty, exact copies of ``ground_truth`` and distinct judgeable ones.

    Candidates are compared after trimming and collapsing whitespace (a trailing newline does not
    make a new candidate); the first spelling of each is the one the judge sees. Exact copies are
    set aside only when ``state`` is the response; for a latent state they are judged.
    """
    truth_ended = is_end_signal(_normal(ground_truth))
    truth = _normal(ground_truth) if state == RESPONSE else ""
    unique: list[str] = []
    index: dict[str, int] = {}
    slots: list[tuple[str, int]] = []
    for candidate in candidates:
        key = _normal(candidate or "")
        if not key:
            slots.append(("empty", -1))
        elif is_end_signal(key) != truth_ended:
            slots.append(("end_mismatch", -1))
        elif truth and key == truth:
            slots.append(("copy", -1))
        else:
            if key not in index:
                index[key] = len(unique)
                unique.append((candidate or "").strip())
            slots.append(("judge", index[key]))
    return GroupPlan(tuple(unique), tuple(slots))


def finish_group(
    plan: GroupPlan,
    *,
    scores: Sequence[float] | None,
    failure: str | None,
    judge_model: str,
    prompt_version: str,
    thoughts: Sequence[str | None] = (),
    key_points: Sequence[str] = (),
    prompt: str | None = None,
    raw: str | None = None,
    cached: bool = False,
    calls: int = 0,
    copy_score: float | None = None,
    assistant_voice: Sequence[bool] = (),
    detail: str | None = None,
) -> GroupVerdict:
    """Map the scores of ``plan.unique`` back to every original candidate.

    Args:
        plan: the plan the call was made from.
        scores: one score per ``plan.unique`` entry, or ``None`` when the call failed (or none
            was needed because nothing was judgeable).
        failure: the failure reason when the call failed, else ``None``.
        judge_model, prompt_version, thoughts, key_points, prompt, raw, cached, calls: recorded
            in the verdicts.
        copy_score: a fixed score for exact copies instead of ``min(1, best + 0.1)`` (the
            embedding judge gives them their true similarity, 1.0).
        assistant_voice: the Chat gate's answer per ``plan.unique`` entry (empty: not gated);
            a ``True`` entry scores 0 with reason ``assistant_voice``, its thought kept.
        detail: what was wrong with a reply that could not be read (kept with ``failure``).
    """
    assert scores is None or len(scores) == len(plan.unique)
    assert not assistant_voice or len(assistant_voice) == len(plan.unique)
    if failure is None and plan.unique and scores is None:
        raise ValueError("scores are required when candidates were judged and nothing failed")
    if scores is not None and assistant_voice:
        pairs = zip(scores, assistant_voice, strict=True)
        scores = [0.0 if voice else score for score, voice in pairs]
    best = max(scores) if scores else None
    if failure:
        copy_score = None
    elif copy_score is None:
        copy_score = min(1.0, best + COPY_BONUS) if best is not None else 1.0
    verdicts = []
    for kind, i in plan.slots:
        if kind == "empty":
            score, reason, thought = 0.0, "bad_format", None
        elif kind == "end_mismatch":
            score, reason, thought = 0.0, "end_mismatch", None
        elif kind == "copy":
            score, reason, thought = copy_score, failure or "exact_copy", None
        else:
            score = None if failure or scores is None else scores[i]
            gated = not failure and i < len(assistant_voice) and assistant_voice[i]
            reason = failure or (ASSISTANT_VOICE if gated else "ok")
            thought = thoughts[i] if i < len(thoughts) else None
        verdicts.append(
            Verdict(
                score=score,
                reason=reason,
                judge_model=judge_model,
                prompt_version=prompt_version,
                thought=thought,
                prompt=prompt,
                raw=raw,
            )
        )
    if failure:
        reason = failure
    elif plan.slots and all(kind == "empty" for kind, _ in plan.slots):
        reason = "bad_format"
    else:
        reason = "ok"
    return GroupVerdict(
        tuple(verdicts),
        reason,
        tuple(key_points),
        cached=cached,
        calls=calls,
        detail=detail if failure else None,
    )
