"""HumanlmRewardManager on real DataProto rollouts: groups arriving interleaved are judged in one
call each, an incomplete group is flushed after its timeout, judge failures are recorded (never a
score, never a hang), and every rollout returns the same extra keys on the 0-1 scale."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import pytest

pytest.importorskip("verl", reason="verl is not installed (pip install 'humanlm[verl]')")

from humanlm.errors import ConfigError, JudgeUnavailableError  # noqa: E402
from humanlm.llm.ledger import Ledger  # noqa: E402
from humanlm.states import STATE_NAMES  # noqa: E402
from humanlm.testing import Reply, ScriptedServer, faults  # noqa: E402
from humanlm.testing.judge_replies import (  # noqa: E402
    candidates_in,
    judge_reply_fn,
    overlap_score,
    real_reply_in,
)
from humanlm.verl.reward import EXTRA_KEYS, HumanlmRewardManager, reward_settings  # noqa: E402

from .conftest import configured, items_of_state, rollout, run, tagged  # noqa: E402


def make_manager(base_config: Any, tokenizer: Any, server: ScriptedServer | None, **kwargs: Any):
    settings = {
        "reward.reward_kwargs.group_timeout_s": 5.0,
        "reward.reward_kwargs.max_wait_s": 10.0,
        "reward.reward_kwargs.judge.timeout_s": 2.0,
        "reward.reward_kwargs.judge.max_retries": 1,
    }
    if server is not None:
        settings["reward.reward_kwargs.judge.spec"] = f"openai:judge@{server.base_url}"
    settings.update({f"reward.reward_kwargs.{k}": v for k, v in kwargs.items()})
    return HumanlmRewardManager(configured(base_config, settings), tokenizer)


async def _submit_all(manager: HumanlmRewardManager, rollouts: list[Any], jitter_s: float = 0.02):
    rng = random.Random(0)

    async def one(data: Any) -> dict[str, Any]:
        await asyncio.sleep(rng.random() * jitter_s)
        return await manager.run_single(data)

    return await asyncio.gather(*(one(d) for d in rollouts))


def _check_extra_keys(results: list[dict[str, Any]]) -> None:
    for result in results:
        info = result["reward_extra_info"]
        assert tuple(info) == EXTRA_KEYS
        assert 0.0 <= result["reward_score"] <= 1.0
        for key, value in info.items():
            if key != "judge_reason" and value is not None:
                assert 0.0 <= value <= 1.0, key


def test_interleaved_groups_get_one_judge_call_each(base_config, tokenizer, train_dataset):
    groups = {
        "uid-a": items_of_state(train_dataset, "stance", 1)[0],
        "uid-b": items_of_state(train_dataset, "emotion", 1)[0],
        "uid-c": items_of_state(train_dataset, "response", 1)[0],
    }
    words = ["backs", "the", "poster", "firmly", "mild", "irritation", "at", "landlord"]
    rollouts, texts = [], {}
    for member in range(4):  # member-major order: the groups arrive interleaved
        for uid, item in groups.items():
            text = " ".join(random.Random(f"{uid}{member}").sample(words, 3))
            texts[(uid, member)] = text
            rollouts.append(
                rollout(tokenizer, item, tagged(item["extra_info"]["state"], text), uid=uid)
            )
    random.Random(3).shuffle(rollouts)

    with ScriptedServer(reply_fn=judge_reply_fn()) as server:
        manager = make_manager(base_config, tokenizer, server)
        results = run(_submit_all(manager, rollouts))
        requests = server.chat_requests

    assert len(requests) == 3
    truths = {item["reward_model"]["ground_truth"]: uid for uid, item in groups.items()}
    for request in requests:
        uid = truths[real_reply_in(request.prompt)]
        expected = {texts[(uid, m)] for m in range(4)}
        assert set(candidates_in(request.prompt).values()) == expected
    for data, result in zip(rollouts, results, strict=True):
        uid = data.non_tensor_batch["uid"][0]
        item = groups[uid]
        text = tokenizer.decode(data.batch["responses"][0]).split(">")[-2].split("<")[0]
        assert result["reward_score"] == pytest.approx(
            overlap_score(text, item["reward_model"]["ground_truth"])
        )
        info = result["reward_extra_info"]
        assert info["group_complete"] == 1.0 and info["judge_failed"] == 0.0
        assert info["judge_reason"] == "ok"
        assert info[f"state_reward/{item['extra_info']['state']}"] == result["reward_score"]
    _check_extra_keys(results)
    assert manager.judge.ledger.calls == 3 and manager.judge.ledger.unscored == 0


def test_text_past_the_closing_tag_is_cut_as_the_server_stopped(
    base_config, tokenizer, train_dataset
):
    (item,) = items_of_state(train_dataset, "emotion", 1)
    texts = [
        "<emotion>calm</emotion><",
        "<emotion>calm</emotion>\n\nmore",
        "<emotion>mild irritation</emotion>",
        "<emotion>joy</emotion></",
    ]
    with ScriptedServer(reply_fn=judge_reply_fn()) as server:
        manager = make_manager(base_config, tokenizer, server)
        results = run(_submit_all(manager, [rollout(tokenizer, item, t, uid="e") for t in texts]))
    assert [r["reward_extra_info"]["valid_format"] for r in results] == [1.0] * 4
    assert [r["reward_extra_info"]["group_complete"] for r in results] == [1.0] * 4


def test_incomplete_group_is_flushed_after_the_timeout(base_config, tokenizer, train_dataset):
    (item,) = items_of_state(train_dataset, "goal", 1)
    rollouts = [
        rollout(tokenizer, item, tagged("goal", f"asks for help {i}"), uid="u") for i in range(3)
    ]
    with ScriptedServer(reply_fn=judge_reply_fn()) as server:
        manager = make_manager(base_config, tokenizer, server, group_timeout_s=0.3)
        started = time.monotonic()
        results = run(_submit_all(manager, rollouts))
        waited = time.monotonic() - started
        assert len(server.chat_requests) == 1
        assert len(candidates_in(server.chat_requests[0].prompt)) == 3
        # A late fourth member of an already judged group is judged alone, without waiting.
        started = time.monotonic()
        late = run(manager.run_single(rollout(tokenizer, item, tagged("goal", "late"), uid="u")))
        late_wait = time.monotonic() - started
        assert len(server.chat_requests) == 2
    assert 0.3 <= waited < 3.0 and late_wait < 0.3 * 0.9
    assert [r["reward_extra_info"]["group_complete"] for r in results] == [0.0] * 3
    assert all(r["reward_extra_info"]["judge_failed"] == 0.0 for r in [*results, late])
    assert manager.groups.pending == 0
    _check_extra_keys([*results, late])


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (lambda: faults.server_error(500), "transport_error"),  # every attempt answers 500
        (lambda: faults.hang(5.0), "timeout"),  # the judge never answers in time
        (faults.empty, "empty"),  # empty replies
    ],
)
def test_judge_failures_are_recorded_not_scored(
    base_config, tokenizer, train_dataset, fault, reason
):
    (item,) = items_of_state(train_dataset, "value", 1)
    texts = ["fairness", "fairness first", "honesty", "no tags at all"]
    rollouts = [
        rollout(tokenizer, item, tagged("value", t) if i < 3 else t, uid="u")
        for i, t in enumerate(texts)
    ]
    with ScriptedServer(reply_fn=lambda request: fault()) as server:
        manager = make_manager(base_config, tokenizer, server, **{"judge.timeout_s": 1.0})
        started = time.monotonic()
        results = run(_submit_all(manager, rollouts))
        elapsed = time.monotonic() - started
    assert elapsed < 5.0
    infos = [r["reward_extra_info"] for r in results]
    assert [i["judge_failed"] for i in infos] == [1.0, 1.0, 1.0, 0.0]
    assert [i["judge_reason"] for i in infos] == [reason, reason, reason, "bad_format"]
    assert [i["judge_score"] for i in infos] == [None, None, None, 0.0]
    assert [i["state_reward/value"] for i in infos] == [None, None, None, 0.0]
    assert [i["valid_format"] for i in infos] == [1.0, 1.0, 1.0, 0.0]
    # Unscored rollouts take the mean of the scored members (here the bad-format 0): advantage 0.
    assert [r["reward_score"] for r in results] == [0.0] * 4
    assert manager.judge.ledger.failures[reason] == 1
    _check_extra_keys(results)


class _BrokenJudge:
    """A judge whose call raises, or never returns."""

    name, prompt_version = "broken", "v0"

    def __init__(self, *, hang: bool):
        self.hang = hang
        self.ledger = Ledger(model="broken")

    async def judge_group(self, **kwargs: Any):
        if self.hang:
            await asyncio.sleep(3600)
        raise RuntimeError("judge crashed")


@pytest.mark.parametrize(("hang", "reason"), [(False, "judge_error"), (True, "reward_timeout")])
def test_a_broken_judge_never_hangs_training(base_config, tokenizer, train_dataset, hang, reason):
    (item,) = items_of_state(train_dataset, "belief", 1)
    cfg = configured(
        base_config,
        {"reward.reward_kwargs.group_timeout_s": 0.2, "reward.reward_kwargs.max_wait_s": 0.3},
    )
    manager = HumanlmRewardManager(cfg, tokenizer, judge=_BrokenJudge(hang=hang))
    rollouts = [
        rollout(tokenizer, item, tagged("belief", f"people {i}"), uid="u") for i in range(4)
    ]
    started = time.monotonic()
    results = run(_submit_all(manager, rollouts))
    assert time.monotonic() - started < 2.0
    assert [r["reward_extra_info"]["judge_reason"] for r in results] == [reason] * 4
    assert [r["reward_extra_info"]["judge_failed"] for r in results] == [1.0] * 4
    assert [r["reward_score"] for r in results] == [0.0] * 4
    _check_extra_keys(results)


def test_validation_rollouts_are_judged_alone(base_config, tokenizer, val_dataset):
    item = val_dataset[0]
    text = tagged("response", "a short reply")
    with ScriptedServer(reply_fn=judge_reply_fn()) as server:
        manager = make_manager(base_config, tokenizer, server, group_timeout_s=30.0)
        results = run(
            _submit_all(manager, [rollout(tokenizer, item, text, uid=f"v{i}") for i in range(2)])
        )
        assert len(server.chat_requests) == 2  # val n=1: nothing waits for a group
    assert all(r["reward_extra_info"]["group_complete"] == 1.0 for r in results)
    _check_extra_keys(results)


def test_judge_cache_serves_a_repeated_group(base_config, tokenizer, train_dataset, tmp_path):
    (item,) = items_of_state(train_dataset, "communication", 1)
    texts = ["blunt and short", "long and polite", "blunt and short", "sarcastic"]
    with ScriptedServer(reply_fn=judge_reply_fn()) as server:
        manager = make_manager(
            base_config, tokenizer, server, **{"judge.cache": str(tmp_path / "cache.sqlite")}
        )
        for uid in ("first", "second"):
            rollouts = [
                rollout(tokenizer, item, tagged("communication", t), uid=uid) for t in texts
            ]
            results = run(_submit_all(manager, rollouts))
        assert len(server.chat_requests) == 1
        assert len(candidates_in(server.chat_requests[0].prompt)) == 3  # duplicates judged once
    assert manager.judge.ledger.cache_hits == 1
    assert results[0]["reward_score"] == results[2]["reward_score"]


def test_report_gives_per_state_means_over_scored_rollouts(
    base_config, tokenizer, train_dataset, tmp_path
):
    (stance,) = items_of_state(train_dataset, "stance", 1)
    rollouts = [
        rollout(tokenizer, stance, tagged("stance", f"backs {i}"), uid="s") for i in range(4)
    ]
    with ScriptedServer(reply_fn=judge_reply_fn()) as server:
        manager = make_manager(base_config, tokenizer, server, ledger_dir=str(tmp_path))
        results = run(_submit_all(manager, rollouts))
    metrics = manager.report()
    expected = sum(r["reward_score"] for r in results) / 4
    assert metrics["state_reward/stance"] == pytest.approx(expected)
    assert metrics["valid_format/stance"] == 1.0 and metrics["judge/unscored_frac"] == 0.0
    assert not any(k.endswith(s) for k in metrics for s in STATE_NAMES if s != "stance")
    assert (tmp_path / "judge_ledger.json").is_file()
    assert (tmp_path / "reward_metrics.jsonl").read_text().count("\n") == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"judge": {"spec": "openai:x", "bogus": 1}}, "judge.bogus: unknown key"),  # judge key
        ({"judge": {}, "extra": 1}, "extra: unknown key"),  # top-level key
        ({"judge": {}, "group_timeout_s": 0}, "group_timeout_s: must be > 0"),  # no timeout
    ],
)
def test_reward_settings_refuse_bad_keys(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        reward_settings(kwargs)


def _refusal(request: Any) -> Reply:
    error = {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "max_tokens",
    }
    return Reply(status=400, body=json.dumps({"error": error}))


def _step_manager(base_config: Any, tokenizer: Any, server: ScriptedServer, prompts: int):
    """A manager whose steps are ``prompts`` x 4 rollouts."""
    settings = {
        "data.train_batch_size": prompts,
        "reward.reward_kwargs.group_timeout_s": 5.0,
        "reward.reward_kwargs.max_wait_s": 10.0,
        "reward.reward_kwargs.judge.timeout_s": 2.0,
        "reward.reward_kwargs.judge.max_retries": 1,
        "reward.reward_kwargs.judge.spec": f"openai:judge@{server.base_url}",
    }
    return HumanlmRewardManager(configured(base_config, settings), tokenizer)


def _group(tokenizer: Any, item: Any, uid: str) -> list[Any]:
    state = item["extra_info"]["state"]
    return [rollout(tokenizer, item, tagged(state, f"{uid} answer {i}"), uid=uid) for i in range(4)]


async def _rewards(manager: HumanlmRewardManager, rollouts: list[Any]) -> list[Any]:
    """Every rollout's reward, as verl's agent loop asks for them: all at once."""
    return await asyncio.gather(*(manager.run_single(d) for d in rollouts))


def test_a_step_with_every_reward_unscored_stops_with_the_judges_reason(
    base_config, tokenizer, train_dataset
):
    # issue 21: a judge refused on every call gave verl all-zero rewards and trained on them.
    first, second = items_of_state(train_dataset, "stance", 2)
    with ScriptedServer(reply_fn=_refusal) as server:
        manager = _step_manager(base_config, tokenizer, server, prompts=2)
        assert manager.step_rollouts == 8

        async def step() -> list[Any]:
            rollouts = _group(tokenizer, first, "a") + _group(tokenizer, second, "b")
            return await asyncio.gather(
                *(manager.run_single(d) for d in rollouts), return_exceptions=True
            )

        outcomes = run(step())
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        # The step's last reward raises, so verl's rollout of the step fails: no update from it.
        assert len(errors) == 1 and isinstance(errors[0], JudgeUnavailableError)
        message = str(errors[0])
        assert f"judge openai:judge@{server.base_url}" in message and "rejected x8" in message
        assert "'max_tokens' is not supported" in message and "resume" in message
        # Every later training rollout stops as well, without asking the judge.
        asked = len(server.chat_requests)
        with pytest.raises(JudgeUnavailableError):
            run(_rewards(manager, _group(tokenizer, first, "c")))
    assert manager.stopped == message and manager.judge.ledger.failures == {"rejected": 2}
    assert len(server.chat_requests) == asked == 2  # one per group: a 400 is not retried


def test_a_partly_scored_stretch_and_validation_do_not_stop_training(
    base_config, tokenizer, train_dataset, val_dataset
):
    a, b, c = items_of_state(train_dataset, "emotion", 3)
    scored_truth = b["reward_model"]["ground_truth"]
    healthy = judge_reply_fn()

    def reply(request: Any) -> Reply:
        return (
            healthy(request) if real_reply_in(request.prompt) == scored_truth else _refusal(request)
        )

    with ScriptedServer(reply_fn=reply) as server:
        manager = _step_manager(base_config, tokenizer, server, prompts=2)
        # 4 unscored, 4 scored, 4 unscored: never a step's worth (8) unscored in a row.
        for item, uid in ((a, "a"), (b, "b"), (c, "c")):
            run(_rewards(manager, _group(tokenizer, item, uid)))
        # Validation rollouts are not training: 8 unscored in a row do not stop anything.
        val = [
            rollout(tokenizer, val_dataset[i], tagged("response", "hi"), uid=f"v{i}")
            for i in range(8)
        ]
        results = run(_rewards(manager, val))
    assert manager.stopped is None
    assert [r["reward_extra_info"]["judge_reason"] for r in results] == ["rejected"] * 8
    metrics = manager.report()
    assert metrics["judge/unscored/rejected"] == 16 and metrics["samples"] == 20
