"""Judge results as data: one ``Verdict`` per candidate, grouped per judge call.

A verdict is *scored* (``score`` is a float in [0, 1]) or *unscored* (``score is None``) with the
reason why. Unscored is never turned into 0: a judge that failed says nothing about the candidate.
A candidate that breaks the simulator's output format is different: it scores 0 on purpose
(reason ``bad_format``), since that is the simulator's fault.

Reasons:

- scored: ``ok`` (judged), ``bad_format`` (empty or strictly invalid, 0 without a call),
  ``exact_copy`` (identical to the real reply, scored without a call), ``end_mismatch`` (the end
  signal where the real user went on, or the reverse: 0 without a call), ``assistant_voice``
  (the Chat gate: written from the AI assistant's side instead of the human user's, 0 whatever
  its alignment; ``humanlm.judge.group``), ``cached`` is not a reason: see
  ``GroupVerdict.cached``;
- unscored (group level, after retries): ``transport_error`` (429, 5xx, connection errors),
  ``timeout`` (no answer before the deadline), ``empty`` (empty reply), ``parse_failure`` (no
  usable JSON), ``wrong_count`` (candidate numbers or state names missing or extra),
  ``off_scale`` (a score outside [0, 1] beyond a 0.05 rounding slack; never clipped), ``rejected`` (the server refused the request, 4xx).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "FAILURE_REASONS",
    "SCORED_REASONS",
    "AspectVerdict",
    "GroupVerdict",
    "Verdict",
]

SCORED_REASONS = ("ok", "bad_format", "exact_copy", "end_mismatch", "assistant_voice")
FAILURE_REASONS = (
    "transport_error",
    "timeout",
    "empty",
    "parse_failure",
    "wrong_count",
    "off_scale",
    "rejected",
)


@dataclass(frozen=True)
class Verdict:
    """One judge decision about one candidate.

    Attributes:
        score: the score in [0, 1], or ``None`` when the judge could not score.
        reason: why this score (see the module docstring).
        judge_model: the judge spec that produced it (``openai:gpt-5-mini``).
        prompt_version: version of the prompt (or similarity method) used.
        thought: the judge's short justification, when it gave one.
        prompt: the prompt sent (shared by every verdict of a call); ``None`` without a call.
        raw: the judge's raw reply (last attempt); ``None`` without a reply.
    """

    score: float | None
    reason: str
    judge_model: str
    prompt_version: str
    thought: str | None = None
    prompt: str | None = field(default=None, repr=False)
    raw: str | None = field(default=None, repr=False)

    @property
    def is_scored(self) -> bool:
        return self.score is not None


@dataclass(frozen=True)
class GroupVerdict:
    """The verdicts of one (example, state) group, in the order the candidates were given.

    Attributes:
        verdicts: one ``Verdict`` per candidate (duplicates share their judgement).
        reason: ``ok``; a failure reason when the judge call failed after its retries (then the
            judged candidates are unscored); ``bad_format`` when no candidate was usable.
        key_points: key points of the real reply the judge extracted (may be empty).
        cached: the judgement came from the on-disk cache.
        calls: requests sent for this group (0 for cache hits and groups decided without a call).
        detail: for a reply that could not be read (``parse_failure``, ``wrong_count``,
            ``off_scale``), what was wrong with it (``duplicate key 'score'``), short.
    """

    verdicts: tuple[Verdict, ...]
    reason: str
    key_points: tuple[str, ...] = ()
    cached: bool = False
    calls: int = 0
    detail: str | None = None

    @property
    def scores(self) -> list[float | None]:
        """Per-candidate scores; ``None`` where unscored."""
        return [v.score for v in self.verdicts]

    @property
    def reasons(self) -> list[str]:
        """Per-candidate reasons."""
        return [v.reason for v in self.verdicts]

    @property
    def is_scored(self) -> bool:
        """Every candidate has a score."""
        return all(v.score is not None for v in self.verdicts)


@dataclass(frozen=True)
class AspectVerdict:
    """One response scored on several states in one call.

    Attributes:
        verdicts: state name -> ``Verdict``.
        reason: ``ok``, ``bad_format`` (empty response: every state 0), ``exact_copy`` (the
            response equals the real reply: every state 1), ``assistant_voice`` (the Chat gate
            found the response written as the assistant: every state 0), or a failure reason
            (all unscored).
        cached: the judgement came from the on-disk cache.
        calls: requests sent.
        detail: as for ``GroupVerdict``.
    """

    verdicts: Mapping[str, Verdict]
    reason: str
    cached: bool = False
    calls: int = 0
    detail: str | None = None

    @property
    def scores(self) -> dict[str, float | None]:
        """State name -> score (``None`` where unscored)."""
        return {name: v.score for name, v in self.verdicts.items()}

    @property
    def is_scored(self) -> bool:
        return all(v.score is not None for v in self.verdicts.values())
