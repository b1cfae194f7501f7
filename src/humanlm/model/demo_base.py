"""The demo's small vocabulary and small model: a ~2k-token byte-level BPE and a Qwen3 body on it.

The tiny Qwen3 of ``humanlm.model.tiny`` keeps Qwen3's 152k-token vocabulary, so ~99% of its
parameters (and most of a CPU step) sit in the embedding and head. The demo world needs far fewer
tokens: a byte-level BPE trained on its own text with ``tokenizers`` makes warm-up and GRPO steps
several times cheaper, and being byte-level it still encodes any text exactly. The chat template's
special tokens (``<|im_start|>``, ``<|im_end|>``, ``<|endoftext|>``, ``<think>``, ``</think>``) are
kept whole, so prompts render exactly as for Qwen3.

The shipped demo base (``demo_base_dir()``) is this tokenizer and model after a warm-up on the
enlarged demo world; ``scripts/build_demo_base.py`` rebuilds it.

Example:
    >>> from humanlm.model.demo_base import demo_base_dir
    >>> AutoModelForCausalLM.from_pretrained(demo_base_dir())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from humanlm.model.tiny import HEAD_DIM
from humanlm.states.template import load_chat_template

__all__ = [
    "DEMO_BASE",
    "DEMO_SPECIAL_TOKENS",
    "DEMO_VOCAB_SIZE",
    "build_demo_model",
    "demo_base_dir",
    "train_demo_tokenizer",
]

# The name ``model.path`` takes for the shipped demo base.
DEMO_BASE = "demo-base"
DEMO_VOCAB_SIZE = 2048
# The chat template's special tokens, with Qwen3's ``special`` flag (special ones are dropped by
# ``decode(skip_special_tokens=True)``; the thinking tags are not).
DEMO_SPECIAL_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<think>", False),
    ("</think>", False),
)
_EOS, _PAD = "<|im_end|>", "<|endoftext|>"


def demo_base_dir() -> Path:
    """The shipped demo base (tokenizer and warmed-up weights, Hugging Face format)."""
    return Path(str(resources.files("humanlm.model") / "demo_base"))


def train_demo_tokenizer(texts: Iterable[str], *, vocab_size: int = DEMO_VOCAB_SIZE) -> Any:
    """A byte-level BPE trained on ``texts``, as a fast tokenizer with our chat template.

    Deterministic for the same texts in the same order. The special tokens take ids 0-2, the
    thinking tags the last two ids; none is ever split or merged, and every other string
    round-trips exactly (all 256 bytes are in the alphabet).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    special = [token for token, is_special in DEMO_SPECIAL_TOKENS if is_special]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,  # ids 0-2, never split or merged
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    # The thinking tags are added after training as plain (non-special) added tokens, so decoding
    # with skip_special_tokens keeps them, as Qwen3's tokenizer does.
    core.add_tokens(
        [
            AddedToken(token, special=False, normalized=False)
            for token, is_special in DEMO_SPECIAL_TOKENS
            if not is_special
        ]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=_EOS,
        pad_token=_PAD,
        extra_special_tokens=[t for t in special if t not in (_EOS, _PAD)],
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = load_chat_template()
    return tokenizer


def build_demo_model(
    tokenizer: Any, *, seed: int = 0, hidden_size: int = 128, num_layers: int = 2
) -> Any:
    """A randomly initialised Qwen3 (tied embeddings, 4 heads of ``HEAD_DIM``) on ``tokenizer``."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    pad_id = tokenizer.convert_tokens_to_ids(_PAD)
    eos_id = tokenizer.convert_tokens_to_ids(_EOS)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=HEAD_DIM,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    # A private RNG stream: the same seed gives the same weights whatever ran before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=pad_id, eos_token_id=eos_id, pad_token_id=pad_id
    )
    return model
