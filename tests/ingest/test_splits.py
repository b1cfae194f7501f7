"""Splits: temporal order, no leakage, the seen-user rule, per-user filters, determinism."""

from __future__ import annotations

import random

import pytest

from humanlm.errors import ConfigError
from humanlm.ingest.splits import assign_splits, parse_ratios
from tests.ingest.test_dataset import START, build, forum_items, rows_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90/2/8", (0.9, 0.02, 0.08)),  # percentages
        ("0.8,0.1,0.1", (0.8, 0.1, 0.1)),  # fractions
        ("1/0/1", (0.5, 0.0, 0.5)),  # normalised
    ],
)
def test_parse_ratios(text, expected):
    assert parse_ratios(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["90/10", "a/b/c", "0/50/50", "90/-2/12"])
def test_parse_ratios_rejects(text):
    with pytest.raises(ConfigError, match="TRAIN/VAL/TEST"):
        parse_ratios(text)


def plan_for(users, threads, times, **options):
    starts = {}
    for t, ts in zip(threads, times, strict=True):
        starts[t] = min(ts, starts.get(t, ts))
    return assign_splits(
        users=users,
        threads=threads,
        times=times,
        thread_starts=[starts[t] for t in threads],
        tiebreak=[f"i{n}" for n in range(len(users))],
        **options,
    )


def test_thread_split_is_temporal_and_cut_90_2_8():
    # 100 threads, thread k starts at time k; every user writes in every thread.
    threads = [f"t{k:03d}" for k in range(100) for _ in range(2)]
    times = [k * 10 + j for k in range(100) for j in range(2)]
    users = ["ann", "bob"] * 100
    plan = plan_for(users, threads, times)
    by_split = {s: {threads[i] for i in plan.rows(s)} for s in ("train", "val", "test")}
    assert [len(by_split[s]) for s in ("train", "val", "test")] == [90, 2, 8]
    assert (
        max(by_split["train"])
        < min(by_split["val"])
        <= max(by_split["val"])
        < min(by_split["test"])
    )


def test_turn_split_orders_replies_by_time():
    times = list(range(50))
    random.Random(1).shuffle(times)
    plan = plan_for(["ann"] * 50, ["conv"] * 50, times, split_by="turn", ratios=(0.8, 0.0, 0.2))
    train = [times[i] for i in plan.rows("train")]
    test = [times[i] for i in plan.rows("test")]
    assert len(train) == 40 and max(train) < min(test)


def test_user_split_holds_users_out_deterministically():
    users = [f"u{k}" for k in range(40) for _ in range(3)]
    threads = [f"t{n}" for n in range(120)]
    plan = plan_for(users, threads, list(range(120)), split_by="user", ratios=(0.5, 0.25, 0.25))
    groups = {s: {users[i] for i in plan.rows(s)} for s in ("train", "val", "test")}
    assert [len(g) for g in groups.values()] == [20, 10, 10]
    assert not (groups["train"] & groups["test"]) and not (groups["train"] & groups["val"])
    again = plan_for(users, threads, list(range(120)), split_by="user", ratios=(0.5, 0.25, 0.25))
    other = plan_for(
        users, threads, list(range(120)), split_by="user", ratios=(0.5, 0.25, 0.25), seed=7
    )
    assert again.labels == plan.labels != other.labels


def test_seen_user_rule_and_switching_it_off():
    # "late" only writes in the last thread, which falls into test.
    users = ["ann"] * 10 + ["late"]
    threads = [f"t{k}" for k in range(10)] + ["t9"]
    times = list(range(10)) + [9]
    plan = plan_for(users, threads, times, ratios=(0.8, 0.0, 0.2))
    assert plan.dropped == {"unseen_user": 1}
    assert "late" not in {users[i] for i in plan.rows("test")}
    open_plan = plan_for(users, threads, times, ratios=(0.8, 0.0, 0.2), seen_users=False)
    assert "late" in {users[i] for i in open_plan.rows("test")} and not open_plan.dropped


def test_min_and_max_replies_per_user():
    users = ["one"] + ["three"] * 3 + ["nine"] * 9
    threads = [f"t{n}" for n in range(len(users))]
    plan = plan_for(
        users, threads, list(range(len(users))), min_replies=2, max_replies=5, ratios=(1, 0, 0)
    )
    assert {users[i] for i in plan.rows("train")} == {"three"}
    assert plan.dropped == {"user_too_few": 1, "user_too_many": 9}
    with pytest.raises(ConfigError):
        plan_for(users, threads, list(range(len(users))), min_replies=3, max_replies=2)


def test_built_splits_never_leak_threads_and_keep_time_order(tmp_path):
    build(tmp_path, forum_items(threads=50), ratios=(0.6, 0.2, 0.2))
    rows = rows_of(tmp_path / "out")
    posts = {s: {r["post_id"] for r in rows[s]} for s in rows}
    assert not (posts["train"] & posts["test"]) and not (posts["train"] & posts["val"])
    assert not (posts["val"] & posts["test"])

    def start(post: str) -> int:
        return START + int(post[1:]) * 86400  # forum_items: thread k starts on day k

    assert max(map(start, posts["train"])) < min(map(start, posts["val"]))
    assert max(map(start, posts["val"])) < min(map(start, posts["test"]))
    train_users = {r["user_id"] for r in rows["train"]}
    assert {r["user_id"] for s in ("val", "test") for r in rows[s]} <= train_users


def test_build_is_deterministic_whatever_the_input_order(tmp_path):
    items = forum_items(threads=25)
    build(tmp_path / "a", items)
    random.Random(3).shuffle(items)
    build(tmp_path / "b", items)
    assert rows_of(tmp_path / "a" / "out") == rows_of(tmp_path / "b" / "out")


def test_split_by_turn_and_by_user_through_build(tmp_path):
    build(
        tmp_path / "turn",
        forum_items(threads=5, replies=10),
        split_by="turn",
        ratios=(0.5, 0.2, 0.3),
    )
    rows = rows_of(tmp_path / "turn" / "out")
    assert max(r["timestamp"] for r in rows["train"]) <= min(r["timestamp"] for r in rows["test"])
    summary = build(
        tmp_path / "user", forum_items(threads=20), split_by="user", ratios=(0.6, 0.2, 0.2)
    )
    rows = rows_of(tmp_path / "user" / "out")
    users = {s: {r["user_id"] for r in rows[s]} for s in rows}
    assert not (users["train"] & users["test"])
    assert summary.info["options"]["seen_users"] is False
