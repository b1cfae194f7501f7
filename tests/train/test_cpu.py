"""The CPU compact-head switch changes the work TRL does, never the log-probabilities."""

import torch
from transformers import AutoModelForCausalLM
from trl.trainer import utils as trl_utils

from humanlm.train.cpu import enable_compact_lm_head_on_cpu


def test_compact_scoring_gives_the_same_log_probs(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trl_utils.add_fused_lm_head(model)
    ids = torch.randint(0, 1000, (2, 12))
    labels = ids.clone()
    labels[:, :8] = -100  # a prompt of 8 tokens, then 4 scored completion tokens

    original = trl_utils._use_triton
    try:
        full = model(input_ids=ids, labels=labels, fused_lm_head=True).log_probs
        assert enable_compact_lm_head_on_cpu()
        assert enable_compact_lm_head_on_cpu()  # idempotent
        compact = model(input_ids=ids, labels=labels, fused_lm_head=True).log_probs
    finally:
        trl_utils._use_triton = original
    torch.testing.assert_close(full, compact)
    assert (compact[:, :7] == 0).all() and (compact[:, 7:] != 0).all()
