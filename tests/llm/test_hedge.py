"""Hedged requests (``humanlm.llm.hedge``): a copy beside a stuck request; first answer wins."""

from __future__ import annotations

import time

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
    server.enqueue(faults.hang(3.0), faults.hang(3.0), faults.hang(3.0))
    judge = make_judge(hedge_after_s=0.4, max_retries=0, request_timeout_s=1.0, timeout_s=3.0)
    started = time.monotonic()
    verdict = judge_two(judge)
    assert verdict.scores == [None, None] and verdict.reason == "timeout"
    # Copies went out at 0.4 and 0.8 s and every request timed out on its own clock: the call
    # ended long before the server's 3 s hangs would have answered (a loose bound, so a busy
    # machine does not fail it).
    assert time.monotonic() - started < 2.9
    assert judge.ledger.hedges == 2 and judge.ledger.calls == 3 == len(server.chat_requests)


def test_a_quick_failure_is_retried_without_a_copy(server, make_judge) -> None:
    server.enqueue(faults.server_error(500), GOOD)
    judge = make_judge(hedge_after_s=0.5)
    assert judge_two(judge).scores == [0.3, 0.6]
    assert judge.ledger.hedges == 0 and judge.ledger.retries == {"server_error": 1}


def test_hedge_delay_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="hedge_after_s"):
        RetryPolicy(hedge_after_s=0)


def _client(server, **settings):
    from humanlm.llm.backends import OpenAIBackend
    from humanlm.llm.client import ChatClient

    limiter = settings.pop("limiter", None)
    output_guess = settings.pop("output_guess", 400)
    retry = RetryPolicy(
        timeout_s=20, request_timeout_s=10, backoff_s=0.05, backoff_max_s=0.1, **settings
    )
    backend = OpenAIBackend("m", api_key="k", base_url=server.base_url)
    return ChatClient(backend, name="t", retry=retry, limiter=limiter, output_guess=output_guess)


MESSAGES = [{"role": "user", "content": "q"}]


def test_when_both_fail_the_retry_still_waits_for_retry_after(server) -> None:
    from humanlm.testing import Reply

    # The first request is refused with Retry-After 0.3 s at about 0.5 s; its copies (sent at
    # 0.2 and 0.4 s) fail with a 500 at about 0.55 s and 0.5 s. The retry must not go out
    # before about 0.8 s.
    server.enqueue(
        Reply(status=429, headers={"Retry-After": "0.3"}, delay_s=0.5),
        Reply(status=500, delay_s=0.35),
        Reply(status=500, delay_s=0.1),
        Reply(content="fourth"),
    )
    client = _client(server, hedge_after_s=0.2, max_retries=2)
    answer = run(client.ask(MESSAGES))
    assert answer.ok and answer.value == "fourth"
    first, _, _, retry = server.chat_requests
    assert retry.received_at - first.received_at >= 0.5 + 0.3 - 0.02
    assert client.ledger.hedges == 2 and client.ledger.calls == 4


def test_a_copy_waiting_for_the_rate_limiter_is_dropped_when_the_request_answers(server) -> None:
    from humanlm.llm.limits import RateLimiter
    from humanlm.testing import Reply

    # The copy would have to wait about 30 s for tokens; the request answers at 0.5 s.
    server.enqueue(Reply(content="first", delay_s=0.5), Reply(content="copy"))
    limiter = RateLimiter(tpm=6000)
    client = _client(server, hedge_after_s=0.2, limiter=limiter, output_guess=3100)
    answer = run(client.ask(MESSAGES))
    assert answer.ok and answer.value == "first"
    assert len(server.chat_requests) == 1
    assert client.ledger.hedges == 0 and client.ledger.calls == 1


def test_hedge_quantile_must_lie_in_its_range() -> None:
    with pytest.raises(ConfigError, match="hedge_quantile"):
        RetryPolicy(hedge_quantile=1.0)


def test_by_quantile_the_copy_follows_the_latencies_seen(server) -> None:
    from humanlm.testing import Reply

    server.latency_s = 0.02
    server.reply_fn = lambda request: "ok"
    client = _client(server, hedge_quantile=0.95)

    async def answers(n):
        for _ in range(n):
            assert (await client.ask(MESSAGES)).ok

    # Fewer than 20 answers: no copy yet, however slow a request is.
    run(answers(19))
    server.enqueue(Reply(content="slow", delay_s=0.3))
    assert run(client.ask(MESSAGES)).value == "slow" and client.ledger.hedges == 0
    # From 20 answers on, a copy goes out after their 95th percentile (about 20 ms here; the
    # slowest of these answers may get copies too, which is what a quantile means).
    run(answers(10))
    server.latency_s = 0.0  # the copy answers at once
    server.enqueue(Reply(content="stuck", delay_s=5.0), Reply(content="copy"))
    before = client.ledger.hedges
    started = time.monotonic()
    answer = run(client.ask(MESSAGES))
    assert answer.value == "copy" and client.ledger.hedges == before + 1
    assert time.monotonic() - started < 4.0  # not the stuck reply's 5 s


def test_copies_in_flight_are_capped_by_concurrency(server) -> None:
    import asyncio

    from humanlm.llm.client import ChatClient
    from humanlm.testing import Reply

    server.latency_s = 0.05
    client = _client(server, hedge_after_s=0.1, max_retries=0)
    capped = ChatClient(client.backend, name="t", retry=client.retry, concurrency=8)
    # Both requests are stuck at 0.1 s. With 8 slots one copy may be in flight: the first
    # copy goes out at once, the second only once the first has answered (checked again
    # after another 0.1 s).
    server.enqueue(
        Reply(content="a", delay_s=0.6), Reply(content="b", delay_s=0.6), "copy", "copy2"
    )

    async def both():
        return await asyncio.gather(capped.ask(MESSAGES), capped.ask(MESSAGES))

    assert sorted(answer.value for answer in run(both())) == ["copy", "copy2"]
    first, _, copy, copy2 = server.chat_requests
    assert copy.received_at - first.received_at < 0.17
    assert copy2.received_at - first.received_at >= 0.19
    assert capped.ledger.hedges == 2 and capped.hedger.copies_in_flight == 0


def test_a_failed_copy_is_retried_without_waiting_for_the_stuck_request(server) -> None:
    server.enqueue(faults.hang(5.0), faults.server_error(500), "third")
    client = _client(server, hedge_after_s=0.2, max_retries=2)
    started = time.monotonic()
    answer = run(client.ask(MESSAGES))
    assert answer.ok and answer.value == "third"
    assert time.monotonic() - started < 3.0  # not the stuck request's 10 s timeout
    assert client.ledger.hedges == 1 and client.ledger.retries == {"server_error": 1}
    assert client.ledger.calls == 3 == len(server.chat_requests)


def test_a_young_copy_is_waited_for_when_the_request_fails(server) -> None:
    from humanlm.testing import Reply

    # The request fails at 0.3 s; its copy (sent at 0.2 s) answers at 0.35 s: no retry.
    server.enqueue(Reply(status=500, delay_s=0.3), Reply(content="copy", delay_s=0.15))
    client = _client(server, hedge_after_s=0.2, max_retries=2)
    answer = run(client.ask(MESSAGES))
    assert answer.ok and answer.value == "copy"
    assert client.ledger.calls == 2 == len(server.chat_requests)
    assert client.ledger.retries == {"server_error": 1} and client.ledger.hedges == 1


def test_the_judge_block_carries_the_copy_settings() -> None:
    from humanlm.config import JudgeConfig
    from humanlm.judge import build_judge

    cfg = JudgeConfig(spec="openai:m@http://127.0.0.1:9/v1", hedge_after_s=0.1, hedge_quantile=0.9)
    judge = build_judge(cfg)
    assert (judge.client.retry.hedge_after_s, judge.client.retry.hedge_quantile) == (0.1, 0.9)


def test_a_copy_refused_for_rate_does_not_give_up_its_request(server) -> None:
    from humanlm.testing import Reply

    # The request answers at 0.5 s; its copy (sent at 0.1 s) is refused with a 429 at once.
    server.enqueue(Reply(content="first", delay_s=0.5), faults.rate_limited(0.05))
    client = _client(server, hedge_after_s=0.1, max_retries=0)
    answer = run(client.ask(MESSAGES))
    assert answer.ok and answer.value == "first"
    assert client.ledger.hedges == 1 and len(server.chat_requests) == 2


def test_a_copy_not_sent_gives_its_limiter_reservation_back(server) -> None:
    from humanlm.llm.limits import RateLimiter
    from humanlm.testing import Reply

    # The copy would wait about 2 s for tokens; the request answers at 0.5 s meanwhile.
    server.enqueue(Reply(content="first", delay_s=0.5, usage=(100, 0)))
    limiter = RateLimiter(rpm=6, tpm=6000)
    client = _client(server, hedge_after_s=0.2, limiter=limiter, output_guess=3100)
    assert run(client.ask(MESSAGES)).value == "first"
    assert client.ledger.hedges == 0 and len(server.chat_requests) == 1
    # Left charged: the one request sent and its 100 tokens, not the copy's reservation too.
    assert limiter._requests.level == pytest.approx(6 - 1, abs=0.2)
    assert limiter._tokens.level == pytest.approx(6000 - 100, abs=100)
