"""Economy rules of a group (pure functions): empty, exact copies, duplicates, mapping back."""

from __future__ import annotations

import pytest

from humanlm.judge.group import finish_group, gate_applies, plan_group

TRUTH = "NTA, she owes you."

PLAN_CASES = [
    (["a", "b"], ("a", "b"), [("judge", 0), ("judge", 1)]),  # distinct
    (
        ["a", " a\n", "b", "a"],
        ("a", "b"),
        [("judge", 0), ("judge", 0), ("judge", 1), ("judge", 0)],
    ),  # dupes
    (["", None, "  "], (), [("empty", -1)] * 3),  # nothing usable
    (
        [TRUTH, "NTA,  she owes you. ", "x"],
        ("x",),
        [("copy", -1), ("copy", -1), ("judge", 0)],
    ),  # copies
    ([], (), []),  # no candidates
]


@pytest.mark.parametrize(("candidates", "unique", "slots"), PLAN_CASES)
def test_plan_group(candidates, unique, slots) -> None:
    plan = plan_group(candidates, TRUTH)
    assert plan.unique == unique and list(plan.slots) == slots


def test_copies_are_set_aside_for_the_response_only() -> None:
    assert list(plan_group([TRUTH], TRUTH, state="response").slots) == [("copy", -1)]
    for latent in ("stance", "emotion", "belief", "value", "goal", "communication"):
        plan = plan_group([TRUTH, "x"], TRUTH, state=latent)
        assert plan.unique == (TRUTH, "x") and list(plan.slots) == [("judge", 0), ("judge", 1)]


FINISH_CASES = [
    (["a", TRUTH, ""], [0.5], None, [0.5, 0.6, 0.0]),  # copy = best + 0.1
    (["a", TRUTH], [0.95], None, [0.95, 1.0]),  # capped at 1
    ([TRUTH, ""], None, None, [1.0, 0.0]),  # nothing judged: copy = 1
    (["a", TRUTH, ""], None, "timeout", [None, None, 0.0]),  # failure: unscored, format 0 stays
]


@pytest.mark.parametrize(("candidates", "scores", "failure", "expected"), FINISH_CASES)
def test_finish_group(candidates, scores, failure, expected) -> None:
    plan = plan_group(candidates, TRUTH)
    verdict = finish_group(
        plan, scores=scores, failure=failure, judge_model="j", prompt_version="v"
    )
    assert verdict.scores == pytest.approx(expected)
    assert verdict.reason == (failure or "ok")


END = "<|endconversation|>"
END_CASES = [
    ([END, " <|endconversation|> ", "ok bye"], END, [1.0, 1.0, 0.0]),  # the user really ended
    ([END, "NTA"], TRUTH, [0.0, None]),  # ended where the user went on: 0, the rest judged
]


@pytest.mark.parametrize(("candidates", "truth", "expected"), END_CASES)
def test_end_signal_is_scored_without_a_call(candidates, truth, expected) -> None:
    plan = plan_group(candidates, truth)
    judged = [s for s in plan.slots if s[0] == "judge"]
    verdicts = finish_group(
        plan,
        scores=None if judged else [],
        failure=None if not judged else "timeout",
        judge_model="m",
        prompt_version="v",
    )
    assert [v.score for v in verdicts.verdicts] == expected
    assert ("end_mismatch" in verdicts.reasons) == (0.0 in expected)


# The Chat gate (issue 21): where it applies, and what it does to the scores.
@pytest.mark.parametrize(
    ("setting", "source", "applies"),
    [
        ("auto", "wildchat", True),
        ("auto", "reddit", False),
        ("auto", None, False),
        ("on", "reddit", True),
        ("on", None, True),
        ("off", "wildchat", False),
    ],
)
def test_gate_applies(setting, source, applies) -> None:
    assert gate_applies(setting, source) is applies


def test_an_unknown_gate_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="chat_gate"):
        gate_applies("sometimes", "wildchat")


GATED_CASES = [
    # candidates, judge scores (one per distinct judged candidate), assistant voice, expected
    (["a", "b"], [0.7, 0.4], [True, False], [0.0, 0.4], ["assistant_voice", "ok"]),
    (["a", "a", "b"], [0.7, 0.4], [True, False], [0.0, 0.0, 0.4], ["assistant_voice"] * 2 + ["ok"]),
    # the copy bonus counts from the best score after the gate, not the gated 0.9
    (["a", "b", TRUTH], [0.9, 0.3], [True, False], [0.0, 0.3, 0.4], None),
    (["", "a"], [0.8], [True], [0.0, 0.0], ["bad_format", "assistant_voice"]),
    (["a", "b"], [0.7, 0.4], [], [0.7, 0.4], ["ok", "ok"]),  # not gated
]


@pytest.mark.parametrize(("candidates", "scores", "voices", "expected", "reasons"), GATED_CASES)
def test_finish_group_with_the_gate(candidates, scores, voices, expected, reasons) -> None:
    plan = plan_group(candidates, TRUTH, state="response")
    verdict = finish_group(
        plan,
        scores=scores,
        failure=None,
        judge_model="j",
        prompt_version="v",
        thoughts=["helps like an assistant", "sounds like the user"][: len(plan.unique)],
        assistant_voice=voices,
    )
    assert verdict.scores == pytest.approx(expected)
    assert verdict.is_scored and verdict.reason == "ok"
    if reasons is not None:
        assert verdict.reasons == reasons
    gated = [v for v in verdict.verdicts if v.reason == "assistant_voice"]
    assert all(v.thought == "helps like an assistant" for v in gated)


def test_a_failed_call_leaves_gated_candidates_unscored_not_zero() -> None:
    plan = plan_group(["a", "b"], TRUTH)
    verdict = finish_group(
        plan, scores=None, failure="timeout", judge_model="j", prompt_version="v"
    )
    assert verdict.scores == [None, None] and verdict.reasons == ["timeout", "timeout"]
