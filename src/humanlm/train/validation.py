"""Validation during training: generate on the val split with the current policy, judge the response.

Every ``val_every`` optimizer steps, the response prompt of up to ``val_limit`` validation examples
is sampled at temperature 0.4 (as in evaluation), parsed strictly, and scored by the
eval judge with one candidate per example (a broken format is a real 0, an unscored example is
left out). The mean per dataset goes into ``metrics.jsonl`` as ``val/<dataset>/response`` on the
0-1 scale: one metric, never a sum of several.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from humanlm.judge.reward import extract_candidate
from humanlm.states import RESPONSE, get_state_set
from humanlm.states.examples import judge_context, render_prompt

__all__ = ["ValidationCallback", "validate_responses"]

logger = logging.getLogger(__name__)


def _generate(model: Any, tokenizer: Any, prompts: list[str], *, max_new_tokens: int) -> list[str]:
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(model.device) for k, v in enc.items()}
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=True,
                temperature=0.4,
                pad_token_id=tokenizer.pad_token_id,
            )
    finally:
        tokenizer.padding_side = side
    width = enc["input_ids"].shape[1]
    return [tokenizer.decode(row[width:], skip_special_tokens=True) for row in out]


def validate_responses(
    examples: Sequence[Mapping[str, Any]],
    *,
    model: Any,
    tokenizer: Any,
    judge: Any,
    state_set: str,
    thinking: bool,
    max_new_tokens: int,
    batch_size: int = 8,
) -> dict[str, float]:
    """Mean response-alignment score per dataset (``val/<dataset>/response``) of ``examples``."""
    tagged = get_state_set(state_set).tagged
    texts: list[str] = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        prompts = [
            render_prompt(ex, RESPONSE, state_set=state_set, thinking=thinking) for ex in batch
        ]
        texts += _generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens)

    async def _judge_all() -> list[Any]:
        return await asyncio.gather(
            *(
                judge.judge_group(
                    context=judge_context(ex),
                    ground_truth=ex["ground_truth"],
                    state=RESPONSE,
                    candidates=[extract_candidate(text, RESPONSE, tagged=tagged)],
                )
                for ex, text in zip(examples, texts, strict=True)
            )
        )

    scores: dict[str, list[float]] = defaultdict(list)
    for ex, verdict in zip(examples, asyncio.run(_judge_all()), strict=True):
        score = verdict.scores[0]
        if score is not None:
            scores[ex["data_source"]].append(score)
    return {f"val/{ds}/response": sum(v) / len(v) for ds, v in scores.items() if v}


class ValidationCallback(TrainerCallback):
    """Run ``validate_responses`` every ``every`` steps and append the result to ``metrics.jsonl``."""

    def __init__(self, *, every: int, metrics_path: Path, **validate_kwargs: Any):
        self.every = every
        self.metrics_path = Path(metrics_path)
        self.kwargs = validate_kwargs

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any):
        if not state.is_world_process_zero or state.global_step % self.every:
            return control
        was_training = model.training
        model.eval()
        try:
            result = validate_responses(model=model, **self.kwargs)
        finally:
            model.train(was_training)
        logger.info("validation at step %d: %s", state.global_step, result)
        with self.metrics_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"phase": "val", "step": state.global_step, **result}) + "\n")
        return control
