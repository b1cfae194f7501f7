"""The offline embedding judge (embedding:minilm): bundled weights, no network."""

from __future__ import annotations

import socket

import pytest

from humanlm.judge import JudgeConfig, build_judge

from .conftest import CONTEXT, run


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the embedding judge must not open network connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_similarity_orders_related_above_unrelated(no_network) -> None:
    judge = build_judge(JudgeConfig("embedding:minilm"))
    truth = "My landlord refused to return my security deposit."
    verdict = run(
        judge.judge_group(
            context=CONTEXT,
            ground_truth=truth,
            state="response",
            candidates=[
                "The landlord would not give back my deposit.",
                "Bananas are rich in potassium.",
                "",
                truth,
                "Bananas are rich in potassium.",
            ],
        ),
        timeout=60,
    )
    related, unrelated, empty, copy, duplicate = verdict.scores
    assert 0.0 <= unrelated < related < 1.0
    assert empty == 0.0 and copy == 1.0 and duplicate == unrelated
    assert verdict.reasons == ["ok", "ok", "bad_format", "exact_copy", "ok"]
    assert judge.ledger.calls == 0 and judge.ledger.groups == 1


def test_aspects_give_every_state_the_response_similarity(no_network) -> None:
    judge = build_judge(JudgeConfig("embedding:minilm"))
    verdict = run(
        judge.judge_aspects(context=CONTEXT, ground_truth="NTA, sue him.", response="NTA."),
        timeout=60,
    )
    assert len(set(verdict.scores.values())) == 1 and len(verdict.scores) == 6
    empty = run(judge.judge_aspects(context=CONTEXT, ground_truth="x", response=""))
    assert set(empty.scores.values()) == {0.0} and empty.reason == "bad_format"
