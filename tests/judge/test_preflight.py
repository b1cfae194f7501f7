"""``check_judge``: one small judgement before training; a refused request stops the run."""

from __future__ import annotations

import json

import pytest

from humanlm.errors import JudgeUnavailableError
from humanlm.judge import JudgeConfig, build_judge, check_judge
from humanlm.testing import Reply, faults
from humanlm.testing.judge_replies import judge_reply_fn

SECRET = "sk-test-SECRET-preflight-123"


def refusal(message: str, param: str) -> Reply:
    error = {"message": message, "type": "invalid_request_error", "param": param}
    return Reply(status=400, body=json.dumps({"error": error}))


def test_a_judge_that_takes_the_request_passes_after_one_uncached_request(
    server, make_judge, tmp_path
) -> None:
    server.reply_fn = judge_reply_fn()
    judge = make_judge(cache=tmp_path / "cache.sqlite")
    check_judge(judge)
    check_judge(judge)
    assert len(server.chat_requests) == 2  # never answered from the cache
    assert judge.ledger.calls == 2 and judge.ledger.unscored == 0


def test_the_paper_judge_passes_against_openai_rules(server) -> None:
    # issue 21: the presets' judge (gpt-5-mini, temperature 1, 4096 tokens) was refused.
    server.reply_fn = judge_reply_fn()
    check_judge(
        build_judge(
            JudgeConfig(f"openai:gpt-5-mini@{server.base_url}", temperature=1.0, max_tokens=4096)
        )
    )
    assert server.refused == 0 and len(server.chat_requests) == 1


def test_a_refused_request_stops_with_the_servers_reason_and_no_key(
    server, make_judge, monkeypatch
) -> None:
    # issue 21: a request shape the server refuses stops before training, saying why.
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server.reply_fn = lambda request: refusal(
        f"Unsupported parameter: 'seed' is not supported with this model ({SECRET}).", "seed"
    )
    with pytest.raises(JudgeUnavailableError) as info:
        check_judge(make_judge())
    message = str(info.value)
    assert "judge openai:judge-model@" in message and "before training" in message
    assert "Unsupported parameter: 'seed' is not supported with this model" in message
    assert SECRET not in message and "SECRET" not in message
    assert len(server.chat_requests) == 1  # refused once: not retried, not re-sent plain


@pytest.mark.parametrize(
    "fault",
    [lambda: faults.server_error(500), faults.empty],
    ids=["500", "empty-reply"],
)
def test_failures_a_retry_may_heal_do_not_stop_the_run(server, make_judge, fault, caplog) -> None:
    server.reply_fn = lambda request: fault()
    judge = make_judge(max_retries=1)
    check_judge(judge)  # no exception: the unscored guards watch the steps
    assert judge.ledger.unscored == 1
    assert any("first request went unscored" in r.getMessage() for r in caplog.records)


def test_a_judge_without_requests_is_not_asked(server) -> None:
    judge = build_judge(JudgeConfig("embedding:minilm"))
    check_judge(judge)
    assert judge.ledger.groups == 0
