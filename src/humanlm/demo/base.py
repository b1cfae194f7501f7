"""Build the shipped demo base: the demo tokenizer and a small model warmed up on the demo world.

``scripts/build_demo_base.py`` calls ``build_demo_base`` on the enlarged demo world (the train
posts plus extra posts from the world's templates, no val or test post) and writes the result
into the package (``humanlm.model.demo_base.demo_base_dir()``). The warm-up is the demo's usual
one (targets swapped between writers of a post, so the base learns the world's language and every
output format but not who writes what), with the untagged format of SFT added, so every method of
the demo starts from a base that already speaks its format.

Everything runs on one torch thread with fixed seeds, so a rebuild gives the same loss curve;
the marker file ``demo_base.json`` records it with the sizes and the data's fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from humanlm.files import apply_umask, write_json
from humanlm.states import augment_states
from humanlm.states.examples import render_prompt
from humanlm.train.data import sft_target
from humanlm.train.warmup import build_warmup_dataset, run_warmup

__all__ = ["BASE_FORMATS", "BASE_MARKER", "DEFAULT_SETTINGS", "build_demo_base", "tokenizer_texts"]

logger = logging.getLogger(__name__)

BASE_MARKER = "demo_base.json"
# The warm-up formats of the base: the six states, the response after a thinking block (HumanLM
# and GRPO), and the untagged reply (SFT), so SFT does not start from a format it never saw.
BASE_FORMATS: tuple[tuple[str, bool], ...] = (("sebvgcr", True), ("r", True), ("r_no_tag", False))
# Every (state set, thinking) a demo prompt is rendered in: the tokenizer learns them all.
_TOKENIZER_FORMATS = (*BASE_FORMATS, ("r", False), ("think_r", True))


# The build's settings, recorded in the marker: sizes, steps and seeds.
DEFAULT_SETTINGS: dict[str, Any] = {
    "vocab_size": 2048,
    "hidden_size": 128,
    "num_layers": 2,
    "steps": 400,
    "learning_rate": 3e-3,
    "batch_size": 8,
    "seed": 0,
}


def tokenizer_texts(examples: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every prompt and target the demo renders from ``examples``, in a fixed order."""
    texts = []
    for state_set, thinking in _TOKENIZER_FORMATS:
        for ex, st in augment_states(examples, state_set=state_set, seed=0):
            texts.append(render_prompt(ex, st, state_set=state_set, thinking=thinking))
            target = sft_target(ex, st, state_set=state_set, thinking=thinking, use_trace=True)
            if target is not None:
                texts.append(target)
    return texts


def _fingerprint(examples: Sequence[Mapping[str, Any]]) -> str:
    text = json.dumps(
        [[ex["messages"], ex["persona"], ex["ground_truth"]] for ex in examples], default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_demo_base(
    out_dir: str | Path,
    examples: Sequence[Mapping[str, Any]],
    *,
    settings: Mapping[str, Any] | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train the demo tokenizer and warm a small model up on ``examples``; save both in ``out_dir``.

    Returns:
        The marker written last in ``out_dir``: the settings, parameter count, data fingerprint
        and the warm-up's loss per step.
    """
    import torch

    from humanlm.model.demo_base import build_demo_model, train_demo_tokenizer

    s = {**DEFAULT_SETTINGS, **(settings or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / BASE_MARKER).unlink(missing_ok=True)
    tokenizer = train_demo_tokenizer(tokenizer_texts(examples), vocab_size=s["vocab_size"])
    model = build_demo_model(
        tokenizer, seed=s["seed"], hidden_size=s["hidden_size"], num_layers=s["num_layers"]
    )
    dataset = build_warmup_dataset(examples, formats=BASE_FORMATS, seed=s["seed"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same rounding, so the same curve, on every machine
    try:
        losses = run_warmup(
            model=model,
            tokenizer=tokenizer,
            dataset=dataset,
            steps=s["steps"],
            learning_rate=s["learning_rate"],
            batch_size=s["batch_size"],
            seed=s["seed"],
            on_log=on_log,
            progress=progress,
        )
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    apply_umask(out)  # safetensors writes the weights 0600
    marker = {
        "settings": s,
        "parameters": sum(p.numel() for p in model.parameters()),
        "examples": len(examples),
        "data": _fingerprint(examples),
        "losses": [round(x, 6) for x in losses],
    }
    write_json(out / BASE_MARKER, marker)
    logger.info("built the demo base (%d parameters) in %s", marker["parameters"], out)
    return marker
