from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import humanlm.data
from humanlm.data import prepare as prepare_module
from humanlm.data.prepare import (
    PREPARED_COLUMNS,
    build_example_id,
    load_prepared,
    parse_holdout_users,
    run_prepare,
)
from humanlm.errors import DataError
from tests.data.samples import SAMPLE, persona_with_items, sample_row, sample_rows, write_jsonl


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_prepare_sample_writes_all_columns(tmp_path):
    summary = run_prepare(source=SAMPLE, dataset="auto", out_dir=tmp_path)
    assert (summary.read, summary.written, dict(summary.dropped)) == (12, 12, {})
    assert [s.path for s in summary.splits] == [tmp_path / "train.parquet"]
    assert tuple(pq.read_schema(tmp_path / "train.parquet").names) == PREPARED_COLUMNS
    rows = load_prepared(tmp_path / "train.parquet")
    first = rows[0]
    assert first["data_source"] == "amazon" and first["turn_id"] == 1
    assert first["timestamp"] is None and first["trace"] == "" and first["states"] == ""
    assert first["messages"][0]["name"] == "Amazon store: Edward Uhlan (Author)"
    assert set(first["messages"][0]) == {"role", "name", "content"}
    assert first["persona"].startswith("occupation: Former teacher and small publisher\nInterests:")
    assert len({r["example_id"] for r in rows}) == 12


def test_example_ids_are_stable_across_runs(tmp_path):
    run_prepare(source=SAMPLE, dataset="auto", out_dir=tmp_path / "a")
    run_prepare(source=SAMPLE, dataset="auto", out_dir=tmp_path / "b")
    ids_a = [r["example_id"] for r in load_prepared(tmp_path / "a" / "train.parquet")]
    ids_b = [r["example_id"] for r in load_prepared(tmp_path / "b" / "train.parquet")]
    assert ids_a == ids_b
    assert build_example_id(
        dataset="enron", post_id="p", user_id="u", turn_id=1, reply="hi"
    ) == build_example_id(dataset="enron", post_id="p", user_id="u", turn_id=1, reply="hi")
    assert build_example_id(
        dataset="enron", post_id="p", user_id="u", turn_id=1, reply="hi"
    ) != build_example_id(dataset="enron", post_id="p", user_id="u", turn_id=1, reply="hi!")


def test_trace_states_and_timestamp_are_carried(tmp_path):
    row = sample_row("chat", turn_id=2)
    row.update(trace="Curious about figs.", states={"stance": "doubts the answer"}, timestamp=1700)
    path = write_jsonl(tmp_path / "rows.jsonl", [row])
    run_prepare(source=path, dataset="wildchat", out_dir=tmp_path / "out", split="val")
    (out,) = load_prepared(tmp_path / "out" / "val.parquet")
    assert out["trace"] == "Curious about figs."
    assert json.loads(out["states"]) == {"stance": "doubts the answer"}
    assert out["timestamp"] == 1700
    assert [m["role"] for m in out["messages"]] == ["user", "assistant"]


def test_persona_filter_limit_and_duplicates_are_counted(tmp_path):
    base = sample_row("email", turn_id=1)
    rows = []
    for i, persona in enumerate(
        [persona_with_items(9), persona_with_items(10), "A user chatting with an assistant."]
    ):
        rows.append({**base, "persona": persona, "completion": f"reply {i}"})
    rows.append(dict(rows[1]))  # an exact duplicate of a kept row
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    summary = run_prepare(source=path, dataset="enron", out_dir=tmp_path / "out")
    assert (summary.read, summary.written) == (4, 2)
    assert dict(summary.dropped) == {"persona_filter": 1, "duplicate": 1}
    text = summary.describe()
    assert "read 4, written 2, dropped 2 (duplicate: 1, persona_filter: 1)" in text
    assert "fewer list items than the minimum (10)" in text
    kept = [r["ground_truth"] for r in load_prepared(tmp_path / "out" / "train.parquet")]
    assert kept == ["reply 1", "reply 2"]

    limited = run_prepare(source=path, dataset="enron", out_dir=tmp_path / "lim", limit=1)
    assert (limited.written, dict(limited.dropped)) == (1, {"persona_filter": 1, "limit": 2})
    off = run_prepare(source=path, dataset="enron", out_dir=tmp_path / "all", min_persona_items=0)
    assert off.written == 3


def test_persona_dropout_writes_a_deterministic_dropout_split(tmp_path):
    for out in ("a", "b"):
        summary = run_prepare(
            source=SAMPLE,
            dataset="auto",
            out_dir=tmp_path / out,
            split="test",
            persona_dropout=(0.3, 0.3),
            seed=1,
        )
        assert summary.splits[0].path == tmp_path / out / "test_dropout.parquet"
    a = load_prepared(tmp_path / "a" / "test_dropout.parquet")
    b = load_prepared(tmp_path / "b" / "test_dropout.parquet")
    assert [r["persona"] for r in a] == [r["persona"] for r in b]
    plain = load_prepared(_prepare_plain(tmp_path))
    assert any(x["persona"] != y["persona"] for x, y in zip(a, plain, strict=True))
    chat = [r["persona"] for r in a if r["data_source"] == "wildchat"]
    assert chat == ["A user who is chatting with an AI assistant."] * 2  # plain text untouched


def _prepare_plain(tmp_path):
    run_prepare(source=SAMPLE, dataset="auto", out_dir=tmp_path / "plain", split="test")
    return tmp_path / "plain" / "test.parquet"


def test_folder_source_writes_each_split(tmp_path):
    rows = sample_rows()
    write_jsonl(tmp_path / "src" / "train.jsonl", rows[:8])
    write_jsonl(tmp_path / "src" / "test.jsonl", rows[8:])
    summary = run_prepare(source=tmp_path / "src", dataset="auto", out_dir=tmp_path / "out")
    assert [(s.split, s.written) for s in summary.splits] == [("train", 8), ("test", 4)]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["prepare_sources.json", "test.parquet", "train.parquet"]
    sources = json.loads((tmp_path / "out" / "prepare_sources.json").read_text())
    assert sources == {
        "test.parquet": str(tmp_path / "src"),
        "train.parquet": str(tmp_path / "src"),
    }


def test_hub_source_writes_every_split(tmp_path, monkeypatch):
    import datasets

    rows = sample_rows()[4:6]  # reddit

    def fake_load_dataset(repo, split=None):
        assert repo == "snap-stanford/humanual-opinion"
        parts = {"train": rows[:1], "val": rows[1:], "test": rows[1:]}
        return datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in parts.items()})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    summary = run_prepare(source="opinion", dataset="reddit", out_dir=tmp_path)
    assert [(s.split, s.written) for s in summary.splits] == [("train", 1), ("val", 1), ("test", 1)]


def test_failed_prepare_leaves_nothing_and_keeps_existing_files(tmp_path):
    out = tmp_path / "out"
    good = write_jsonl(tmp_path / "good.jsonl", sample_rows())
    run_prepare(source=good, dataset="auto", out_dir=out)
    before = (out / "train.parquet").read_bytes()

    rows = sample_rows()
    rows[7]["prompt"][2].pop("content")
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=r"row 7, field 'prompt\[2\].content'"):
        run_prepare(source=bad, dataset="auto", out_dir=out)
    assert (out / "train.parquet").read_bytes() == before
    assert _leftovers(out) == []


def test_bad_split_in_a_folder_writes_no_split(tmp_path):
    rows = sample_rows()
    write_jsonl(tmp_path / "src" / "train.jsonl", rows[:6])
    bad = rows[6:]
    bad[3]["user_id"] = ""
    write_jsonl(tmp_path / "src" / "test.jsonl", bad)
    with pytest.raises(DataError, match="test.jsonl, row 3, field 'user_id'"):
        run_prepare(source=tmp_path / "src", dataset="auto", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_failure_while_writing_removes_every_temp_file(tmp_path, monkeypatch):
    out = tmp_path / "out"
    src = tmp_path / "src"
    write_jsonl(src / "train.jsonl", sample_rows()[:6])
    write_jsonl(src / "test.jsonl", sample_rows()[6:])
    run_prepare(source=src, dataset="auto", out_dir=out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    real_build = prepare_module._build_example
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 9:  # inside the second split, after the first split was written
            raise RuntimeError("disk on fire")
        return real_build(*args, **kwargs)

    monkeypatch.setattr(prepare_module, "_build_example", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_prepare(source=src, dataset="auto", out_dir=out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _leftovers(out) == []


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"limit": -1}, "limit"),
        ({"persona_dropout": (0.5, 2.0)}, "probabilities"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        run_prepare(source=SAMPLE, dataset="auto", out_dir=tmp_path, **kwargs)


def test_load_prepared_errors(tmp_path):
    with pytest.raises(DataError, match="no such prepared file"):
        load_prepared(tmp_path / "missing.parquet")
    pq.write_table(pa.table({"prompt": ["x"]}), tmp_path / "raw.parquet")
    with pytest.raises(DataError, match="missing columns example_id"):
        load_prepared(tmp_path / "raw.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="not a readable parquet file"):
        load_prepared(tmp_path / "junk.parquet")


DEMO = Path(humanlm.data.__file__).parent / "demo"


def test_bundled_demo_data_prepares(tmp_path):
    assert list(DEMO.glob("*.jsonl")), "the demo data ships inside the package"
    first = json.loads(next(iter(sorted(DEMO.glob("*.jsonl")))).read_text("utf-8").splitlines()[0])
    dataset = "auto" if first.get("dataset") else "generic"
    summary = run_prepare(source=DEMO, dataset=dataset, out_dir=tmp_path, min_persona_items=0)
    assert summary.written == summary.read > 0
    for split in summary.splits:
        rows = load_prepared(split.path)
        assert all(r["ground_truth"] and r["messages"] is not None for r in rows)


def _end_row(dataset: str) -> dict:
    """A chat row whose real reply is the end signal: the user wrote nothing more."""
    row = sample_row("chat", turn_id=4)
    row["prompt"] = [
        *row["prompt"],
        {"role": row["user_id"][:12], "content": row["completion"], "metadata": "{}"},
        {
            "role": "gpt-3.5-turbo-0301",
            "content": "Perhaps 'tachyon'? I am not sure.",
            "metadata": "{}",
        },
    ]
    row["turn_id"] = len(row["prompt"])
    row["completion"] = "<|endconversation|>"
    row["dataset"] = dataset
    return row


@pytest.mark.parametrize(
    ("dataset", "flag", "kept"),
    [
        ("chat", None, True),  # on by default for wildchat
        ("chat", False, False),  # --no-end-examples
        ("enron", None, False),  # off by default elsewhere
        ("enron", True, True),  # --end-examples
    ],
)
def test_end_examples_are_kept_behind_a_flag(tmp_path, dataset, flag, kept):
    path = write_jsonl(tmp_path / "rows.jsonl", [sample_row("chat", turn_id=2), _end_row(dataset)])
    summary = run_prepare(source=path, dataset="auto", out_dir=tmp_path / "out", end_examples=flag)
    rows = load_prepared(tmp_path / "out" / "train.parquet")
    ends = [r for r in rows if r["ground_truth"] == "<|endconversation|>"]
    assert len(ends) == int(kept) and summary.dropped["end_example"] == int(not kept)
    if kept and dataset == "chat":  # the end follows the assistant's last turn
        assert ends[0]["messages"][-1]["role"] == "assistant"


def test_split_files_of_another_source_are_refused(tmp_path):
    demo = Path(humanlm.data.__file__).parent / "demo"
    out = tmp_path / "out"
    run_prepare(source=demo, dataset=None, out_dir=out)
    assert (out / "test.parquet").is_file()
    before = (out / "train.parquet").read_bytes()
    with pytest.raises(DataError, match="test.parquet are left from another source"):
        run_prepare(source=demo / "test.jsonl", dataset=None, out_dir=out)  # would be train
    assert (out / "train.parquet").read_bytes() == before  # refused before writing
    run_prepare(source=demo, dataset=None, out_dir=out)  # the same source again: fine


def test_an_empty_source_is_refused(tmp_path):
    empty = tmp_path / "rows.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no rows to prepare"):
        run_prepare(source=empty, dataset="reddit", out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "train.parquet").exists()


# The assistant's answer to the last user turn of the sample conversation. Humanual-Chat rows do
# not hold it (they stop at the user's reply), so these tests give it as the row's metadata.
_ANSWER = "Perhaps you heard 'syconium', the fig's hollow flower cluster."


def _chat_conversation(*, answer: str | None = _ANSWER, dataset: str = "chat") -> list[dict]:
    """The two real rows of one WildChat conversation (turns 2 and 4), the last with its answer."""
    rows = [sample_row("chat", turn_id=2), sample_row("chat", turn_id=4)]
    if answer is not None:
        rows[1]["metadata"] = json.dumps({"assistant_reply": answer})
    for row in rows:
        row["dataset"] = dataset
    return rows


def _ends(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["ground_truth"] == "<|endconversation|>"]


def test_real_chat_rows_get_no_end_example_without_the_assistants_answer(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", _chat_conversation(answer=None))
    summary = run_prepare(source=path, dataset="wildchat", out_dir=tmp_path / "out")
    assert not _ends(load_prepared(tmp_path / "out" / "train.parquet"))
    assert summary.end_added == 0 and summary.written == 2
    assert (summary.ends.conversations, summary.ends.no_answer) == (1, 1)  # one conversation
    assert "end examples: 0 added for 1 conversations" in summary.describe()


@pytest.mark.parametrize(
    ("dataset", "flag", "added"),
    [
        ("chat", None, 1),  # on by default for wildchat
        ("chat", False, 0),  # --no-end-examples
        ("email", None, 0),  # off by default elsewhere
        ("email", True, 1),  # --end-examples
    ],
)
def test_one_end_example_is_added_per_conversation(tmp_path, dataset, flag, added):
    path = write_jsonl(tmp_path / "rows.jsonl", _chat_conversation(dataset=dataset))
    summary = run_prepare(source=path, dataset="auto", out_dir=tmp_path / "out", end_examples=flag)
    rows = load_prepared(tmp_path / "out" / "train.parquet")
    assert len(_ends(rows)) == summary.end_added == added and len(rows) == 2 + added
    assert f"read 2, written {2 + added}" in summary.describe()
    if not added:
        return
    last = next(r for r in rows if r["turn_id"] == 4)
    (end,) = _ends(rows)
    # The whole conversation: the last row's context, the user's real reply, the answer.
    assert end["messages"] == [
        *last["messages"],
        {"role": "user", "name": "HUMAN", "content": last["ground_truth"]},
        {"role": "assistant", "name": "assistant", "content": _ANSWER},
    ]
    assert end["turn_id"] == 6 and end["example_id"] not in {r["example_id"] for r in rows[:2]}
    assert (end["persona"], end["user_id"], end["post_id"]) == (
        last["persona"],
        last["user_id"],
        last["post_id"],
    )
    again = run_prepare(source=path, dataset="auto", out_dir=tmp_path / "again", end_examples=flag)
    assert again.end_added == 1
    assert (
        _ends(load_prepared(tmp_path / "again" / "train.parquet"))[0]["example_id"]
        == (end["example_id"])
    )  # stable across runs


def test_the_end_example_goes_into_the_split_of_the_conversations_last_turn(tmp_path):
    first, last = _chat_conversation()
    source = tmp_path / "source"
    write_jsonl(source / "train.jsonl", [first])
    write_jsonl(source / "test.jsonl", [last])
    summary = run_prepare(source=source, dataset="wildchat", out_dir=tmp_path / "out")
    train = load_prepared(tmp_path / "out" / "train.parquet")
    test = load_prepared(tmp_path / "out" / "test.parquet")
    assert not _ends(train) and len(_ends(test)) == 1 and len(train) == 1
    assert {s.split: s.end_added for s in summary.splits} == {"train": 0, "test": 1}


def test_a_conversation_with_an_end_row_gets_no_second_one(tmp_path):
    rows = [*_chat_conversation(), _end_row("chat")]  # _end_row: the same conversation, ended
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    summary = run_prepare(source=path, dataset="wildchat", out_dir=tmp_path / "out")
    assert len(_ends(load_prepared(tmp_path / "out" / "train.parquet"))) == 1
    assert summary.end_added == 0 and summary.ends.already_ended == 1


# --- users never seen: --holdout-users --------------------------------------------------------


def _users(path: Path) -> Counter[str]:
    """Rows per user in a prepared file."""
    return Counter(r["user_id"] for r in load_prepared(path))


def _sample_folder(folder: Path) -> dict[str, list[dict]]:
    """The real sample rows in train/val/test, the two users with two rows each in two splits."""
    rows = sample_rows()
    parts = {"train": [0, 2, 4, 6, 8, 10], "val": [1, 7, 9], "test": [3, 5, 11]}
    splits = {name: [rows[i] for i in picks] for name, picks in parts.items()}
    for name, split_rows in splits.items():
        write_jsonl(folder / f"{name}.jsonl", split_rows)
    return splits


@pytest.mark.parametrize("holdout", [3, 0.3])
def test_held_out_users_are_in_no_other_split_on_real_rows(tmp_path, holdout):
    splits = _sample_folder(tmp_path / "src")
    source_users = {name: Counter(r["user_id"] for r in rows) for name, rows in splits.items()}
    everyone = sum(source_users.values(), Counter())
    spanning = {user for user, n in everyone.items() if n > 1}  # rows in two splits
    drew_spanning = False
    for seed in range(6):
        out = tmp_path / f"out{seed}"
        summary = run_prepare(
            source=tmp_path / "src", dataset="auto", out_dir=out, holdout_users=holdout, seed=seed
        )
        unseen = _users(out / "test_unseen.parquet")
        assert len(unseen) == 3 and summary.held_out == 3 and summary.users == 10
        for name in ("train", "val", "test"):
            kept = _users(out / f"{name}.parquet")
            assert not kept.keys() & unseen.keys()
            # The other users' rows stay where they were.
            assert kept == Counter({u: n for u, n in source_users[name].items() if u not in unseen})
        assert unseen == Counter({u: everyone[u] for u in unseen})  # every row of each one
        assert [s.split for s in summary.splits] == ["train", "val", "test", "test_unseen"]
        assert summary.written == summary.read == 12
        drew_spanning |= bool(unseen.keys() & spanning)
    assert drew_spanning  # some draw moved a user whose rows were in two splits


def test_the_draw_is_seeded(tmp_path):
    _sample_folder(tmp_path / "src")

    def draw(seed: int, name: str) -> set[str]:
        out = tmp_path / name
        run_prepare(
            source=tmp_path / "src", dataset="auto", out_dir=out, holdout_users=4, seed=seed
        )
        return set(_users(out / "test_unseen.parquet"))

    first = draw(7, "a")
    assert draw(7, "b") == first
    assert any(draw(seed, f"s{seed}") != first for seed in range(3))


def _many_users(folder: Path, users: int) -> None:
    """A synthetic source: each user has three train rows, one val row and one test row."""
    base = sample_row("opinion", post_id="miquq1")
    splits: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for i in range(users):
        for k, name in enumerate(["train", "train", "train", "val", "test"]):
            row = {**base, "user_id": f"user-{i:03d}", "post_id": f"post-{i}-{k}"}
            row["completion"] = f"reply {k} of user {i}"
            splits[name].append(row)
    for name, rows in splits.items():
        write_jsonl(folder / f"{name}.jsonl", rows)


def test_held_out_users_are_in_no_other_split_with_many_users(tmp_path):
    _many_users(tmp_path / "src", users=300)
    summary = run_prepare(
        source=tmp_path / "src", dataset="reddit", out_dir=tmp_path / "out", holdout_users=0.1
    )
    out = tmp_path / "out"
    unseen = _users(out / "test_unseen.parquet")
    assert len(unseen) == 30 and set(unseen.values()) == {5}  # all five rows of each
    seen = {name: _users(out / f"{name}.parquet") for name in ("train", "val", "test")}
    for users in seen.values():
        assert not users.keys() & unseen.keys() and len(users) == 270
    assert set(seen["train"].values()) == {3} and set(seen["val"].values()) == {1}
    assert {s.split: s.written for s in summary.splits} == {
        "train": 810,
        "val": 270,
        "test": 270,
        "test_unseen": 150,
    }
    assert "users never seen: 30 of 300 users held out" in summary.describe()


def test_held_out_users_with_a_limit_and_persona_dropout(tmp_path):
    _many_users(tmp_path / "src", users=40)
    summary = run_prepare(
        source=tmp_path / "src",
        dataset="reddit",
        out_dir=tmp_path / "out",
        holdout_users=8,
        limit=20,
        persona_dropout=(0.5, 0.5),
    )
    written = {s.split: s for s in summary.splits}
    assert list(written) == ["train_dropout", "val_dropout", "test_dropout", "test_unseen_dropout"]
    for s in written.values():
        assert s.written == 20 and s.read == s.written + s.dropped["limit"]
    assert written["test_unseen_dropout"].read == 8 * 5
    unseen = _users(tmp_path / "out" / "test_unseen_dropout.parquet")
    for name in ("train", "val", "test"):
        assert not _users(tmp_path / "out" / f"{name}_dropout.parquet").keys() & unseen.keys()


def test_holdout_users_errors(tmp_path):
    _sample_folder(tmp_path / "src")
    with pytest.raises(DataError, match="draws from every split.*drop --split"):
        run_prepare(
            source=tmp_path / "src", dataset="auto", out_dir=tmp_path / "o", split="test",
            holdout_users=2,
        )  # fmt: skip
    with pytest.raises(DataError, match="would hold out 10 of the 10 users"):
        run_prepare(source=tmp_path / "src", dataset="auto", out_dir=tmp_path / "o",
                    holdout_users=10)  # fmt: skip
    for bad in (0, -1, 1.0, 0.0, True):
        with pytest.raises(ValueError, match="number of users"):
            run_prepare(source=SAMPLE, dataset="auto", out_dir=tmp_path / "o", holdout_users=bad)
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_a_stale_held_out_split_is_refused(tmp_path):
    _sample_folder(tmp_path / "src")
    out = tmp_path / "out"
    run_prepare(source=tmp_path / "src", dataset="auto", out_dir=out, holdout_users=2)
    before = (out / "train.parquet").read_bytes()
    with pytest.raises(DataError, match="test_unseen.parquet holds users an earlier run held"):
        run_prepare(source=tmp_path / "src", dataset="auto", out_dir=out)  # they'd be in train
    assert (out / "train.parquet").read_bytes() == before
    run_prepare(source=tmp_path / "src", dataset="auto", out_dir=out, holdout_users=3)  # fine


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),  # a number of users
        ("0.25", 0.25),  # a fraction of them
        ("0", None),  # no user
        ("1.0", None),  # every user
        ("-2", None),  # negative
        ("1.5", None),  # neither
        ("ten", None),  # not a number
    ],
)
def test_parse_holdout_users(text, value):
    if value is None:
        with pytest.raises(ValueError, match="number of users"):
            parse_holdout_users(text)
    else:
        assert parse_holdout_users(text) == value and type(parse_holdout_users(text)) is type(value)


def test_holdout_users_through_the_cli(tmp_path):
    from typer.testing import CliRunner

    from humanlm.cli.data import app

    _sample_folder(tmp_path / "src")
    args = ["prepare", "-i", str(tmp_path / "src"), "-d", "auto", "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--holdout-users", "2", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "test_unseen: read" in result.output and "2 of 10 users held out" in result.output
    bad = CliRunner().invoke(app, [*args, "--holdout-users", "1.0"])
    assert bad.exit_code == 2 and "--holdout-users" in bad.output and "Traceback" not in bad.output


def test_test_unseen_resolves_only_from_a_held_out_prepare(tmp_path):
    from humanlm.data.resolve import resolve_split

    _sample_folder(tmp_path / "src")
    out = tmp_path / "out"
    run_prepare(source=tmp_path / "src", dataset="auto", out_dir=out, holdout_users=2)
    rows = resolve_split(out, dataset=None, split="test_unseen", work_dir=tmp_path / "work")
    assert (
        rows == load_prepared(out / "test_unseen.parquet")
        and len({r["user_id"] for r in rows}) == 2
    )
    plain = tmp_path / "plain"
    run_prepare(source=tmp_path / "src", dataset="auto", out_dir=plain)
    # A raw file or folder holds no held-out users: it is not prepared as test_unseen.
    for source in (plain, tmp_path / "src", tmp_path / "src" / "test.jsonl"):
        with pytest.raises(
            DataError,
            match=r"no test_unseen split here: .*--holdout-users K\|FRACTION`; evaluate DIR",
        ):
            resolve_split(source, dataset=None, split="test_unseen", work_dir=tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_eval_only_puts_every_row_of_every_split_in_test(tmp_path):
    # issue 25: there was no documented way to use all of one's rows for evaluation only.
    splits = _sample_folder(tmp_path / "src")
    summary = run_prepare(
        source=tmp_path / "src", dataset="auto", out_dir=tmp_path / "out", eval_only=True
    )
    assert [(s.split, s.read, s.written) for s in summary.splits] == [("test", 12, 12)]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.parquet")) == ["test.parquet"]
    ids = {r["example_id"] for r in load_prepared(tmp_path / "out" / "test.parquet")}
    assert len(ids) == sum(len(rows) for rows in splits.values())
    one_file = run_prepare(source=SAMPLE, dataset="auto", out_dir=tmp_path / "one", eval_only=True)
    assert [s.split for s in one_file.splits] == ["test"]
    with pytest.raises(DataError, match="--eval-only puts every row in test"):
        run_prepare(source=SAMPLE, dataset="auto", out_dir=tmp_path / "x", split="train",
                    eval_only=True)  # fmt: skip


def test_auto_reads_a_row_without_a_dataset_column_as_generic(tmp_path):
    # issue 25: eval --dataset auto failed on a `data build` output where validate read generic.
    rows = [sample_row("opinion"), sample_row("email")]
    del rows[1]["dataset"]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    run_prepare(source=path, dataset="auto", out_dir=tmp_path / "out")
    sources = [r["data_source"] for r in load_prepared(tmp_path / "out" / "train.parquet")]
    assert sources == ["reddit", "generic"]


def test_a_prepared_folder_without_the_split_names_the_fix(tmp_path):
    # issue 25: `eval --data <a single file just prepared>` said "run data prepare first".
    from humanlm.data.resolve import resolve_split

    run_prepare(source=SAMPLE, dataset="auto", out_dir=tmp_path / "out")
    with pytest.raises(DataError) as err:
        resolve_split(tmp_path / "out", dataset=None, split="test", work_dir=tmp_path / "w")
    message = str(err.value)
    assert "holds: train" in message and "--split NAME" in message and "--eval-only" in message
    assert len(resolve_split(tmp_path / "out", dataset=None, split="train", work_dir="w")) == 12
