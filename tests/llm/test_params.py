"""Request fields by model family: OpenAI's reasoning models get the fields their API takes."""

from __future__ import annotations

import logging

import pytest

from humanlm.llm.params import fit_params, is_openai_reasoning
from humanlm.testing.server import openai_refusal

NAMES = [
    ("gpt-5-mini", True),  # the paper's train judge
    ("gpt-5", True),
    ("gpt-5-nano-2025-08-07", True),  # a dated snapshot
    ("gpt-5.1", True),
    ("o1", True),
    ("o3-mini", True),
    ("o4-mini", True),
    ("openai/gpt-5-mini", True),  # litellm's form
    ("ft:o4-mini-2025-04-16:org::abc123", True),  # a fine-tune
    ("gpt-5-chat-latest", False),  # the chat snapshot samples as usual
    ("gpt-4.1-mini", False),
    ("gpt-4o", False),
    ("gpt-50", False),
    ("o2-model", False),
    ("omni-judge", False),
    ("anthropic/claude-haiku-4-5", False),
    ("Qwen/Qwen3-8B", False),  # a served model
    ("azure/o3-mini", False),  # a deployment name, not a model
]


@pytest.mark.parametrize(("model", "reasoning"), NAMES)
def test_which_models_are_openai_reasoning_models(model, reasoning) -> None:
    assert is_openai_reasoning(model) is reasoning


FITTED = [
    # (fields, expected) for gpt-5-mini
    ({"temperature": 1.0, "max_tokens": 4096}, {"temperature": 1.0, "max_completion_tokens": 4096}),
    ({"temperature": 0.0}, {}),  # the eval judge's 0: the model samples only at 1
    ({"top_p": 0.9, "presence_penalty": 0.0}, {"presence_penalty": 0.0}),
    ({"frequency_penalty": 0.5, "seed": 3}, {"seed": 3}),
    ({"logprobs": True, "top_logprobs": 2, "logit_bias": {"1": 5}}, {}),
    ({"logprobs": False}, {}),
    ({"max_tokens": None}, {}),  # no limit asked
    ({"max_completion_tokens": 9}, {"max_completion_tokens": 9}),
    ({"response_format": {"type": "json_object"}}, {"response_format": {"type": "json_object"}}),
]


@pytest.mark.parametrize(("fields", "expected"), FITTED)
def test_fields_are_fitted_to_a_reasoning_model(fields, expected) -> None:
    before = dict(fields)
    fitted = fit_params("gpt-5-mini", fields)
    assert fitted == expected
    assert fields == before  # the caller's dict is untouched
    # What the client sends, the stand-in for OpenAI's rules takes (issue 21).
    assert openai_refusal({"model": "gpt-5-mini", "messages": [], **fitted}) is None


def test_other_models_get_their_fields_as_given() -> None:
    fields = {"temperature": 0.0, "max_tokens": 4096, "top_p": 0.5, "logprobs": True}
    assert fit_params("gpt-4.1-mini", fields) == fields
    assert fit_params("anthropic/claude-haiku-4-5", fields) == fields
    assert fit_params("gpt-5-mini", None) == {}


def test_a_dropped_value_is_warned_about_once_per_model_and_field(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="humanlm.llm.params"):
        for _ in range(3):
            fit_params("o3-mini", {"temperature": 0.2})
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "o3-mini" in warnings[0] and "temperature 1" in warnings[0] and "0.2" in warnings[0]
