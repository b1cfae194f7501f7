"""Options shared by the commands that run a simulator (``serve``, ``simulate``)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["VLLMArgs"]

VLLMArgs = Annotated[
    list[str] | None,
    typer.Option(
        "--vllm-arg",
        help="vllm: engine setting KEY=VALUE, repeatable (max_model_len, enforce_eager, "
        "kv_cache_gb, gpu_memory_utilization, chunked_prefill, or any vLLM engine argument).",
    ),
]
