"""state_reward: strict parsing per state, grouping by (example_id, state) not position, one call
per group, concurrent groups, metrics and the unscored record."""

from __future__ import annotations

import functools
import inspect
import random
import time

import pytest

from humanlm.judge import state_reward
from humanlm.judge.reward import completion_text, extract_candidate
from humanlm.testing import faults
from humanlm.testing.judge_replies import candidates_in, judge_reply_fn, real_reply_in

from .conftest import CONTEXT, run

EXTRACT_CASES = [
    ("<stance>backs OP</stance>", "stance", True, "backs OP"),  # plain
    ("  <stance> backs OP </stance>\n", "stance", True, "backs OP"),  # whitespace
    ("weighing it</think>\n<stance>backs OP</stance>", "stance", True, "backs OP"),  # thinking
    ("<think></think><emotion>calm</emotion>", "emotion", True, "calm"),  # empty think block
    ("backs OP", "stance", True, None),  # no tags
    ("<stance>backs OP</stance> extra", "stance", True, None),  # text after the tag
    ("<emotion>calm</emotion>", "stance", True, None),  # another state's tag
    ("<stance></stance>", "stance", True, None),  # empty content
    ("plan</think>\nNTA, obviously.", "response", False, "NTA, obviously."),  # untagged
    ("", "response", False, None),  # untagged and empty
]


@pytest.mark.parametrize(("text", "state", "tagged", "expected"), EXTRACT_CASES)
def test_extract_candidate(text: str, state: str, tagged: bool, expected: str | None) -> None:
    assert extract_candidate(text, state, tagged=tagged) == expected


def test_completion_text_takes_the_last_message() -> None:
    assert completion_text("x") == "x"
    assert completion_text([{"role": "assistant", "content": "a"}, {"content": "b"}]) == "b"
    assert completion_text([{"content": [{"type": "text", "text": "c"}]}]) == "c"
    assert completion_text([]) == ""


def _batch(specs):
    """Columns for rows given as (example_id, state, candidate text)."""
    return {
        "prompts": ["p"] * len(specs),
        "completions": [f"<{s}>{text}</{s}>" if text else "no tags" for _, s, text in specs],
        "example_id": [e for e, _, _ in specs],
        "state": [s for _, s, _ in specs],
        "ground_truth": [f"truth of {e}" for e, _, _ in specs],
        "context": [CONTEXT for _ in specs],
    }


def _score_by_marker(candidate: str, real: str) -> float:
    # Encodes which example a candidate belongs to, so misrouting shows up in the scores.
    return 0.9 if candidate.split("-")[0] == real.split()[-1] else 0.1


def test_interleaved_groups_route_by_example_and_state(server, make_judge) -> None:
    server.reply_fn = judge_reply_fn(_score_by_marker)
    specs = [
        (e, s, f"{e}-{s}-{k}") for e in ("ex1", "ex2") for s in ("stance", "goal") for k in range(3)
    ]
    random.Random(3).shuffle(specs)
    judge = make_judge()
    metrics: dict[str, float] = {}
    rewards = run(state_reward(**_batch(specs), judge=judge, log_metric=metrics.__setitem__))
    assert rewards == [0.9] * len(specs)
    assert judge.ledger.calls == 4 == len(server.chat_requests)
    for request in server.chat_requests:
        shown = set(candidates_in(request.prompt).values())
        example = real_reply_in(request.prompt).split()[-1]
        assert len(shown) == 3 and {c.split("-")[0] for c in shown} == {example}
    assert metrics["state_reward/stance"] == metrics["state_reward/goal"] == 0.9
    assert metrics["valid_format/stance"] == 1.0 and metrics["judge/unscored_frac"] == 0.0
    assert metrics["judge/calls"] == 4.0 and metrics["judge/input_tokens"] > 0


def test_a_slice_of_a_group_is_judged_in_one_call(server, make_judge) -> None:
    server.reply_fn = judge_reply_fn(_score_by_marker)
    specs = [("ex9", "belief", "ex9-a"), ("ex9", "belief", "ex9-b")]  # 2 of 4 rollouts
    judge = make_judge()
    assert run(state_reward(**_batch(specs), judge=judge)) == [0.9, 0.9]
    assert judge.ledger.calls == 1


def test_bad_format_scores_zero_without_a_call(server, make_judge) -> None:
    server.reply_fn = judge_reply_fn(lambda c, r: 0.5)
    specs = [("e", "value", "fine"), ("e", "value", ""), ("f", "value", ""), ("f", "value", "")]
    judge = make_judge()
    metrics: dict[str, float] = {}
    rewards = run(state_reward(**_batch(specs), judge=judge, log_metric=metrics.__setitem__))
    assert rewards == [0.5, 0.0, 0.0, 0.0]
    assert judge.ledger.calls == 1 and candidates_in(server.chat_requests[0].prompt) == {
        "1": "fine"
    }
    assert metrics["valid_format/value"] == 0.25


def test_unscored_groups_return_none_and_are_recorded(server, make_judge) -> None:
    server.reply_fn = lambda request: (
        faults.empty()
        if "truth of bad" in request.prompt
        else judge_reply_fn(lambda c, r: 0.4)(request)
    )
    specs = [("bad", "goal", "x"), ("ok", "goal", "y"), ("bad", "goal", "z"), ("ok", "goal", "w")]
    judge = make_judge(max_retries=1)
    metrics: dict[str, float] = {}
    rewards = run(state_reward(**_batch(specs), judge=judge, log_metric=metrics.__setitem__))
    assert rewards == [None, 0.4, None, 0.4]
    assert metrics["judge/unscored_frac"] == 0.5
    assert metrics["state_reward/goal"] == 0.4  # the mean over scored rows, no zero-filling
    assert judge.ledger.last_batch_unscored_frac == 0.5
    assert judge.ledger.last_batch_failures == {"empty": 2}


def test_groups_are_judged_concurrently(server, make_judge) -> None:
    server.reply_fn = judge_reply_fn()
    server.latency_s = 0.2
    specs = [(f"e{i}", "response", f"reply {i} {k}") for i in range(8) for k in range(4)]
    started = time.monotonic()
    rewards = run(state_reward(**_batch(specs), judge=make_judge(concurrency=16)))
    assert time.monotonic() - started < 0.8  # sequential would take 8 x 0.2 s
    assert len(rewards) == 32 and None not in rewards


def test_message_list_completions_and_untagged_data(server, make_judge) -> None:
    server.reply_fn = judge_reply_fn(lambda c, r: 0.3 if c == "NTA." else 0.6)
    columns = _batch([("e", "response", "x"), ("e", "response", "y")])
    columns["completions"] = [
        [{"role": "assistant", "content": "think</think>NTA."}],
        [{"role": "assistant", "content": "YTA."}],
    ]
    rewards = run(state_reward(**columns, judge=make_judge(), tagged=False))
    assert rewards == [0.3, 0.6]


def test_reward_is_an_awaitable_partial_with_trl_keywords(server, make_judge) -> None:
    reward = functools.partial(state_reward, judge=make_judge())
    assert inspect.iscoroutinefunction(reward)
    columns = _batch([("e", "goal", "x")])
    server.reply_fn = judge_reply_fn()
    out = run(reward(**columns, completion_ids=[[1]], trainer_state=None, log_extra=None))
    assert len(out) == 1


def test_mismatched_columns_and_unknown_states_fail_loudly(make_judge) -> None:
    columns = _batch([("e", "goal", "x")])
    columns["example_id"] = []
    with pytest.raises(ValueError, match="example_id"):
        run(state_reward(**columns, judge=make_judge()))
    columns = _batch([("e", "mood", "x")])
    with pytest.raises(Exception, match="unknown state"):
        run(state_reward(**columns, judge=make_judge()))


def test_fake_judge_satisfies_the_protocol_and_the_reward() -> None:
    from humanlm.judge import Judge
    from humanlm.testing import FakeJudge

    judge = FakeJudge(lambda candidate, truth, state: 0.25 if "x" in candidate else None)
    assert isinstance(judge, Judge)
    specs = [("e", "goal", "x1"), ("e", "goal", "x1"), ("f", "goal", "y"), ("g", "goal", "")]
    assert run(state_reward(**_batch(specs), judge=judge)) == [0.25, 0.25, None, 0.0]
    assert [g.candidates for g in judge.groups] == [("x1",), ("y",)]
    assert judge.ledger.last_batch_failures == {"parse_failure": 1}


# The Chat gate in the GRPO reward (issue 21): the data_source column decides it.
ASSISTANT = "Great question! I'd be happy to help you with that"


def test_reward_gates_chat_rollouts_written_as_the_assistant(server, make_judge) -> None:
    server.reply_fn = judge_reply_fn(lambda c, r: 0.5)
    specs = [("c", "response", "ugh still wrong"), ("c", "response", ASSISTANT)]
    specs += [("r", "response", "NTA honestly"), ("r", "response", ASSISTANT)]
    columns = {**_batch(specs), "data_source": ["wildchat", "wildchat", "reddit", "reddit"]}
    judge = make_judge()
    metrics: dict[str, float] = {}
    rewards = run(state_reward(**columns, judge=judge, log_metric=metrics.__setitem__))
    assert rewards == [0.5, 0.0, 0.5, 0.5]  # only the chat example is gated
    assert judge.ledger.calls == 2  # still one call per group
    gated = [r.prompt for r in server.chat_requests if "truth of c" in r.prompt]
    assert len(gated) == 1 and '"assistant_voice"' in gated[0]
    assert metrics["judge/assistant_voice_frac"] == 0.25
    assert metrics["judge/unscored_frac"] == 0.0  # gated is scored, never unscored


def test_reward_without_a_chat_source_logs_no_gate_metric(server, make_judge) -> None:
    server.reply_fn = judge_reply_fn(lambda c, r: 0.5)
    columns = {**_batch([("r", "goal", ASSISTANT)]), "data_source": ["reddit"]}
    metrics: dict[str, float] = {}
    assert run(state_reward(**columns, judge=make_judge(), log_metric=metrics.__setitem__)) == [0.5]
    assert "judge/assistant_voice_frac" not in metrics


def test_fake_judge_applies_the_gate_like_the_real_one() -> None:
    from humanlm.testing import FakeJudge

    judge = FakeJudge(0.5, voice=lambda candidate: candidate.startswith("Sure"))
    specs = [("c", "goal", "Sure, here it is"), ("c", "goal", "get the word")]
    columns = {**_batch(specs), "data_source": ["wildchat", "wildchat"]}
    assert run(state_reward(**columns, judge=judge)) == [0.0, 0.5]
    assert judge.groups[0].gated
    off = FakeJudge(0.5, voice=lambda candidate: True, chat_gate="off")
    assert run(state_reward(**columns, judge=off)) == [0.5, 0.5]
