"""Judge reply parsing: tolerant JSON extraction, alignment by number, failure reasons."""

from __future__ import annotations

import pytest

from humanlm.judge.parse import parse_aspects_reply, parse_group_reply
from humanlm.llm.jsonreply import extract_json
from humanlm.testing.judge_replies import aspects_reply, group_reply

GOOD = {"1": 0.2, "2": 0.5, "3": 0.9}

GROUP_CASES = [
    (group_reply(GOOD), 3, "ok", [0.2, 0.5, 0.9]),  # plain
    (group_reply(GOOD, reverse=True), 3, "ok", [0.2, 0.5, 0.9]),  # reversed keys: by number
    (group_reply({"3": 0.9, "1": 0.2, "2": 0.5}), 3, "ok", [0.2, 0.5, 0.9]),  # "3","1","2"
    (group_reply(GOOD, as_strings=True), 3, "ok", [0.2, 0.5, 0.9]),  # scores as strings
    (group_reply(GOOD, fence=True, prose=True), 3, "ok", [0.2, 0.5, 0.9]),  # fence + prose
    (group_reply(GOOD, prose=True), 3, "ok", [0.2, 0.5, 0.9]),  # prose, no fence
    (group_reply(GOOD, trailing_comma=True), 3, "ok", [0.2, 0.5, 0.9]),  # trailing comma
    (group_reply(GOOD, as_list=True, reverse=True), 3, "ok", [0.2, 0.5, 0.9]),  # numbered list
    (group_reply({"1": 1.04, "2": -0.03}), 2, "ok", [1.0, 0.0]),  # rounding slack: the bound
    (group_reply({"1": 1.05, "2": -0.05}), 2, "ok", [1.0, 0.0]),  # the slack's edge
    (group_reply({"1": 1.7, "2": 0.5}), 2, "off_scale", None),  # never clipped to 1
    (group_reply({"1": 1.3, "2": -0.2}), 2, "off_scale", None),  # never clipped to 1 or 0
    (group_reply({"1": 0.5, "2": -0.06}), 2, "off_scale", None),  # just past the slack
    ('{"scores": {"1": NaN, "2": 0.5}}', 2, "off_scale", None),  # not a number on the scale
    (group_reply({"1": "0.7", "2": " 1 "}), 2, "ok", [0.7, 1.0]),  # numeric strings
    (group_reply({"1": "1.7", "2": "0.5"}), 2, "off_scale", None),  # off-scale string
    (group_reply({"1": "high", "2": "0.5"}), 2, "parse_failure", None),  # not a number
    (group_reply({"1": "7/10", "2": "0.5"}), 2, "parse_failure", None),  # another scale
    (group_reply({"1": "about 0.5", "2": "0.5"}), 2, "parse_failure", None),  # number in prose
    (group_reply({"candidate 1": 0.1, "#2": 0.3}), 2, "ok", [0.1, 0.3]),  # decorated keys
    ('{"scores": {"1": 0.4, "2": "0.6/1"}}', 2, "ok", [0.4, 0.6]),  # bare values
    (group_reply({"1": 7, "2": 9}), 2, "off_scale", None),  # a 0-10 scale
    (group_reply(GOOD), 2, "wrong_count", None),  # an extra number
    (group_reply({"1": 0.2, "2": 0.5}), 3, "wrong_count", None),  # a missing number
    (group_reply(GOOD)[:60], 3, "parse_failure", None),  # truncated JSON
    ('{"scores": [0.1, 0.2]}', 2, "parse_failure", None),  # positions only: never trusted
    ('{"scores": {"1": {"thought": "no score"}}}', 1, "parse_failure", None),  # no score
    ("I cannot grade these.", 2, "parse_failure", None),  # prose only
    ("", 2, "empty", None),  # empty
    ("   \n", 2, "empty", None),  # whitespace only
    (None, 2, "empty", None),  # null content
    # issue 24: a repeated key or two different score objects are never resolved by position
    ('{"scores": {"1": {"score": 0.4, "score": 1.0}}}', 1, "parse_failure", None),
    ('{"scores": {"1": 0.4, "1": 1.0}}', 1, "parse_failure", None),  # the candidate twice
    ('{"scores": {"1": 0.4}, "scores": {"1": 1.0}}', 1, "parse_failure", None),
    ('```json\n{"scores": {"1": 0.4, "1": 1.0}}\n```', 1, "parse_failure", None),  # fenced
    ('Sure: {"scores": {"1": {"score": 0.4, "score": 1.0}}} ok', 1, "parse_failure", None),
    ('{"scores": {"1": 0.2}} no, {"scores": {"1": 0.9}}', 1, "parse_failure", None),
    ('{"scores": {"1": 0.2}} again: {"scores": {"1": 0.2}}', 1, "ok", [0.2]),  # the same twice
    ('{"scores": {"1": {"score": 0.4, "rating": 1.0}}}', 1, "parse_failure", None),  # disagree
    ('{"scores": {"1": {"score": 0.4, "Score": "0.4"}}}', 1, "ok", [0.4]),  # agree
    ('{"scores": [{"candidate": 2, "index": 1, "score": 0.4}]}', 1, "parse_failure", None),
]


@pytest.mark.parametrize(("text", "count", "reason", "scores"), GROUP_CASES)
def test_parse_group_reply(text: str | None, count: int, reason: str, scores: list | None) -> None:
    parsed = parse_group_reply(text, count)
    assert parsed.reason == reason
    if scores is None:
        assert parsed.scores == {}
    else:
        assert [parsed.scores[str(i)] for i in range(1, count + 1)] == pytest.approx(scores)


def test_parse_group_reply_keeps_thoughts_and_key_points() -> None:
    parsed = parse_group_reply(group_reply(GOOD, key_points=["sides with OP"]), 3)
    assert parsed.key_points == ("sides with OP",)
    assert parsed.thoughts["2"] == "candidate 2 judged"


ASPECT_CASES = [
    (aspects_reply({"stance": 0.5, "emotion": 0.25}), "ok", {"stance": 0.5, "emotion": 0.25}),
    (aspects_reply({"emotion": "0.25", "stance": "0.5"}), "ok", {"stance": 0.5, "emotion": 0.25}),
    ('{"Stance": 0.5, "EMOTION": 0.1}', "ok", {"stance": 0.5, "emotion": 0.1}),  # no wrapper
    (aspects_reply({"stance": 0.5}), "wrong_count", None),  # a state missing
    (aspects_reply({"stance": 0.5, "emotion": 0.2, "mood": 0.1}), "wrong_count", None),  # extra
    ("```json\n{oops\n```", "parse_failure", None),  # broken JSON in a fence
    (aspects_reply({"stance": 1.7, "emotion": 0.2}), "off_scale", None),  # never clipped
    (aspects_reply({"stance": -0.5, "emotion": 0.2}), "off_scale", None),  # never clipped
    (aspects_reply({"stance": 1.02, "emotion": -0.01}), "ok", {"stance": 1.0, "emotion": 0.0}),
    (aspects_reply({"stance": "0.7", "emotion": "0.2"}), "ok", {"stance": 0.7, "emotion": 0.2}),
    (aspects_reply({"stance": "n/a", "emotion": "0.2"}), "parse_failure", None),
]


@pytest.mark.parametrize(("text", "reason", "scores"), ASPECT_CASES)
def test_parse_aspects_reply(text: str, reason: str, scores: dict | None) -> None:
    parsed = parse_aspects_reply(text, ("stance", "emotion"))
    assert parsed.reason == reason
    assert parsed.scores == (scores or {})


def test_extract_json_prefers_the_object_with_scores() -> None:
    text = 'Example: {"a": 1}. Answer: {"scores": {"1": 0.5}} done'
    assert extract_json(text, prefer="scores") == {"scores": {"1": 0.5}}


# The Chat gate's field (issue 21): read per candidate number, required when asked for.
GATE_CASES = [
    pytest.param(
        group_reply({"1": 0.4, "2": 0.6}, assistant_voice={"1": True, "2": False}),
        "ok",
        {"1": True, "2": False},
        id="booleans",
    ),
    pytest.param(
        group_reply({"1": 0.4, "2": 0.6}, assistant_voice={"2": "no", "1": "Yes"}, reverse=True),
        "ok",
        {"1": True, "2": False},
        id="words-any-order",
    ),
    pytest.param(
        group_reply([0.4, 0.6], assistant_voice={"1": "true", "2": "false"}, as_list=True),
        "ok",
        {"1": True, "2": False},
        id="numbered-list",
    ),
    pytest.param(
        group_reply({"1": 0.4, "2": 0.6}, assistant_voice={"1": True}),
        "parse_failure",
        {},
        id="one-missing",
    ),
    pytest.param(
        group_reply({"1": 0.4, "2": 0.6}, assistant_voice={"1": "maybe", "2": False}),
        "parse_failure",
        {},
        id="unreadable",
    ),
    pytest.param(group_reply({"1": 0.4, "2": 0.6}), "parse_failure", {}, id="absent"),
]


@pytest.mark.parametrize(("text", "reason", "voices"), GATE_CASES)
def test_parse_group_reply_with_the_gate(text: str, reason: str, voices: dict) -> None:
    parsed = parse_group_reply(text, 2, gate=True)
    assert parsed.reason == reason
    assert parsed.assistant_voice == voices
    if reason == "ok":  # the gate's answer survives the cache round trip
        assert type(parsed).from_dict(parsed.to_dict()).assistant_voice == voices


def test_without_the_gate_the_field_is_not_needed() -> None:
    parsed = parse_group_reply(group_reply({"1": 0.4, "2": 0.6}), 2)
    assert parsed.reason == "ok" and parsed.assistant_voice == {}


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (
            '{"key_points": [], "scores": {"1": {"score": 0.4, "score": 1.0}}}',
            "duplicate key 'score'",
        ),
        ('{"scores": {"1": 0.4, "1": 1.0}}', "duplicate key '1'"),
        (
            '{"scores": {"1": 0.2}} or {"scores": {"1": 0.9}}',
            "2 different JSON objects with 'scores'",
        ),
    ],
)
def test_an_ambiguous_reply_says_why(text: str, detail: str) -> None:
    # issue 24: the reason names the repeated key or the second reading.
    for parsed in (parse_group_reply(text, 1), parse_aspects_reply(text, ("1",))):
        assert parsed.reason == "parse_failure" and parsed.scores == {}
        assert parsed.detail is not None and parsed.detail.startswith(detail)
