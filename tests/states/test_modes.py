"""Training modes: the derived settings each mode owns."""

from __future__ import annotations

import pytest

from humanlm.errors import ConfigError
from humanlm.states import MODES, RESPONSE, STATES, get_mode, max_new_tokens_for


def test_max_new_tokens_is_1024_with_thinking_else_the_response_budget():
    assert STATES[RESPONSE].max_new_tokens == 512
    budgets = {name: mode.max_new_tokens for name, mode in MODES.items()}
    assert budgets == {
        "humanlm": 1024,
        "grpo": 512,
        "grpo-think": 1024,
        "sft": 512,
        "sft-think": 1024,
    }
    assert max_new_tokens_for(True) == 1024 and max_new_tokens_for(False) == 512


def test_unknown_mode_names_the_known_ones():
    with pytest.raises(ConfigError, match="humanlm, grpo"):
        get_mode("dpo")
