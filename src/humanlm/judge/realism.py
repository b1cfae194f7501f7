"""The realism reward of GRPO: how often a detector fails to tell the real reply from a rollout.

A detector sees pairs (the real reply, a generated one, the context) and says, per pair, how
often it took the generated reply for the human's: 1 = always fooled, 0 = never. That share is
the reward of the rollout, weighed against the state reward by ``realism.weight`` (TRL's
``reward_weights``). Two detectors satisfy ``Detector``:

- ``JudgeDetector``: an LLM judge asked the pairwise question of ``humanlm.judge.detect``, once in
  each order (the real reply as ``A``, then as ``B``), so a judge that prefers one position
  gives 0.5 instead of a reward that follows the coin;
- ``humanlm.population.detect.StyleDetector``: an offline logistic regression on style
  features, fit on the batch itself with grouped folds.

Two guards come first, as a detector can be fooled cheaply: a reply much longer than the real
one (``too_long``) and a reply that repeats a long span of the context the real reply does not
repeat (``copied_span``) get 0 without asking the detector. Only rows of the ``response`` state
are rewarded; other states (and end signals, which the state reward scores exactly) get
``None``, which TRL leaves out of the weighted sum.

Example:
    >>> reward = partial(realism_reward, detector=JudgeDetector(build_judge(cfg.realism.judge)))
    ...  # doctest: +SKIP
    >>> trl.GRPOTrainer(..., reward_funcs=[state, reward], args=GRPOConfig(reward_weights=[1, .5]))
    ...  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from humanlm.judge.detect import DETECT_PROMPT_VERSION, build_detect_prompt, parse_pick
from humanlm.judge.reward import completion_text, extract_candidate
from humanlm.states.ending import is_end_signal
from humanlm.states.parsing import cut_at_closing_tag
from humanlm.states.registry import RESPONSE

__all__ = [
    "DetectPair",
    "Detector",
    "JudgeDetector",
    "copied_span",
    "realism_reward",
    "too_long",
]

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\w+(?:'\w+)?")


class DetectPair(NamedTuple):
    """One question for a detector: which of ``real`` and ``generated`` did a human write?

    ``group`` names the example: a detector that learns from the batch keeps pairs of one
    example out of the folds that judge them.
    """

    group: str
    context: Sequence[Mapping[str, object]]
    real: str
    generated: str


class Detector(Protocol):
    """Tells real replies from generated ones; ``fooled`` -> per pair, the share of its answers
    that took the generated reply for the human's, or ``None`` where it could not answer."""

    name: str

    async def fooled(self, pairs: Sequence[DetectPair]) -> list[float | None]: ...

    async def aclose(self) -> None: ...


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def copied_span(text: str, sources: Sequence[str], *, words: int, allowed: str = "") -> str | None:
    """The first run of ``words`` or more consecutive words of ``text`` found in ``sources``.

    Words are compared lower-cased without punctuation. A run that ``allowed`` also contains
    does not count (the real reply quoting the post permits the same quote).

    Returns:
        The copied words joined by spaces, or ``None``.
    """
    own = _words(text)
    if len(own) < words:
        return None
    seen = {
        tuple(w[i : i + words]) for w in map(_words, sources) for i in range(len(w) - words + 1)
    }
    quoted = _words(allowed)
    permitted = {tuple(quoted[i : i + words]) for i in range(len(quoted) - words + 1)}
    copied = [
        tuple(own[i : i + words]) in seen and tuple(own[i : i + words]) not in permitted
        for i in range(len(own) - words + 1)
    ]
    if True not in copied:
        return None
    start = end = copied.index(True)
    while end + 1 < len(copied) and copied[end + 1]:  # overlapping runs: one longer copy
        end += 1
    return " ".join(own[start : end + words])


def too_long(text: str, real: str, *, ratio: float, floor_words: int) -> bool:
    """Whether ``text`` has more than ``ratio`` times the real reply's words (and more than
    ``floor_words``)."""
    count = len(text.split())
    return count > floor_words and count > ratio * len(real.split())


class JudgeDetector:
    """An LLM judge as the detector: the pairwise question in both orders, concurrently.

    Identical pairs in one batch are asked once. The judge's cache, retries and ledger apply
    (``LLMJudge.ask``); an order whose reply stays unreadable is left out of the share, and a
    pair with neither order answered is ``None``.

    Args:
        judge: an ``LLMJudge`` (``build_judge`` of an ``openai:`` or ``litellm:`` spec).
    """

    def __init__(self, judge: Any):
        self.judge = judge
        self.name = judge.name
        self.ledger = judge.ledger

    async def fooled(self, pairs: Sequence[DetectPair]) -> list[float | None]:
        keys = [(p.group, p.generated) for p in pairs]
        first = {key: pair for key, pair in zip(keys, pairs, strict=True)}
        shares = await asyncio.gather(*(self._ask(pair) for pair in first.values()))
        found = dict(zip(first, shares, strict=True))
        return [found[key] for key in keys]

    async def _ask(self, pair: DetectPair) -> float | None:
        orders = (("A", pair.real, pair.generated), ("B", pair.generated, pair.real))
        outcomes = await asyncio.gather(
            *(
                self.judge.ask(
                    build_detect_prompt(context=pair.context, a=a, b=b),
                    version=DETECT_PROMPT_VERSION,
                    parse=parse_pick,
                )
                for _, a, b in orders
            )
        )
        picks = [
            (human, next(iter(o.parsed.scores)))
            for (human, _, _), o in zip(orders, outcomes, strict=True)
            if o.parsed is not None
        ]
        return sum(pick != human for human, pick in picks) / len(picks) if picks else None

    async def aclose(self) -> None:
        await self.judge.aclose()


async def realism_reward(
    prompts: list[Any],
    completions: list[Any],
    *,
    example_id: list[str],
    state: list[str],
    ground_truth: list[str],
    context: list[list[dict[str, str]]],
    detector: Detector,
    max_length_ratio: float,
    length_floor_words: int,
    copy_span_words: int,
    tagged: bool = True,
    stops_at_tags: bool = False,
    log_metric: Callable[[str, float], None] | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """How often ``detector`` takes each response rollout for the real reply (TRL contract).

    Args:
        prompts: TRL's prompts (unused: the dataset columns carry what is needed).
        completions: strings or message lists, as for ``state_reward``.
        example_id, state, ground_truth, context: dataset columns (``build_grpo_dataset``).
        detector: any ``Detector`` (bound with ``functools.partial``).
        max_length_ratio, length_floor_words: the length guard (``too_long``).
        copy_span_words: the copy guard (``copied_span``).
        tagged, stops_at_tags: how to read a completion, as for ``state_reward``.
        log_metric: TRL's metric logger; gets ``realism/mean`` (scored rows), the guards'
            shares and the unscored share of the response rows.
        **kwargs: other columns TRL passes.

    Returns:
        Per completion: a float in [0, 1] for a response row (0 for a broken format or a
        guard), ``None`` for another state, an end signal on either side, or no answer.
    """
    n = len(completions)
    for name, column in (
        ("example_id", example_id),
        ("state", state),
        ("ground_truth", ground_truth),
        ("context", context),
    ):
        if len(column) != n:
            raise ValueError(
                f"realism_reward: column {name} has {len(column)} rows for {n} completions"
            )
    rewards: list[float | None] = [None] * n
    asked: list[int] = []
    pairs: list[DetectPair] = []
    counts = {"rows": 0, "length": 0, "copy": 0}
    for i, completion in enumerate(completions):
        real = ground_truth[i]
        if state[i] != RESPONSE or is_end_signal(real):
            continue
        text = completion_text(completion)
        text = cut_at_closing_tag(text) if stops_at_tags else text
        candidate = (extract_candidate(text, RESPONSE, tagged=tagged) or "").strip()
        if is_end_signal(candidate):
            continue
        counts["rows"] += 1
        sources = [str(m.get("content", "")) for m in context[i]]
        if not candidate:
            rewards[i] = 0.0
        elif too_long(candidate, real, ratio=max_length_ratio, floor_words=length_floor_words):
            rewards[i] = 0.0
            counts["length"] += 1
        elif copied_span(candidate, sources, words=copy_span_words, allowed=real):
            rewards[i] = 0.0
            counts["copy"] += 1
        else:
            asked.append(i)
            pairs.append(DetectPair(str(example_id[i]), context[i], real, candidate))
    if pairs:
        for i, share in zip(asked, await detector.fooled(pairs), strict=True):
            rewards[i] = share
    unscored = sum(rewards[i] is None for i in asked)
    if unscored:
        logger.warning(
            "realism_reward: %s left %d of %d pairs unanswered", detector.name, unscored, len(asked)
        )
    if log_metric is not None and counts["rows"]:
        rows = counts["rows"]
        scored = [r for i, r in enumerate(rewards) if r is not None and state[i] == RESPONSE]
        if scored:
            log_metric("realism/mean", sum(scored) / len(scored))
        log_metric("realism/length_guard_frac", counts["length"] / rows)
        log_metric("realism/copy_guard_frac", counts["copy"] / rows)
        log_metric("realism/unscored_frac", unscored / rows)
    return rewards
