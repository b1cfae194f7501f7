"""The realism reward: its guards, the LLM detector asked in both orders over real HTTP, the
offline style detector, and which rows it rewards."""

from __future__ import annotations

import functools
import inspect
import json
import re

import pytest

from humanlm.judge.realism import (
    DetectPair,
    JudgeDetector,
    copied_span,
    realism_reward,
    too_long,
)
from humanlm.population.detect import StyleDetector, pair_fooled
from humanlm.testing import RecordedRequest, Reply, ScriptedServer

from .conftest import CONTEXT, TRUTH, run

_CANDIDATE = re.compile(r'<candidate id="([AB])">\n(.*?)\n</candidate>', flags=re.DOTALL)

POST = CONTEXT[0]["content"]  # "AITA for keeping the deposit my roommate never paid back?"

SPAN = "the deposit my roommate never paid back"
QUOTE = "keeping the deposit my roommate"
COPY_CASES = [
    ("I kept the deposit my roommate never paid back, fair?", [POST], 6, "", SPAN),  # copied
    ("I kept the DEPOSIT, my roommate never... paid back!", [POST], 6, "", SPAN),  # case, marks
    (SPAN, [POST], 8, "", None),  # shorter than the span
    ("you were keeping the deposit and that is fine", [POST], 3, "", "keeping the deposit"),  # 3
    ("NTA, she owes you the money", [POST], 3, "", None),  # nothing copied
    (QUOTE, [POST], 5, QUOTE, None),  # the real reply quotes the post too
    (QUOTE, ["x", POST], 5, "", QUOTE),  # found in the second source
]


@pytest.mark.parametrize(("text", "sources", "words", "allowed", "expected"), COPY_CASES)
def test_copied_span(text, sources, words, allowed, expected):
    assert copied_span(text, sources, words=words, allowed=allowed) == expected


LENGTH_CASES = [
    ("one two three four five", "one", 2.0, 20, False),  # under the floor
    (" ".join(["w"] * 21), "one", 2.0, 20, True),  # over the floor and the ratio
    (" ".join(["w"] * 21), " ".join(["r"] * 11), 2.0, 20, False),  # within twice the real
    (" ".join(["w"] * 23), " ".join(["r"] * 11), 2.0, 20, True),  # beyond twice the real
    (" ".join(["w"] * 5), "one two", 2.0, 0, True),  # no floor
]


@pytest.mark.parametrize(("text", "real", "ratio", "floor", "expected"), LENGTH_CASES)
def test_too_long(text, real, ratio, floor, expected):
    assert too_long(text, real, ratio=ratio, floor_words=floor) is expected


def _longer_is_human(request: RecordedRequest) -> Reply:
    """A scripted detector: the longer candidate is the human's."""
    found = dict(_CANDIDATE.findall(request.prompt))
    pick = max(found, key=lambda k: len(found[k]))
    return Reply(content=json.dumps({"human": pick, "reason": "more detail"}))


def _batch(rows):
    """Columns for rows given as (example_id, state, completion, real reply)."""
    return {
        "prompts": ["p"] * len(rows),
        "completions": [c for _, _, c, _ in rows],
        "example_id": [e for e, _, _, _ in rows],
        "state": [s for _, s, _, _ in rows],
        "ground_truth": [t for _, _, _, t in rows],
        "context": [CONTEXT for _ in rows],
    }


GUARDS = {"max_length_ratio": 2.0, "length_floor_words": 20, "copy_span_words": 6}


def test_realism_reward_is_a_coroutine_function_for_trl():
    reward = functools.partial(realism_reward, detector=StyleDetector(), **GUARDS)
    assert inspect.iscoroutinefunction(reward)


def test_judge_detector_rewards_how_often_it_is_fooled():
    short = "NTA."
    longer = "NTA. She owes you that money and you gave her months and months to pay it back."
    rows = [
        ("e1", "response", f"<response>{short}</response>", TRUTH),  # told apart twice: 0
        ("e1", "response", f"<response>{short}</response>", TRUTH),  # same pair: asked once
        ("e2", "response", f"<response>{longer}</response>", TRUTH),  # fooled twice: 1
        ("e1", "stance", "<stance>backs OP</stance>", TRUTH),  # another state: None
        ("e3", "response", "no tags at all", TRUTH),  # broken format: 0, no call
        ("e3", "response", f"<response>{' '.join(['yes'] * 40)}</response>", TRUTH),  # too long
        ("e3", "response", f"<response>kept {SPAN}</response>", TRUTH),  # copies the post
        ("e4", "response", f"<response>{short}</response>", "<|endconversation|>"),  # end: None
    ]
    metrics: dict[str, float] = {}
    with ScriptedServer(reply_fn=_longer_is_human) as server:
        from humanlm.judge import JudgeConfig, build_judge

        judge = build_judge(JudgeConfig(f"openai:detector@{server.base_url}", timeout_s=5.0))
        rewards = run(
            realism_reward(
                **_batch(rows),
                detector=JudgeDetector(judge),
                log_metric=metrics.__setitem__,
                **GUARDS,
            )
        )
        prompts = [r.prompt for r in server.chat_requests]
    assert rewards == [0.0, 0.0, 1.0, None, 0.0, 0.0, 0.0, None]
    assert len(prompts) == 4  # two distinct pairs, each in both orders
    shown_first = [dict(_CANDIDATE.findall(p))["A"] for p in prompts]
    assert sorted(shown_first) == sorted([TRUTH, short, TRUTH, longer])  # real as A, then as B
    assert metrics["realism/mean"] == pytest.approx(1 / 6)
    assert metrics["realism/length_guard_frac"] == pytest.approx(1 / 6)
    assert metrics["realism/copy_guard_frac"] == pytest.approx(1 / 6)
    assert metrics["realism/unscored_frac"] == 0.0


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (['{"human": "A"}', '{"human": "A"}'], 0.5),  # a judge that always says A: no signal
        (['{"human": "B"}', "I cannot tell."], 1.0),  # one order unreadable: the other decides
        (["I cannot tell.", "no idea"], None),  # neither order answered: unscored
    ],
)
def test_judge_detector_both_orders(answers, expected):
    replies = iter(answers)
    with ScriptedServer(reply_fn=lambda request: Reply(content=next(replies))) as server:
        from humanlm.judge import JudgeConfig, build_judge

        judge = build_judge(
            JudgeConfig(
                f"openai:detector@{server.base_url}",
                max_retries=0,
                timeout_s=5.0,
                concurrency=1,  # the orders are asked one after the other: replies in order
            )
        )
        [share] = run(JudgeDetector(judge).fooled([DetectPair("e1", CONTEXT, TRUTH, "NTA.")]))
    assert share == expected


def _style_pairs():
    """Real replies in plain prose; generated ones shouting, so style tells them apart."""
    real = [f"I think you did the right thing here, friend number {i}." for i in range(6)]
    fake = [f"WOW!!! TOTALLY NTA!!! {i}!!!" for i in range(6)]
    return real, fake


def test_pair_fooled_tells_a_different_style_apart_and_ties_copies():
    real, fake = _style_pairs()
    groups = [f"e{i}" for i in range(6)]
    assert pair_fooled(fake, real, groups=groups) == [0.0] * 6
    assert pair_fooled(real, real, groups=groups) == [0.5] * 6  # copies: no decision
    assert pair_fooled(fake[:3], real[:3], groups=groups[:3]) is None  # too few pairs
    assert pair_fooled(fake, real, groups=["e"] * 6) is None  # one example: no held-out fold


def test_style_detector_rewards_through_the_reward_function():
    real, fake = _style_pairs()
    rows = [
        (f"e{i}", "response", f"<response>{f}</response>", r)
        for i, (f, r) in enumerate(zip(fake, real, strict=True))
    ]
    rewards = run(realism_reward(**_batch(rows), detector=StyleDetector(), **GUARDS))
    assert rewards == [0.0] * 6
    copies = [(e, s, f"<response>{r}</response>", r) for e, s, _, r in rows]
    assert run(realism_reward(**_batch(copies), detector=StyleDetector(), **GUARDS)) == [0.5] * 6
