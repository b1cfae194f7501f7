"""``humanlm model``: build local models for offline runs and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="""Build local models for offline runs and tests.

\b
Examples:
  humanlm model tiny --out runs/tiny-qwen3
  humanlm eval --model hf:runs/tiny-qwen3 --data demo --limit 4 --judge embedding:minilm
""",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    # A callback keeps `model` a command group even while it has a single command.
    pass


@app.command("tiny")
def tiny(
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write the model and tokenizer to.")
    ],
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the random weight initialisation.")
    ] = 0,
) -> None:
    """Build the offline tiny Qwen3: the real tokenizer and random ~10M-parameter weights.

    Needs no network; re-running with the same options reuses the existing build.
    Load it with AutoModelForCausalLM.from_pretrained(DIR) and AutoTokenizer.from_pretrained(DIR).

    \b
    Examples:
      humanlm model tiny --out runs/tiny-qwen3
      humanlm model tiny --out runs/tiny-seed1 --seed 1
    """
    from transformers import AutoModelForCausalLM

    from humanlm.model.tiny import build_tiny_model

    path = build_tiny_model(out, seed=seed)
    parameters = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())
    typer.echo(f"wrote the tiny model to {path} ({parameters:,} parameters)")
