"""Validation during training: generate on the val split with the current policy, judge the response.

Every ``val_every`` optimizer steps, the response prompt of up to ``val_limit`` validation examples
is sampled at temperature 0.4 (as in evaluation), parsed strictly, and scored by the
eval judge with one candidate per example (a broken format is a real 0, an unscored example is
left out). The mean per dataset goes into ``metrics.jsonl`` as ``val/<dataset>/response`` on the
0-1 scale: one metric, never a sum of several.

In a multi-process run every rank generates for its own share of the examples, in the same
number of ``generate`` calls (FSDP2 and ZeRO-3 need every rank in every forward pass; ``generate``
keeps the ranks in step within a call), and the scores are gathered before rank 0 writes them.
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

from humanlm.files import write_json
from humanlm.generate.protocol import GenerationSettings
from humanlm.judge.reward import extract_candidate
from humanlm.states import RESPONSE, get_state_set
from humanlm.states.examples import judge_context, render_prompt
from humanlm.train import dist

__all__ = ["BEST_FILE", "ValidationCallback", "validate_responses"]

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
                temperature=GenerationSettings().temperature,  # the evaluation's
                pad_token_id=tokenizer.pad_token_id,
            )
    finally:
        tokenizer.padding_side = side
    width = enc["input_ids"].shape[1]
    return [tokenizer.decode(row[width:], skip_special_tokens=True) for row in out]


def _shard(n: int, *, rank: int, world_size: int, batch_size: int) -> tuple[list[int], int]:
    """This rank's example indices and the number of generate calls every rank makes."""
    mine = list(range(rank, n, world_size))
    per_rank = -(-n // world_size)
    return mine, -(-per_rank // batch_size)


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
    """Mean response-alignment score per dataset (``val/<dataset>/response``) of ``examples``.

    Call it on every rank of a multi-process run; each rank returns the same result.
    """
    tagged = get_state_set(state_set).tagged
    mine, calls = _shard(
        len(examples), rank=dist.rank(), world_size=dist.world_size(), batch_size=batch_size
    )
    texts: list[str] = []
    for call in range(calls):
        batch = [examples[i] for i in mine[call * batch_size : (call + 1) * batch_size]]
        # A rank with no examples left still joins the forward passes, on a stand-in it discards.
        prompts = [
            render_prompt(ex, RESPONSE, state_set=state_set, thinking=thinking)
            for ex in batch or examples[:1]
        ]
        generated = _generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
        texts += generated if batch else []
    examples = [examples[i] for i in mine]

    async def _judge_all() -> list[Any]:
        return await asyncio.gather(
            *(
                judge.judge_group(
                    context=judge_context(ex),
                    ground_truth=ex["ground_truth"],
                    state=RESPONSE,
                    candidates=[extract_candidate(text, RESPONSE, tagged=tagged)],
                    source=ex["data_source"],
                )
                for ex, text in zip(examples, texts, strict=True)
            )
        )

    local = [
        (ex["data_source"], verdict.scores[0])
        for ex, verdict in zip(examples, asyncio.run(_judge_all()), strict=True)
    ]
    scores: dict[str, list[float]] = defaultdict(list)
    for part in dist.all_gather(local):
        for data_source, score in part:
            if score is not None:
                scores[data_source].append(score)
    return {f"val/{ds}/response": sum(v) / len(v) for ds, v in scores.items() if v}


BEST_FILE = "best_checkpoint.json"


def _saves_at(args: Any, step: int) -> bool:
    strategy = str(getattr(args, "save_strategy", "steps")).rsplit(".", 1)[-1].lower()
    every = getattr(args, "save_steps", 0)
    return strategy == "steps" and isinstance(every, int) and every > 0 and step % every == 0


class ValidationCallback(TrainerCallback):
    """Run ``validate_responses`` every ``every`` steps and append the result to ``metrics.jsonl``.

    The best validation so far (mean of the ``val/<dataset>/response`` scores) goes into
    ``best_checkpoint.json`` next to the metrics: its step, score and, when a checkpoint is saved
    at that step, the checkpoint folder to evaluate.
    """

    def __init__(self, *, every: int, metrics_path: Path, **validate_kwargs: Any):
        self.every = every
        self.metrics_path = Path(metrics_path)
        self.kwargs = validate_kwargs
        self.best: dict[str, Any] | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any):
        if state.global_step % self.every:
            return control
        was_training = model.training
        model.eval()
        try:
            result = validate_responses(model=model, **self.kwargs)
        finally:
            model.train(was_training)
        if not state.is_world_process_zero:
            return control
        logger.info("validation at step %d: %s", state.global_step, result)
        with self.metrics_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"phase": "val", "step": state.global_step, **result}) + "\n")
        self._record_best(args, state.global_step, result)
        return control

    def _record_best(self, args: Any, step: int, result: dict[str, float]) -> None:
        if not result:
            return
        score = sum(result.values()) / len(result)
        best_path = self.metrics_path.parent / BEST_FILE
        if self.best is None and best_path.is_file():  # a resumed run keeps its earlier best
            self.best = json.loads(best_path.read_text(encoding="utf-8"))
        if self.best is not None and score <= self.best["score"]:
            return
        checkpoint = f"checkpoint-{step}" if _saves_at(args, step) else None
        self.best = {
            "step": step,
            "score": score,
            "metrics": result,
            "checkpoint": str(Path(args.output_dir) / checkpoint) if checkpoint else None,
        }
        write_json(best_path, self.best)
