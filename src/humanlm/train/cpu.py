"""CPU speed-up for TRL's fused LM head: score only the positions that have a label.

TRL projects hidden states onto the vocabulary in tiles and, on devices without Triton, scores
*every* position (to keep tile shapes fixed for compilers such as Neuron's). On a CPU that
means projecting each prompt token onto 152k vocabulary entries although only the completion
tokens are scored: for our demo prompts (~700 tokens) and completions (~20 tokens) this is
about 30x the needed work and dominates a GRPO or SFT step. Scoring only the labelled positions
("compact" mode, the path TRL takes on GPUs) gives the same log-probabilities.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

__all__ = ["enable_compact_lm_head_on_cpu"]

logger = logging.getLogger(__name__)


def enable_compact_lm_head_on_cpu() -> bool:
    """Make TRL's fused LM head use its compact path on CPU tensors too. Returns True if patched.

    Idempotent. Only the compact/full choice in ``trl.trainer.utils`` changes; the kernels keep
    choosing Triton or plain torch by themselves.
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:
        return False
    original = getattr(trl_utils, "_use_triton", None)
    if original is None or getattr(original, "_humanlm_patched", False):
        return original is not None

    @functools.wraps(original)
    def _compact_on_cpu(device: Any) -> bool:
        return original(device) or getattr(device, "type", None) == "cpu"

    _compact_on_cpu._humanlm_patched = True  # type: ignore[attr-defined]
    trl_utils._use_triton = _compact_on_cpu
    logger.debug("TRL fused LM head: compact scoring enabled on CPU")
    return True
