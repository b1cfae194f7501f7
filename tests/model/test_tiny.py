"""Tests for the offline tiny Qwen3: loadable offline, Qwen3 token ids, our chat template, generation."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from humanlm.errors import ConfigError
from humanlm.model.tiny import QWEN3_ADDED_TOKENS, QWEN3_TOKEN_IDS, build_tiny_model
from humanlm.states.template import render_chat

MESSAGES = [
    {"role": "system", "name": "system", "content": "You are a real human user named HUMAN."},
    {"role": "user", "name": "throwaway_42", "content": "AITA for skipping my sister's wedding?"},
    {"role": "user", "name": "HUMAN", "content": "Depends on why."},
    {"role": "assistant", "name": "gpt-4", "content": "Here is a summary."},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir)


def test_model_loads_with_the_tiny_config(model, tiny_model_dir):
    config = model.config
    assert type(model).__name__ == "Qwen3ForCausalLM"
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (151936, 64, 2)
    # head_dim 32: the narrowest head vLLM's CPU attention accepts (issue 21)
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (4, 2, 32)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert (config.eos_token_id, config.pad_token_id) == (151645, 151643)
    assert model.generation_config.eos_token_id == 151645
    size_mb = sum(f.stat().st_size for f in tiny_model_dir.iterdir()) / 1e6
    assert size_mb < 80


def test_tokenizer_matches_qwen3_ids(tokenizer):
    assert tokenizer("Hello world")["input_ids"] == [9707, 1879]
    assert len(tokenizer) == 151669
    assert {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN3_TOKEN_IDS} == QWEN3_TOKEN_IDS
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|im_end|>", 151645)
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("<|endoftext|>", 151643)
    assert tokenizer.bos_token is None and tokenizer.unk_token is None
    assert [t for t, _ in QWEN3_ADDED_TOKENS][-2:] == ["<think>", "</think>"]


def test_tokenizer_keeps_think_tags_when_skipping_special_tokens(tokenizer):
    text = "<|im_start|>user\n<think>\nhm</think>\n\n<response>ok</response><|im_end|>"
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == 151644 and ids[-1] == 151645 and 151667 in ids and 151668 in ids
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert decoded == "user\n<think>\nhm</think>\n\n<response>ok</response>"


@pytest.mark.parametrize("thinking", [True, False])
def test_saved_chat_template_renders_like_render_chat(tokenizer, thinking):
    expected = render_chat(MESSAGES, thinking=thinking)
    assert render_chat(MESSAGES, thinking=thinking, tokenizer=tokenizer) == expected
    assert expected.endswith("<name>HUMAN</name>\n<think>\n" if thinking else "</think>\n\n")


def test_generate_runs(model, tokenizer):
    inputs = tokenizer(render_chat(MESSAGES, thinking=False), return_tensors="pt")
    prompt_length = inputs["input_ids"].shape[1]
    out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.shape[0] == 1 and prompt_length < out.shape[1] <= prompt_length + 6
    assert isinstance(tokenizer.decode(out[0, prompt_length:]), str)


def test_build_reuses_a_complete_build(tiny_model_dir):
    weights = tiny_model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_tiny_model(tiny_model_dir) == tiny_model_dir
    assert weights.stat().st_mtime_ns == before


def test_build_rebuilds_when_the_seed_changes(tiny_model_dir, tmp_path, model):
    from transformers import AutoModelForCausalLM

    copy = shutil.copytree(tiny_model_dir, tmp_path / "tiny")
    build_tiny_model(copy, seed=1)
    assert json.loads((copy / "humanlm_tiny.json").read_text())["seed"] == 1
    reseeded = AutoModelForCausalLM.from_pretrained(copy)
    assert not torch.equal(reseeded.lm_head.weight, model.lm_head.weight)


@pytest.mark.parametrize(("hidden_size", "num_layers"), [(66, 2), (0, 2), (64, 0)])
def test_build_rejects_bad_sizes(tmp_path, hidden_size, num_layers):
    with pytest.raises(ConfigError):
        build_tiny_model(tmp_path, hidden_size=hidden_size, num_layers=num_layers)
