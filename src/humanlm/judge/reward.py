"""The GRPO reward: each rollout's own state, judged together with the rest of its group.

TRL calls the reward once per generation batch with every dataset column as a keyword argument.
Rollouts are grouped by ``(example_id, state)`` -- never by position, because a process may see
a slice of a group or groups may be interleaved -- and each group is judged in one call, all
groups concurrently. The ``data_source`` column decides the judge's Chat gate
(``humanlm.judge.group``): a rollout written as the AI assistant of a chat scores 0, and the
share of such rollouts is logged as ``judge/assistant_voice_frac``.

Example:
    >>> from functools import partial
    >>> reward = partial(state_reward, judge=build_judge(JudgeConfig("openai:gpt-5-mini")))  # doctest: +SKIP
    >>> trl.GRPOTrainer(..., reward_funcs=[reward])  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from humanlm.judge.build import Judge
from humanlm.judge.group import ASSISTANT_VOICE
from humanlm.states import get_state
from humanlm.states.parsing import cut_at_closing_tag, extract_response, parse_output

__all__ = ["completion_text", "extract_candidate", "state_reward"]

logger = logging.getLogger(__name__)


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """The text of a completion: a string as is, or the content of a message list's last turn."""
    if isinstance(completion, str):
        return completion
    if not completion:
        return ""
    content = completion[-1].get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return content or ""


def extract_candidate(text: str, state: str, *, tagged: bool = True) -> str | None:
    """The candidate a completion offers for ``state``, or ``None`` if its format is broken.

    Tagged outputs must pass the strict format check for their own state (an optional think
    block, then exactly ``<state>...</state>``); untagged outputs are the text after thinking.
    """
    if not tagged:
        return extract_response(text) or None
    parsed = parse_output(text, (state,), strict=True)
    return parsed.fields[state] if parsed.valid else None


async def state_reward(
    prompts: list[Any],
    completions: list[Any],
    *,
    example_id: list[str],
    state: list[str],
    ground_truth: list[str],
    context: list[list[dict[str, str]]],
    judge: Judge,
    data_source: list[str] | None = None,
    log_metric: Callable[[str, float], None] | None = None,
    tagged: bool = True,
    stops_at_tags: bool = False,
    **kwargs: Any,
) -> list[float | None]:
    """Score every rollout on its own state with one judge call per (example, state) group.

    Args:
        prompts: TRL's prompts (unused: the dataset columns carry what the judge needs).
        completions: strings (possibly thinking text then ``</think>`` first) or message lists.
        example_id: dataset column; rollouts of one example share it.
        state: dataset column; the state each row asks for (one of the seven names).
        ground_truth: dataset column; the real reply.
        context: dataset column; the rendered context as ``{name, content}`` dicts.
        judge: any ``Judge`` (bound with ``functools.partial``).
        data_source: dataset column; the example's source, which decides the Chat gate
            (``None``: no source, the gate applies only with ``chat_gate: on``).
        log_metric: TRL's metric logger; gets per-state means, valid-format rates, the unscored
            fraction, the Chat gate's zero fraction and ledger deltas.
        tagged: completions wrap their answer in the state's tags (``False`` for untagged
            response data: the text after thinking is the response).
        stops_at_tags: the rollouts stopped at the closing tags (vLLM ``stop``): each completion
            is cut at its first closing tag before parsing, dropping what the stopping token
            carried past the tag (``</stance><``). Rollouts without stop strings are parsed whole,
            so text written after the tag stays a format error.
        **kwargs: other columns TRL passes (``trainer_state``, ``completion_ids``, ...).

    Returns:
        One reward per completion, in order: a float in [0, 1], or ``None`` when the judge could
        not score (TRL leaves it out of the group baseline).
    """
    n = len(completions)
    sources: Sequence[str | None] = data_source if data_source is not None else [None] * n
    for name, column in (
        ("example_id", example_id),
        ("state", state),
        ("ground_truth", ground_truth),
        ("context", context),
        ("data_source", sources),
    ):
        if len(column) != n:
            raise ValueError(
                f"state_reward: column {name} has {len(column)} rows for {n} completions"
            )
    for s in set(state):
        get_state(s)
    texts = [completion_text(c) for c in completions]
    if stops_at_tags:
        texts = [cut_at_closing_tag(t) for t in texts]
    candidates = [extract_candidate(t, s, tagged=tagged) for t, s in zip(texts, state, strict=True)]
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(map(str, example_id), state, strict=True)):
        groups.setdefault(key, []).append(i)

    before = judge.ledger.snapshot()
    keys = list(groups)
    verdicts = await asyncio.gather(
        *(
            judge.judge_group(
                context=context[rows[0]],
                ground_truth=ground_truth[rows[0]],
                state=key[1],
                candidates=[candidates[i] for i in rows],
                source=sources[rows[0]],
            )
            for key, rows in ((k, groups[k]) for k in keys)
        )
    )
    rewards: list[float | None] = [None] * n
    reasons: Counter[str] = Counter()
    gated = 0
    for key, verdict in zip(keys, verdicts, strict=True):
        for i, v in zip(groups[key], verdict.verdicts, strict=True):
            rewards[i] = v.score
            gated += v.reason == ASSISTANT_VOICE
            if v.score is None:
                reasons[v.reason] += 1
    unscored = sum(reasons.values())
    judge.ledger.record_batch(samples=n, unscored=unscored, reasons=reasons)
    if unscored:
        logger.warning("state_reward: %d of %d rollouts unscored (%s)", unscored, n, dict(reasons))
    if gated:
        logger.info("state_reward: %d of %d rollouts written as the assistant (0)", gated, n)
    if log_metric is not None:
        _log(log_metric, state, candidates, rewards, before, judge)
        if any(judge.gates(s) for s in set(sources)):
            log_metric("judge/assistant_voice_frac", gated / n if n else 0.0)
    return rewards


def _log(
    log_metric: Callable[[str, float], None],
    state: Sequence[str],
    candidates: Sequence[str | None],
    rewards: Sequence[float | None],
    before: Mapping[str, int],
    judge: Judge,
) -> None:
    """Per-state reward means (scored rows only: no zero-filling) and judge health."""
    for s in sorted(set(state)):
        rows = [i for i, st in enumerate(state) if st == s]
        scored = [rewards[i] for i in rows if rewards[i] is not None]
        if scored:
            log_metric(f"state_reward/{s}", sum(scored) / len(scored))
        log_metric(f"valid_format/{s}", sum(candidates[i] is not None for i in rows) / len(rows))
    n = len(rewards)
    log_metric("judge/unscored_frac", sum(r is None for r in rewards) / n if n else 0.0)
    after = judge.ledger.snapshot()
    for name in ("calls", "cache_hits", "input_tokens", "output_tokens"):
        log_metric(f"judge/{name}", float(after[name] - before[name]))
