"""One example's record: format check, judge verdicts, unscored vs. bad-format zero."""

from __future__ import annotations

import asyncio

import pytest

from humanlm.eval.scoring import SimilarityBatcher, score_example
from humanlm.generate import Generation
from humanlm.judge import JudgeConfig, build_judge
from humanlm.testing import FakeJudge

EXAMPLE = {
    "example_id": "ex1",
    "data_source": "reddit",
    "user_id": "u1",
    "post_id": "p1",
    "turn_id": 1,
    "messages": [{"role": "user", "name": "OP", "content": "AITA for keeping the deposit?"}],
    "ground_truth": "NTA, she owes you.",
}


def score(text, judge, **kwargs):
    return asyncio.run(
        score_example(EXAMPLE, Generation(text), judge=judge, similarity=None, **kwargs)
    )


def test_valid_output_is_judged():
    judge = FakeJudge(0.5)
    rec = score("plan</think>\n\n<response>NTA.</response>", judge)
    assert rec["valid_format"] is True and rec["response"] == "NTA." and rec["thinking"] == "plan"
    assert rec["scores"] == {"valid_format": 1.0, "response_alignment": 0.5, "state_alignment": 0.5}
    assert set(rec["state_scores"]) == {
        "stance",
        "emotion",
        "belief",
        "value",
        "goal",
        "communication",
    }
    verdict = rec["verdicts"]["response_alignment"]
    assert (verdict["reason"], verdict["judge"], verdict["prompt_version"]) == (
        "ok",
        "fake",
        "fake-v1",
    )
    assert [g.state for g in judge.groups] == ["response"]
    assert rec["schema_version"] == 2 and rec["user_id"] == "u1" and rec["post_id"] == "p1"


@pytest.mark.parametrize(
    "text",
    [
        "NTA.",  # no tags
        "plan</think>\n\nNTA.",  # no tags after the thinking block
        "Sure, here it is: <response>NTA.</response>",  # a sentence before the tags
        "<response>NTA.</response> and more",  # text after the tag
        "<think>plan</think><response>NTA.",  # cut off before the closing tag
    ],
)
def test_a_reply_outside_the_format_is_judged_like_the_tagged_one(text):
    judge = FakeJudge(lambda candidate, truth, state: 0.7 if candidate == "NTA." else 0.1)
    tagged = score("<response>NTA.</response>", judge)
    loose = score(text, judge)
    assert loose["valid_format"] is False and loose["strict_response"] is None
    assert loose["response"] == "NTA."
    assert loose["scores"]["response_alignment"] == tagged["scores"]["response_alignment"] == 0.7
    assert loose["scores"]["state_alignment"] == tagged["scores"]["state_alignment"]
    assert loose["scores"]["valid_format"] == 0.0 and tagged["scores"]["valid_format"] == 1.0
    assert [g.state for g in judge.groups] == ["response", "response"]


@pytest.mark.parametrize(
    "text",
    [
        "<response></response>",  # empty reply
        "",  # nothing at all
        "<think>only a plan, cut off",  # nothing after the thinking
        "plan</think>\n\n<response>  </response>",  # blank reply
    ],
)
def test_an_empty_extraction_is_a_real_zero_without_a_judge_call(text):
    judge = FakeJudge(0.9)
    rec = score(text, judge)
    assert rec["valid_format"] is False and rec["response"] is None
    assert rec["scores"]["response_alignment"] == 0.0
    assert rec["verdicts"]["response_alignment"]["reason"] == "bad_format"
    assert rec["scores"]["state_alignment"] == 0.0
    assert judge.groups == []  # nothing to judge: no judge call


def test_judge_failure_is_unscored_not_zero():
    rec = score("<response>NTA.</response>", FakeJudge(lambda c, t, s: None))
    assert rec["scores"]["response_alignment"] is None
    assert rec["scores"]["state_alignment"] is None
    assert rec["verdicts"]["response_alignment"]["reason"] == "parse_failure"


def test_simulator_failure_leaves_everything_unscored():
    rec = asyncio.run(
        score_example(
            EXAMPLE, Generation(None, error="timeout"), judge=FakeJudge(), similarity=None
        )
    )
    assert rec["error"] == "simulator: timeout"
    assert rec["scores"] == {} and rec["valid_format"] is None


def test_aspects_can_be_switched_off():
    rec = score("<response>NTA.</response>", FakeJudge(0.5), aspects=False)
    assert "state_alignment" not in rec["scores"] and rec["state_scores"] == {}


def test_batched_similarity_equals_the_embedding_judge():
    embedder = build_judge(JudgeConfig("embedding:minilm"))
    responses = ["NTA, she owes you money.", "YTA honestly", "", "NTA, she owes you."]

    async def go():
        batcher = SimilarityBatcher(embedder)
        try:
            batched = await asyncio.gather(
                *(
                    batcher.score(context=[], ground_truth=EXAMPLE["ground_truth"], response=r)
                    for r in responses
                )
            )
        finally:
            batcher.close()
        single = await embedder.judge_group(
            context=[],
            ground_truth=EXAMPLE["ground_truth"],
            state="response",
            candidates=responses[:2],
        )
        return batched, single

    batched, single = asyncio.run(go())
    assert [b["score"] for b in batched[:2]] == pytest.approx(single.scores, abs=1e-4)
    assert (batched[2]["score"], batched[2]["reason"]) == (0.0, "bad_format")
    assert (batched[3]["score"], batched[3]["reason"]) == (1.0, "exact_copy")
    assert batched[0]["judge"] == "embedding:minilm"


def test_similarity_batching_leaves_the_process_torch_threads_alone():
    # torch's thread count is process-wide (a thread started later takes the last value set by
    # any thread): a batcher that lowered it for its encoding thread would change the speed and
    # numerics of everything else in the process.
    import threading

    import torch

    embedder = build_judge(JudgeConfig("embedding:minilm"))
    before = torch.get_num_threads()
    torch.set_num_threads(5)  # a count the batcher would never pick for itself

    async def go():
        batcher = SimilarityBatcher(embedder)
        try:
            return await batcher.score(
                context=[], ground_truth=EXAMPLE["ground_truth"], response="NTA, she owes."
            )
        finally:
            batcher.close()

    seen = []
    try:
        record = asyncio.run(go())
        later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        later.start()
        later.join()
    finally:
        torch.set_num_threads(before)
    assert record["reason"] == "ok"
    assert seen == [5]


# The Chat gate in evaluation (issue 21): a wildchat reply written as the assistant scores 0 on
# both alignment metrics, counted as assistant_voice; other sources and chat_gate off are not gated.
CHAT = {**EXAMPLE, "example_id": "chat1", "data_source": "wildchat"}
ASSISTANT = "<response>Great question! I'd be happy to help you with that.</response>"


class CountingJudge(FakeJudge):
    """A FakeJudge that also counts its aspects calls."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.aspects_calls = 0

    async def judge_aspects(self, **kwargs):
        self.aspects_calls += 1
        return await super().judge_aspects(**kwargs)


def score_chat(text, judge, example=CHAT):
    return asyncio.run(score_example(example, Generation(text), judge=judge, similarity=None))


@pytest.mark.parametrize(
    ("example", "setting", "gated"),
    [(CHAT, "auto", True), (EXAMPLE, "auto", False), (CHAT, "off", False), (EXAMPLE, "on", True)],
)
def test_the_chat_gate_zeroes_both_alignments(example, setting, gated):
    judge = CountingJudge(0.6, chat_gate=setting)
    rec = score_chat(ASSISTANT, judge, example)
    if gated:
        assert rec["scores"]["response_alignment"] == rec["scores"]["state_alignment"] == 0.0
        assert rec["verdicts"]["response_alignment"]["reason"] == "assistant_voice"
        assert rec["verdicts"]["state_alignment"]["reason"] == "assistant_voice"
        assert set(rec["state_scores"].values()) == {0.0}
        assert judge.aspects_calls == 0  # decided by the response judge's call
    else:
        assert rec["scores"]["response_alignment"] == rec["scores"]["state_alignment"] == 0.6
        assert judge.aspects_calls == 1


def test_a_chat_reply_written_as_the_user_passes_the_gate():
    judge = CountingJudge(0.6)
    rec = score_chat("<response>no i meant the word that sounds like tach</response>", judge)
    assert rec["scores"]["response_alignment"] == rec["scores"]["state_alignment"] == 0.6
    assert rec["verdicts"]["response_alignment"]["reason"] == "ok"
    assert judge.groups[0].gated and judge.aspects_calls == 1


def test_when_the_gate_cannot_be_decided_state_alignment_stays_unscored():
    judge = CountingJudge(lambda candidate, truth, state: None)  # the response judge fails
    rec = score_chat("<response>no i meant tach</response>", judge)
    assert rec["scores"]["response_alignment"] is None
    assert rec["scores"]["state_alignment"] is None
    assert rec["verdicts"]["state_alignment"]["reason"] == "parse_failure"
    assert judge.aspects_calls == 0
