"""The LLM judge against the real scripted server: every injected fault, alignment by number,
economy rules, bounded time, unscored instead of zero."""

from __future__ import annotations

import json
import time

import pytest

from humanlm.errors import JudgeUnavailableError
from humanlm.testing import Reply, faults
from humanlm.testing.judge_replies import (
    aspects_reply,
    candidates_in,
    group_reply,
    judge_reply_fn,
)

from .conftest import CONTEXT, TRUTH, run

GOOD = group_reply({"1": 0.3, "2": 0.6})


def judge_two(judge, **kw):
    return run(
        judge.judge_group(
            context=CONTEXT, ground_truth=TRUTH, state="stance", candidates=["a", "b"], **kw
        )
    )


RECOVERABLE = [
    (faults.rate_limited(0.05), "rate_limited"),
    (faults.server_error(500), "server_error"),
    (faults.server_error(503), "server_error"),
    (faults.hang(3.0), "timeout"),
    (faults.disconnect(), "connection_error"),
    (faults.empty(), "empty"),
    (faults.null_content(), "empty"),
    (faults.truncated(GOOD), "parse_failure"),
    (Reply(content=group_reply({"1": 0.3})), "wrong_count"),
    (Reply(content=group_reply({"1": 0.3, "2": 0.6, "3": 0.1})), "wrong_count"),
]


@pytest.mark.parametrize(("fault", "recorded"), RECOVERABLE, ids=[r for _, r in RECOVERABLE])
def test_fault_then_good_reply_is_scored(server, make_judge, fault, recorded) -> None:
    server.enqueue(fault, GOOD)
    judge = make_judge(request_timeout_s=0.3)
    started = time.monotonic()
    verdict = judge_two(judge)
    assert time.monotonic() - started < 2.0
    assert verdict.scores == [0.3, 0.6] and verdict.reason == "ok"
    assert verdict.calls == 2 == len(server.chat_requests) == judge.ledger.calls
    assert judge.ledger.retries == {recorded: 1}
    assert judge.ledger.failures == {}


TOLERATED = [
    group_reply({"1": 0.3, "2": 0.6}, fence=True, prose=True),  # code fence with prose
    group_reply({"1": 0.3, "2": 0.6}, reverse=True),  # reversed keys
    group_reply({"1": 0.3, "2": 0.6}, as_strings=True),  # scores as strings
    group_reply({"1": 0.3, "2": 0.6}, trailing_comma=True),  # trailing comma
]


@pytest.mark.parametrize("reply", TOLERATED)
def test_tolerated_replies_need_no_retry(server, make_judge, reply) -> None:
    server.enqueue(reply)
    judge = make_judge()
    assert judge_two(judge).scores == [0.3, 0.6]
    assert judge.ledger.calls == 1 and not judge.ledger.retries


PERSISTENT = [
    (faults.rate_limited(0.01), "transport_error"),
    (faults.server_error(), "transport_error"),
    (faults.disconnect(), "transport_error"),
    (faults.hang(5.0), "timeout"),
    (faults.empty(), "empty"),
    (faults.truncated(GOOD), "parse_failure"),
    (Reply(content=group_reply({"1": 0.3})), "wrong_count"),
    (Reply(content=group_reply({"1": 40, "2": 60})), "off_scale"),
]


@pytest.mark.parametrize(("fault", "reason"), PERSISTENT, ids=[r for _, r in PERSISTENT])
def test_persistent_fault_leaves_group_unscored_not_zero(server, make_judge, fault, reason):
    server.reply_fn = lambda request: fault
    judge = make_judge(request_timeout_s=0.2, max_retries=2)
    started = time.monotonic()
    verdict = judge_two(judge)
    assert time.monotonic() - started < 3.0
    assert verdict.scores == [None, None]
    assert verdict.reason == reason and verdict.reasons == [reason, reason]
    assert judge.ledger.failures == {reason: 1}
    assert judge.ledger.calls == 3 == len(server.chat_requests)


def test_overall_deadline_bounds_a_hanging_server(server, make_judge) -> None:
    server.reply_fn = lambda request: faults.hang(10.0)
    judge = make_judge(timeout_s=0.5, request_timeout_s=5.0, max_retries=10)
    started = time.monotonic()
    verdict = judge_two(judge)
    assert time.monotonic() - started < 1.5
    assert verdict.scores == [None, None] and verdict.reason == "timeout"


def test_retry_after_is_honoured(server, make_judge) -> None:
    server.enqueue(faults.rate_limited(0.4), GOOD)
    judge = make_judge(backoff_s=0.001, backoff_max_s=0.001)
    assert judge_two(judge).scores == [0.3, 0.6]
    first, second = server.chat_requests
    assert second.received_at - first.received_at >= 0.39


def test_retry_after_beyond_the_deadline_gives_up_at_once(server, make_judge) -> None:
    server.reply_fn = lambda request: faults.rate_limited(30.0)
    judge = make_judge(timeout_s=2.0)
    started = time.monotonic()
    verdict = judge_two(judge)
    assert time.monotonic() - started < 1.0
    assert verdict.reason == "transport_error" and verdict.scores == [None, None]


def test_rejected_request_is_not_retried(server, make_judge) -> None:
    server.reply_fn = lambda request: Reply(status=400)
    judge = make_judge()
    verdict = judge_two(judge)
    assert verdict.reason == "rejected"
    # one ask as structured output, one plain (the server may just not know response_format)
    assert ["response_format" in r.body for r in server.chat_requests] == [True, False]
    judge_two(judge)
    assert len(server.chat_requests) == 3  # later calls go plain at once, and are not retried


def test_bad_credentials_raise_without_the_key(server, make_judge, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-123")
    server.reply_fn = lambda request: Reply(status=401)
    judge = make_judge()
    with pytest.raises(JudgeUnavailableError) as info:
        judge_two(judge)
    assert "SECRET" not in str(info.value) and "401" in str(info.value)
    assert server.chat_requests[0].headers["authorization"] == "Bearer sk-test-SECRET-123"


def test_scores_follow_candidate_numbers_not_reply_order(server, make_judge) -> None:
    server.enqueue(group_reply({"3": 0.9, "1": 0.1, "2": 0.5}))
    verdict = run(
        make_judge().judge_group(
            context=CONTEXT, ground_truth=TRUTH, state="stance", candidates=["x", "y", "z"]
        )
    )
    assert verdict.scores == [0.1, 0.5, 0.9]
    assert [v.thought for v in verdict.verdicts] == [f"candidate {k} judged" for k in "123"]


def test_identical_candidates_are_judged_once(server, make_judge) -> None:
    server.enqueue(group_reply({"1": 0.2, "2": 0.7}))
    verdict = run(
        make_judge().judge_group(
            context=CONTEXT,
            ground_truth=TRUTH,
            state="stance",
            candidates=["sides with OP", "blames OP", "sides with OP", " sides with OP\n"],
        )
    )
    (request,) = server.chat_requests
    assert candidates_in(request.prompt) == {"1": "sides with OP", "2": "blames OP"}
    assert verdict.scores == [0.2, 0.7, 0.2, 0.2]


def test_empty_candidates_score_zero_without_a_call(server, make_judge) -> None:
    judge = make_judge()
    verdict = run(
        judge.judge_group(context=CONTEXT, ground_truth=TRUTH, state="goal", candidates=["", None])
    )
    assert verdict.scores == [0.0, 0.0] and verdict.reason == "bad_format"
    assert server.chat_requests == [] and judge.ledger.calls == 0 and judge.ledger.no_call == 1


def test_exact_copy_beats_the_best_without_being_sent(server, make_judge) -> None:
    server.enqueue(group_reply({"1": 0.4, "2": 0.95}))
    verdict = run(
        make_judge().judge_group(
            context=CONTEXT, ground_truth=TRUTH, state="response", candidates=["a", TRUTH, "b", ""]
        )
    )
    assert candidates_in(server.chat_requests[0].prompt) == {"1": "a", "2": "b"}
    assert verdict.scores == [0.4, 1.0, 0.95, 0.0]
    assert verdict.reasons == ["ok", "exact_copy", "ok", "bad_format"]


def test_exact_copy_gets_best_plus_a_tenth(server, make_judge) -> None:
    server.enqueue(group_reply({"1": 0.4}))
    verdict = run(
        make_judge().judge_group(
            context=CONTEXT, ground_truth=TRUTH, state="response", candidates=[f" {TRUTH} ", "a"]
        )
    )
    assert verdict.scores == pytest.approx([0.5, 0.4])


def test_all_copies_score_one_without_a_call(server, make_judge) -> None:
    verdict = run(
        make_judge().judge_group(
            context=CONTEXT, ground_truth=TRUTH, state="response", candidates=[TRUTH, TRUTH]
        )
    )
    assert verdict.scores == [1.0, 1.0] and server.chat_requests == []


def test_exact_copy_is_unscored_when_the_judge_fails(server, make_judge) -> None:
    server.reply_fn = lambda request: faults.empty()
    verdict = run(
        make_judge(max_retries=0).judge_group(
            context=CONTEXT, ground_truth=TRUTH, state="response", candidates=[TRUTH, "a", ""]
        )
    )
    assert verdict.scores == [None, None, 0.0]


def test_one_call_per_group_with_judgeable_candidates(server, make_judge) -> None:
    import asyncio

    server.reply_fn = judge_reply_fn()
    judge = make_judge()
    groups = [["a", "b"], ["", ""], [TRUTH], ["c", "c", "d"], ["e"]]

    async def all_groups():
        return await asyncio.gather(
            *(
                judge.judge_group(context=CONTEXT, ground_truth=TRUTH, state="value", candidates=g)
                for g in groups
            )
        )

    verdicts = run(all_groups())
    # A latent state that copies the real reply is judged (the copy bonus is the response's).
    assert judge.ledger.calls == 4 == len(server.chat_requests)
    assert judge.ledger.groups == 5 and judge.ledger.no_call == 1
    assert all(v.is_scored for v in verdicts)
    assert judge.ledger.input_tokens > 0 and judge.ledger.output_tokens > 0


def test_concurrency_is_bounded(server, make_judge) -> None:
    import asyncio

    server.reply_fn = judge_reply_fn()
    server.latency_s = 0.4  # long enough for every allowed request to be in flight at once

    async def six(judge):
        await asyncio.gather(
            *(
                judge.judge_group(
                    context=CONTEXT, ground_truth=TRUTH, state="goal", candidates=[f"c{i}"]
                )
                for i in range(6)
            )
        )

    for concurrency in (2, 6):
        server.peak_in_flight = 0
        run(six(make_judge(concurrency=concurrency)))
        assert server.peak_in_flight == concurrency  # never more, and the limit is used


def test_sampling_parameters_are_sent(server, make_judge) -> None:
    server.enqueue(GOOD)
    judge_two(make_judge(temperature=0.0, max_tokens=300))
    body = server.chat_requests[0].body
    assert body["temperature"] == 0.0 and body["max_tokens"] == 300
    assert body["model"] == "judge-model"


def test_judge_works_across_event_loops(server, make_judge) -> None:
    server.reply_fn = judge_reply_fn()
    judge = make_judge()
    for _ in range(2):  # asyncio.run makes a new loop each time
        assert judge_two(judge).is_scored


def test_aspects_scores_every_state_in_one_call(server, make_judge) -> None:
    server.enqueue(aspects_reply({"stance": 0.4, "emotion": 0.3}, as_strings=True))
    judge = make_judge()
    verdict = run(
        judge.judge_aspects(
            context=CONTEXT, ground_truth=TRUTH, response="NTA", states=("stance", "emotion")
        )
    )
    assert verdict.scores == {"stance": 0.4, "emotion": 0.3} and verdict.reason == "ok"
    assert verdict.verdicts["stance"].prompt_version.startswith("judge-aspects-v")
    assert judge.ledger.calls == 1


def test_aspects_failure_is_unscored_and_shortcuts_need_no_call(server, make_judge) -> None:
    server.reply_fn = lambda request: Reply(content=aspects_reply({"stance": 0.4}))
    judge = make_judge(max_retries=1)
    failed = run(judge.judge_aspects(context=CONTEXT, ground_truth=TRUTH, response="NTA"))
    assert set(failed.scores.values()) == {None} and failed.reason == "wrong_count"
    assert len(failed.scores) == 6
    empty = run(judge.judge_aspects(context=CONTEXT, ground_truth=TRUTH, response="  "))
    copy = run(judge.judge_aspects(context=CONTEXT, ground_truth=TRUTH, response=TRUTH))
    assert set(empty.scores.values()) == {0.0} and empty.reason == "bad_format"
    assert set(copy.scores.values()) == {1.0} and copy.reason == "exact_copy"
    assert len(server.chat_requests) == 2


@pytest.mark.parametrize(
    ("body", "recorded"),
    [("this is not json", ("server_error",)), ("{}", ("empty",))],
)
def test_a_malformed_http_body_is_retried(server, make_judge, body, recorded) -> None:
    server.enqueue(Reply(body=body), GOOD)
    judge = make_judge()
    assert judge_two(judge).scores == [0.3, 0.6]
    (reason,) = judge.ledger.retries
    assert reason in recorded


def test_judge_asks_for_a_json_object(server, make_judge) -> None:
    server.reply_fn = judge_reply_fn()
    verdict = run(
        make_judge().judge_group(
            context=CONTEXT, ground_truth=TRUTH, state="goal", candidates=["a"]
        )
    )
    assert verdict.verdicts[0].score is not None
    assert server.chat_requests[0].body["response_format"] == {"type": "json_object"}


def test_a_server_without_structured_output_is_asked_again_without_it(server, make_judge) -> None:
    scores = judge_reply_fn()

    def reply(request):
        if "response_format" in request.body:
            return Reply(status=400)
        return scores(request)

    server.reply_fn = reply
    judge = make_judge()
    for candidate in ("a", "b"):
        verdict = run(
            judge.judge_group(
                context=CONTEXT, ground_truth=TRUTH, state="goal", candidates=[candidate]
            )
        )
        assert verdict.verdicts[0].score is not None
    with_format = ["response_format" in r.body for r in server.chat_requests]
    assert with_format == [True, False, False]  # refused once, then never sent again


def _openai_judge(server, model: str, **settings):
    from humanlm.judge import JudgeConfig, build_judge

    limits = {"timeout_s": 3.0, "request_timeout_s": 1.0, "max_retries": 3, "backoff_s": 0.01}
    return build_judge(JudgeConfig(f"openai:{model}@{server.base_url}", **{**limits, **settings}))


def test_the_paper_train_judge_scores_under_openai_rules(server) -> None:
    # issue 21: gpt-5-mini at temperature 1 with the 4096-token limit was refused on every call.
    server.reply_fn = judge_reply_fn()
    judge = _openai_judge(server, "gpt-5-mini", temperature=1.0, max_tokens=4096)
    verdict = judge_two(judge)
    assert verdict.reason == "ok" and None not in verdict.scores
    assert server.refused == 0
    (body,) = (r.body for r in server.chat_requests)
    assert body["max_completion_tokens"] == 4096 and body["temperature"] == 1.0
    assert "max_tokens" not in body and body["response_format"] == {"type": "json_object"}
    assert judge.params == {"temperature": 1.0, "max_completion_tokens": 4096}  # as sent


def test_a_reasoning_eval_judge_at_temperature_0_is_sent_its_only_temperature(server) -> None:
    # issue 21: the eval judge's temperature 0 is refused by reasoning models; it is left out.
    server.reply_fn = judge_reply_fn()
    judge = _openai_judge(server, "o4-mini", temperature=0.0, max_tokens=300)
    assert judge_two(judge).reason == "ok" and server.refused == 0
    assert "temperature" not in server.chat_requests[0].body
    assert judge.params == {"max_completion_tokens": 300}


def test_a_refused_field_is_asked_once_and_its_reason_kept(server, make_judge, caplog) -> None:
    # issue 21: a 400 naming a field is neither retried nor taken for a refused response_format;
    # the verdict is unscored ("rejected") and the server's message reaches the log and ledger.
    message = "Unsupported value: 'reasoning_effort' does not support 'max' with this model."
    error = {"message": message, "type": "invalid_request_error", "param": "reasoning_effort"}
    server.reply_fn = lambda request: Reply(status=400, body=json.dumps({"error": error}))
    judge = make_judge()
    verdict = judge_two(judge)
    assert verdict.reason == "rejected" and verdict.scores == [None, None]
    assert len(server.chat_requests) == 1 and "response_format" in server.chat_requests[0].body
    assert judge.ledger.failures == {"rejected": 1} and judge.ledger.calls == 1
    assert judge.ledger.last_refusal == message
    assert message in judge.ledger.summary() and judge.ledger.to_dict()["last_refusal"] == message
    assert any(message in r.getMessage() for r in caplog.records)


# The Chat gate (issue 21): one call per group; the assistant's voice scores 0, counted apart.
USER_REPLY = "ugh no, i said the word sounds like tach"
ASSISTANT_REPLY = "Great question! I'd be happy to help you find words that sound like tach."


def judge_chat(judge, source, **kw):
    return run(
        judge.judge_group(
            context=CONTEXT,
            ground_truth=TRUTH,
            state="response",
            candidates=[USER_REPLY, ASSISTANT_REPLY, USER_REPLY],
            source=source,
            **kw,
        )
    )


@pytest.mark.parametrize(
    ("setting", "source", "gated"),
    [
        ("auto", "wildchat", True),
        ("auto", "reddit", False),
        ("auto", None, False),
        ("off", "wildchat", False),
        ("on", "reddit", True),
    ],
)
def test_chat_gate_in_the_group_call(server, make_judge, setting, source, gated) -> None:
    server.reply_fn = judge_reply_fn(score=lambda candidate, real: 0.5)
    judge = make_judge(chat_gate=setting)
    verdict = judge_chat(judge, source)
    assert len(server.chat_requests) == 1 == verdict.calls
    assert ('"assistant_voice"' in server.chat_requests[0].prompt) == gated
    if gated:
        assert verdict.scores == [0.5, 0.0, 0.5]
        assert verdict.reasons == ["ok", "assistant_voice", "ok"]
        assert verdict.verdicts[0].prompt_version.endswith("+gate1")
    else:
        assert verdict.scores == [0.5, 0.5, 0.5] and set(verdict.reasons) == {"ok"}
    assert verdict.is_scored and judge.ledger.failures == {}


def test_a_gated_reply_without_the_field_is_retried_not_zero(server, make_judge) -> None:
    server.enqueue(
        group_reply({"1": 0.5, "2": 0.5}),
        group_reply({"1": 0.5, "2": 0.5}, assistant_voice={"1": False, "2": True}),
    )
    judge = make_judge()
    verdict = judge_chat(judge, "wildchat")
    assert verdict.scores == [0.5, 0.0, 0.5] and verdict.calls == 2
    assert judge.ledger.retries == {"parse_failure": 1}


def test_the_gate_answer_comes_back_from_the_cache(server, make_judge, tmp_path) -> None:
    server.reply_fn = judge_reply_fn(score=lambda candidate, real: 0.5)
    cache = str(tmp_path / "cache.sqlite")
    first = judge_chat(make_judge(cache=cache), "wildchat")
    again = judge_chat(make_judge(cache=cache), "wildchat")
    assert again.cached and again.calls == 0 and len(server.chat_requests) == 1
    assert again.scores == first.scores == [0.5, 0.0, 0.5]
    assert again.reasons == first.reasons
