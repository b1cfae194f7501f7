from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from humanlm.data.persona import count_persona_items, drop_persona_fields, render_persona
from tests.data.samples import persona_with_items, sample_row

PERSONA = {
    "demographics": {
        "age group": "30-40",
        "gender": "NA",
        "location": "",
        "occupation": "nurse",
        "nationality": "n/a",
        "other": "has two cats",
    },
    "interests": ["gardening", "local politics"],
    "values": [],
    "communication": ["short and dry"],
    "statistics": ["about 20 words per reply"],
}


def test_render_structured_persona():
    assert render_persona(json.dumps(PERSONA)) == (
        "age group: 30-40\n"
        "occupation: nurse\n"
        "other: has two cats\n"
        "Interests:\n"
        "  - gardening\n"
        "  - local politics\n"
        "Values:\n"
        "  Missing\n"
        "Communication:\n"
        "  - short and dry\n"
        "Statistics:\n"
        "  - about 20 words per reply"
    )


def test_render_persona_accepts_dict_and_unknown_demographics_only():
    persona = {"demographics": {"gender": "NA", "age group": "NA"}}
    assert render_persona(persona) == (
        "Interests:\n  Missing\nValues:\n  Missing\nCommunication:\n  Missing\n"
        "Statistics:\n  Missing"
    )


def test_render_real_persona():
    raw = sample_row("opinion", turn_id=3)
    text = render_persona(raw["persona"])
    assert text.startswith("age group: 24-25 years old\nInterests:\n  - Social justice issues")
    assert "gender:" not in text  # "NA" is unknown
    assert "\nStatistics:\n  - Response length varies" in text


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        (json.dumps(PERSONA), 4),  # structured
        (persona_with_items(9), 9),
        ('{"demographics": {}}', 0),  # no lists at all
        ("A user who is chatting with an AI assistant.", None),  # plain text: not filterable
        ("", None),
    ],
)
def test_count_persona_items(persona, expected):
    assert count_persona_items(persona) == expected


def test_dropout_is_deterministic_and_seeded():
    persona = json.loads(sample_row("opinion", turn_id=3)["persona"])
    first = drop_persona_fields(persona, field_p=0.3, item_p=0.3, seed=0)
    assert first == drop_persona_fields(json.dumps(persona), field_p=0.3, item_p=0.3, seed=0)
    others = [drop_persona_fields(persona, field_p=0.3, item_p=0.3, seed=s) for s in range(1, 6)]
    assert any(other != first for other in others)
    assert count_persona_items(first) < count_persona_items(persona)


def test_dropout_is_identical_across_processes():
    # Python's hash() is salted per process; the dropout must not depend on it.
    code = (
        "import json; from humanlm.data.persona import drop_persona_fields as d; "
        f"print(json.dumps(d({json.dumps(PERSONA)!r}, field_p=0.5, item_p=0.5, seed=7)))"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == drop_persona_fields(
        PERSONA, field_p=0.5, item_p=0.5, seed=7
    )


@pytest.mark.parametrize(
    ("field_p", "item_p", "check"),
    [
        (0.0, 0.0, lambda out: out == {**PERSONA}),  # nothing dropped
        (0.0, 1.0, lambda out: count_persona_items(out) == 0),  # every item dropped
        (1.0, 0.0, lambda out: all(v == "NA" for v in out["demographics"].values())),
    ],
)
def test_dropout_extremes(field_p, item_p, check):
    assert check(drop_persona_fields(PERSONA, field_p=field_p, item_p=item_p, seed=3))


def test_dropout_leaves_plain_text_alone():
    text = "A user who is chatting with an AI assistant."
    assert drop_persona_fields(text, field_p=1.0, item_p=1.0, seed=0) == text


def test_dropout_rejects_bad_probability():
    with pytest.raises(ValueError, match="field_p"):
        drop_persona_fields(PERSONA, field_p=1.5, item_p=0.0, seed=0)
