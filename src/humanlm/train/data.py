"""Turn prepared examples into TRL datasets: string prompts for GRPO, prompt/completion for SFT.

Prompts are rendered with our multi-role template per row (state and thinking mode included),
because GRPO has no per-row template arguments: TRL applies one set to every row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from datasets import Dataset

from humanlm.states import RESPONSE, augment_states, get_state_set, is_thinking
from humanlm.states.examples import judge_context, render_prompt
from humanlm.states.template import END_OF_TURN

__all__ = [
    "build_grpo_dataset",
    "build_sft_dataset",
    "drop_long_prompts",
    "judge_context",
    "render_prompt",
    "sft_target",
]

logger = logging.getLogger(__name__)


def _reference_states(example: Mapping[str, Any]) -> dict[str, str]:
    raw = example.get("states") or ""
    if isinstance(raw, str):
        return json.loads(raw) if raw.strip() else {}
    return dict(raw)


def sft_target(
    example: Mapping[str, Any],
    state: str,
    *,
    state_set: str,
    thinking: bool,
    use_trace: bool = True,
) -> str | None:
    """The supervised completion for one (example, state), or None when the data has no target.

    - untagged response (``r_no_tag``): the real reply;
    - response with thinking: ``<trace>\\n</think>\\n\\n<response>reply</response>`` (the prompt
      already opened ``<think>``); examples without a trace have no target;
    - tagged response without thinking: ``<response>reply</response>``;
    - a latent state: ``<state>reference</state>`` from the example's reference states.

    With ``use_trace=False`` a thinking response gets an empty think block instead of the trace
    (the format warm-up before GRPO, where the thinking is left to the policy).
    """
    spec = get_state_set(state_set)
    reply = example["ground_truth"]
    if state == RESPONSE:
        if not spec.tagged:
            body = reply
        elif is_thinking(state, thinking=thinking):
            trace = (example.get("trace") or "").strip()
            if use_trace and not trace:
                return None
            thought = f"{trace}\n" if use_trace else ""
            body = f"{thought}</think>\n\n<response>{reply}</response>"
        else:
            body = f"<response>{reply}</response>"
    else:
        value = _reference_states(example).get(state, "").strip()
        if not value:
            return None
        body = f"<{state}>{value}</{state}>"
    return body + END_OF_TURN


def take_fraction(
    examples: Sequence[Mapping[str, Any]], fraction: float, *, seed: int
) -> list[Mapping[str, Any]]:
    """A seeded random ``fraction`` of the examples, in their original order (1.0: all of them).

    The paper's runs train on subsets of the larger datasets (e.g. half of Opinion); the same
    seed picks the same subset on every rank and on resume.
    """
    if fraction >= 1.0:
        return list(examples)
    import random

    keep = max(1, round(len(examples) * fraction))
    chosen = sorted(random.Random(seed).sample(range(len(examples)), keep))
    logger.info("data.fraction %.2f: training on %d of %d examples", fraction, keep, len(examples))
    return [examples[i] for i in chosen]


def drop_long_prompts(
    examples: Sequence[Mapping[str, Any]],
    *,
    tokenizer: Any,
    max_tokens: int | None,
    state_set: str,
    thinking: bool,
) -> list[Mapping[str, Any]]:
    """Keep examples whose longest per-state prompt fits in ``max_tokens`` (TRL never truncates)."""
    if not max_tokens:
        return list(examples)
    states = get_state_set(state_set).states
    kept = []
    for ex in examples:
        longest = max(
            len(
                tokenizer(render_prompt(ex, st, state_set=state_set, thinking=thinking))[
                    "input_ids"
                ]
            )
            for st in states
        )
        if longest <= max_tokens:
            kept.append(ex)
    if len(kept) < len(examples):
        logger.info(
            "dropped %d examples longer than %d prompt tokens",
            len(examples) - len(kept),
            max_tokens,
        )
    return kept


def build_grpo_dataset(
    examples: Sequence[Mapping[str, Any]], *, state_set: str, thinking: bool, seed: int = 0
) -> Dataset:
    """One row per (example, state), shuffled across states, with the reward's columns.

    Columns: ``prompt`` (rendered text), ``example_id``, ``state``, ``ground_truth``,
    ``context`` (``{name, content}`` list), ``data_source``.
    """
    rows = [
        {
            "prompt": render_prompt(ex, st, state_set=state_set, thinking=thinking),
            "example_id": ex["example_id"],
            "state": st,
            "ground_truth": ex["ground_truth"],
            "context": judge_context(ex),
            "data_source": ex["data_source"],
        }
        for ex, st in augment_states(examples, state_set=state_set, seed=seed)
    ]
    return Dataset.from_list(rows)


def build_sft_dataset(
    examples: Sequence[Mapping[str, Any]],
    *,
    state_set: str,
    thinking: bool,
    seed: int = 0,
    use_trace: bool = True,
) -> Dataset:
    """Prompt/completion rows for SFT (loss on the completion only); rows without a target are skipped."""
    rows = []
    for ex, st in augment_states(examples, state_set=state_set, seed=seed):
        target = sft_target(ex, st, state_set=state_set, thinking=thinking, use_trace=use_trace)
        if target is not None:
            rows.append(
                {
                    "prompt": render_prompt(ex, st, state_set=state_set, thinking=thinking),
                    "completion": target,
                    "state": st,
                }
            )
    if not rows:
        from humanlm.errors import DataError

        raise DataError(
            f"no SFT targets for state set {state_set!r}: the data lacks the needed "
            "columns (reference 'states' for latent states, 'trace' for thinking)"
        )
    return Dataset.from_list(rows)
