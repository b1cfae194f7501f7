from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from humanlm.data.load import find_splits, iter_raw_rows, iter_rows, load_rows
from humanlm.errors import DataError
from tests.data.samples import SAMPLE, sample_rows, write_jsonl


def _write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _summary(rows):
    return [(r.dataset, r.user_id, r.post_id, r.turn_id, r.completion, r.prompt) for r in rows]


def test_jsonl_file_is_one_train_split():
    (split,) = find_splits(SAMPLE)
    assert (split.split, split.name) == ("train", str(SAMPLE))
    rows = list(iter_rows(split, dataset=None))
    assert len(rows) == 12 and [r.index for r in rows] == list(range(12))
    assert {r.dataset for r in rows} == {
        "reddit",
        "amazon",
        "medium",
        "youtube",
        "wildchat",
        "enron",
    }


def test_split_option_names_a_single_file(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", sample_rows()[:2])
    assert [s.split for s in find_splits(path, split="test")] == ["test"]


def test_jsonl_row_numbers_are_line_numbers(tmp_path):
    rows = sample_rows()[:2]
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n", "utf-8")
    assert [r.index for r in iter_rows(find_splits(path)[0], dataset=None)] == [0, 2]


def test_parquet_json_and_jsonl_load_the_same_rows(tmp_path):
    rows = sample_rows()
    from_jsonl = load_rows(write_jsonl(tmp_path / "a.jsonl", rows), dataset=None)["train"]
    from_parquet = load_rows(_write_parquet(tmp_path / "a.parquet", rows), dataset=None)["train"]
    json_path = tmp_path / "a.json"
    json_path.write_text(json.dumps(rows), "utf-8")
    from_json = load_rows(json_path, dataset=None)["train"]
    assert _summary(from_parquet) == _summary(from_jsonl) == _summary(from_json)
    assert from_parquet[0].file == str(tmp_path / "a.parquet")


def test_parquet_with_dict_metadata_and_struct_states(tmp_path):
    rows = sample_rows()[2:4]  # the email pair
    for row in rows:
        for message in row["prompt"]:
            message["metadata"] = json.loads(message["metadata"])
        row["states"] = {"stance": f"stance of {row['turn_id']}", "goal": None}
        row["trace"] = "a trace"
    loaded = load_rows(_write_parquet(tmp_path / "x.parquet", rows), dataset="enron")["train"]
    assert loaded[1].prompt[1]["metadata"]["from"] == "mike.curry@enron.com"
    assert loaded[1].states == {"stance": "stance of 2"}  # struct fill-ins (None) are dropped
    assert loaded[0].trace == "a trace"


def test_folder_of_splits_in_mixed_formats(tmp_path):
    rows = sample_rows()
    write_jsonl(tmp_path / "train.jsonl", rows[:6])
    _write_parquet(tmp_path / "val.parquet", rows[6:8])
    (tmp_path / "test.json").write_text(json.dumps(rows[8:]), "utf-8")
    (tmp_path / "notes.txt").write_text("ignored", "utf-8")
    splits = find_splits(tmp_path)
    assert [(s.split, s.name) for s in splits] == [
        ("train", str(tmp_path / "train.jsonl")),
        ("val", str(tmp_path / "val.parquet")),
        ("test", str(tmp_path / "test.json")),
    ]
    loaded = load_rows(tmp_path, dataset=None)
    assert {k: len(v) for k, v in loaded.items()} == {"train": 6, "val": 2, "test": 4}
    assert [s.split for s in find_splits(tmp_path, split="val")] == ["val"]


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda d: None, "no split files"),  # empty folder
        (
            lambda d: [(d / "train.jsonl").write_text(""), (d / "train.json").write_text("[]")],
            "several files",
        ),
    ],
)
def test_bad_folder(tmp_path, setup, fragment):
    setup(tmp_path)
    with pytest.raises(DataError, match=fragment):
        find_splits(tmp_path)


@pytest.mark.parametrize(
    ("name", "text", "fragment", "row"),
    [
        ("rows.csv", "a,b\n", "unsupported file type", None),
        ("rows.json", '{"rows": []}', "JSON array", None),
        ("rows.json", "[1, 2", "not valid JSON", None),
        ("rows.json", "[[1]]", "not a JSON object", 0),
        ("rows.jsonl", "{}\n{oops\n", "not valid JSON", 1),
        ("rows.jsonl", "[1]\n", "not a JSON object", 0),
    ],
)
def test_bad_files(tmp_path, name, text, fragment, row):
    path = tmp_path / name
    path.write_text(text, "utf-8")
    with pytest.raises(DataError, match=fragment) as err:
        for split in find_splits(path):
            list(iter_raw_rows(split))
    assert err.value.file == str(path) and err.value.row == row


def test_missing_source_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        find_splits(tmp_path / "nothing here")


def test_hub_rows_go_through_the_same_validation(monkeypatch):
    import datasets

    rows = sample_rows()[2:4]
    for row in rows:
        row["prompt"] = json.dumps(row["prompt"])  # the hub may ship prompt as a JSON string
    calls = []

    def fake_load_dataset(repo, split=None):
        calls.append((repo, split))
        data = {"train": rows[:1], "test": rows[1:]}
        built = {name: datasets.Dataset.from_list(part) for name, part in data.items()}
        return built[split] if split else datasets.DatasetDict(built)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    splits = find_splits("email")  # a hub name resolves to its repo
    assert calls == [("snap-stanford/humanual-email", None)]
    assert [(s.split, s.name, s.num_rows) for s in splits] == [
        ("train", "snap-stanford/humanual-email[train]", 1),
        ("test", "snap-stanford/humanual-email[test]", 1),
    ]
    (test_row,) = iter_rows(splits[1], dataset="enron")
    assert test_row.prompt[1]["role"] == "mike.curry@enron.com"

    rows[1]["completion"] = ""
    with pytest.raises(DataError) as err:
        list(iter_rows(find_splits("snap-stanford/humanual-email", split="test")[0], dataset=None))
    assert (err.value.file, err.value.row, err.value.field) == (
        "snap-stanford/humanual-email[test]",
        0,
        "completion",
    )


def test_hub_failure_is_a_data_error(monkeypatch):
    import datasets

    def offline(repo, split=None):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="could not load hub dataset snap-stanford/x: no network"):
        find_splits("snap-stanford/x")
