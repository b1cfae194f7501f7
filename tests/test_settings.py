"""Each paper value and each default is defined once: a grep of the package finds one definition.

A value written twice drifts: the budget "1024 with thinking, else 512" once lived in four places,
the judge's concurrency was 16 in one file and 32 in another. Each pattern below matches the
definition of one setting; the rest of the code reads it from there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "humanlm"

# setting -> (pattern of its definition, the one file that may define it, how many definitions)
DEFINITIONS = {
    "thinking token budget": (
        r"\w*(TOKENS|tokens|length)\w*\"?\s*[:=]\s*(int = )?1024\b",
        "states/modes.py",
        1,
    ),
    "response token budget": (r"State\(\s*RESPONSE,[^)]*\b512\b", "states/registry.py", 1),
    "GRPO group size": (r'"num_generations": 4', "train/paper.py", 1),
    "rollout temperature": (r'"temperature": 0\.8', "train/paper.py", 1),
    "KL coefficient": (r'"beta": 0\.001', "train/paper.py", 1),
    # one learning rate per algorithm's table (GRPO, SFT), both in the paper's table
    "learning rate": (r'"learning_rate": 1e-6', "train/paper.py", 2),
    "SFT max length": (r'"max_length": 8192', "train/paper.py", 1),
    "SFT warm-up ratio": (r'"warmup_steps": 0\.1', "train/paper.py", 1),
    "paper eval judge": (r'"litellm:anthropic/claude-haiku-4-5"', "config.py", 1),
    "judge concurrency": (r"concurrency: int = 32\n    timeout_s", "config.py", 1),
    "request deadline": (r"\btimeout_s: float = \d", "llm/limits.py", 1),
    "retries": (r"max_retries: int = \d", "llm/limits.py", 1),
    "eval temperature": (r"temperature(: float)? ?= ?0\.4\b", "generate/protocol.py", 1),
}


def _hits(pattern: str) -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        found += [str(path.relative_to(PACKAGE))] * len(re.findall(pattern, text))
    return found


@pytest.mark.parametrize("setting", sorted(DEFINITIONS))
def test_each_setting_has_one_definition(setting: str) -> None:
    pattern, home, count = DEFINITIONS[setting]
    assert _hits(pattern) == [home] * count


def test_no_derived_budget_is_spelled_out() -> None:
    # The budget comes from Mode.max_new_tokens / max_new_tokens_for, never from a ternary.
    assert _hits(r"1024 if \w") == []
