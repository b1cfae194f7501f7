"""The simulator's prompt is the training prompt of the response state."""

from __future__ import annotations

import pytest

from humanlm.generate import build_sim_prompt
from humanlm.states.examples import render_prompt


@pytest.mark.parametrize("thinking", [True, False])
def test_prompt_text_is_the_training_prompt(demo_examples, thinking):
    example = demo_examples[0]
    prompt = build_sim_prompt(example, thinking=thinking)
    assert prompt.text == render_prompt(example, "response", state_set="r", thinking=thinking)
    assert prompt.thinking is thinking


def test_prompt_opens_or_prefills_the_think_block(demo_examples):
    on = build_sim_prompt(demo_examples[0], thinking=True).text
    off = build_sim_prompt(demo_examples[0], thinking=False).text
    assert on.endswith("<name>HUMAN</name>\n<think>\n")
    assert off.endswith("<name>HUMAN</name>\n<think>\n\n</think>\n\n")


def test_prompt_messages_are_system_then_context(demo_examples):
    example = demo_examples[1]
    prompt = build_sim_prompt(example, thinking=True)
    assert prompt.messages[0]["role"] == "system"
    assert "<response>" in prompt.messages[0]["content"]
    assert [m["content"] for m in prompt.messages[1:]] == [
        m["content"] for m in example["messages"]
    ]
