"""The chat client's hedged requests: a copy beside a stuck request, counted, first answer wins."""

from __future__ import annotations

import pytest

from humanlm.errors import ConfigError
from humanlm.llm.limits import RetryPolicy
from humanlm.testing import faults
from humanlm.testing.judge_replies import group_reply
from tests.judge.conftest import CONTEXT, TRUTH, run

GOOD = group_reply({"1": 0.3, "2": 0.6})


def judge_two(judge):
    return run(
        judge.judge_group(
            context=CONTEXT, ground_truth=TRUTH, state="stance", candidates=["a", "b"]
        )
    )


def test_a_stuck_request_gets_a_copy_and_the_copy_answers(server, make_judge) -> None:
    server.enqueue(faults.hang(3.0), GOOD)
    judge = make_judge(hedge_after_s=0.2, max_retries=0)
    verdict = judge_two(judge)
    assert verdict.scores == [0.3, 0.6] and verdict.reason == "ok"
    # The stuck request was cancelled, not timed out and retried: no retry is recorded.
    assert judge.ledger.hedges == 1 and judge.ledger.retries == {}
    assert judge.ledger.calls == 2 == len(server.chat_requests)


def test_a_prompt_answer_sends_no_copy(server, make_judge) -> None:
    server.enqueue(GOOD)
    judge = make_judge(hedge_after_s=0.5)
    assert judge_two(judge).scores == [0.3, 0.6]
    assert judge.ledger.hedges == 0 and judge.ledger.calls == 1 == len(server.chat_requests)


def test_when_both_copies_fail_the_call_fails_as_usual(server, make_judge) -> None:
    server.enqueue(faults.hang(3.0), faults.hang(3.0))
    judge = make_judge(hedge_after_s=0.2, max_retries=0, request_timeout_s=0.5, timeout_s=2.0)
    verdict = judge_two(judge)
    assert verdict.scores == [None, None] and verdict.reason == "timeout"
    assert judge.ledger.hedges == 1 and judge.ledger.retries == {"timeout": 2}
    assert judge.ledger.calls == 2 == len(server.chat_requests)


def test_a_quick_failure_is_retried_without_a_copy(server, make_judge) -> None:
    server.enqueue(faults.server_error(500), GOOD)
    judge = make_judge(hedge_after_s=0.5)
    assert judge_two(judge).scores == [0.3, 0.6]
    assert judge.ledger.hedges == 0 and judge.ledger.retries == {"server_error": 1}


def test_hedge_delay_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="hedge_after_s"):
        RetryPolicy(hedge_after_s=0)
