"""Every malformed row raises a DataError that names the file, the row and the field."""

from __future__ import annotations

import json

import pytest

from humanlm.data.load import find_splits, iter_rows
from humanlm.data.schema import normalize_row, parse_persona
from humanlm.errors import DataError
from tests.data.samples import sample_row, write_jsonl


def _drop(key):
    return lambda r: r.pop(key)


def _set(key, value):
    return lambda r: r.__setitem__(key, value)


def _drop_content(index):
    return lambda r: r["prompt"][index].pop("content")


CASES = [
    (_drop("completion"), "completion", "missing completion"),  # missing
    (_set("completion", ""), "completion", "empty"),  # empty
    (_set("completion", "  \n"), "completion", "empty"),  # whitespace only
    (_set("completion", 42), "completion", "must be a string"),  # not a string
    (_drop("prompt"), "prompt", "missing prompt"),
    (_set("prompt", "not json ["), "prompt", "not JSON"),  # string that does not parse
    (_set("prompt", '{"role": "a"}'), "prompt", "must be a list"),  # JSON, but not a list
    (_set("prompt", 7), "prompt", "must be a list"),
    (_drop_content(2), "prompt[2].content", "missing"),  # a message without content
    (lambda r: r["prompt"][1].__setitem__("content", 3), "prompt[1].content", "not a string"),
    (lambda r: r["prompt"][1].pop("role"), "prompt[1].role", "role"),
    (lambda r: r["prompt"][0].__setitem__("metadata", "{oops"), "prompt[0].metadata", "JSON"),
    (_set("persona", '{"interests": ["x"'), "persona", "not valid JSON"),  # broken JSON object
    (_set("persona", "{ this is not json }"), "persona", "not valid JSON"),
    (_set("persona", '{"interests": "chess"}'), "persona.interests", "list of strings"),
    (_set("persona", 12), "persona", "string or an object"),
    (_drop("user_id"), "user_id", "missing user_id"),
    (_set("user_id", ""), "user_id", "empty"),
    (_drop("post_id"), "post_id", "missing post_id"),
    (_set("dataset", "tiktok"), "dataset", "unknown dataset 'tiktok'"),
    (_set("turn_id", 9), "turn_id", "does not match"),
    (_set("turn_id", "three"), "turn_id", "integer"),
    (_set("timestamp", "yesterday"), "timestamp", "UTC seconds"),
    (_set("trace", ["a"]), "trace", "must be a string"),
    (_set("states", "{bad"), "states", "not JSON"),
    (_set("states", {"stance": 3}), "states.stance", "must be text"),
]


@pytest.mark.parametrize(("mutate", "field", "fragment"), CASES)
def test_bad_row_names_file_row_and_field(tmp_path, mutate, field, fragment):
    good = sample_row("opinion", turn_id=3)  # three context messages
    bad = sample_row("opinion", turn_id=3)
    mutate(bad)
    path = write_jsonl(tmp_path / "rows.jsonl", [good, bad])
    (split,) = find_splits(path)
    with pytest.raises(DataError) as err:
        list(iter_rows(split, dataset=None))
    message = str(err.value)
    assert (err.value.file, err.value.row, err.value.field) == (str(path), 1, field)
    assert str(path) in message and "row 1" in message and f"'{field}'" in message
    assert fragment in message


def test_unknown_dataset_message_lists_known_ids(tmp_path):
    bad = sample_row("email")
    bad["dataset"] = "myspace"
    path = write_jsonl(tmp_path / "rows.jsonl", [bad])
    with pytest.raises(DataError, match=r"reddit, amazon, medium, youtube, wildchat, enron"):
        list(iter_rows(find_splits(path)[0], dataset=None))


def test_row_dataset_must_match_requested(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [sample_row("email")])
    with pytest.raises(DataError, match="'email' \\(enron\\) but 'reddit' was requested"):
        list(iter_rows(find_splits(path)[0], dataset="reddit"))


def test_missing_dataset_needs_explicit_id():
    raw = sample_row("email")
    del raw["dataset"]
    with pytest.raises(DataError, match="no dataset column"):
        normalize_row(raw, file="x.jsonl", row=0, dataset=None)
    assert normalize_row(raw, file="x.jsonl", row=0, dataset="enron").dataset == "enron"


def test_optional_columns_may_be_missing():
    raw = sample_row("chat", turn_id=2)
    for key in ("timestamp", "metadata", "turn_id", "trace", "states", "dataset", "hf_repo"):
        raw.pop(key, None)
    for message in raw["prompt"]:
        del message["metadata"]
    row = normalize_row(raw, file="x", row=0, dataset="wildchat")
    assert row.turn_id == 2 and row.timestamp is None and row.metadata == {}
    assert row.trace == "" and row.states == {}
    assert row.prompt[0]["metadata"] == {}


def test_prompt_as_json_string_and_metadata_as_dict():
    raw = sample_row("email", turn_id=2)
    for message in raw["prompt"]:
        message["metadata"] = json.loads(message["metadata"])
    raw["prompt"] = json.dumps(raw["prompt"])
    row = normalize_row(raw, file="x", row=0, dataset=None)
    assert row.prompt[1]["metadata"]["from"] == "mike.curry@enron.com"
    assert row.prompt[0]["role"] == "lamb.john@enron.com"


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        (
            "A user who is chatting with an AI assistant.",
            "A user who is chatting with an AI assistant.",
        ),
        ("  plain text with spaces  ", "plain text with spaces"),  # stripped, else verbatim
        ("[not an object] just text", "[not an object] just text"),  # only '{' means JSON
        (None, ""),  # missing persona
    ],
)
def test_plain_text_persona_is_verbatim(persona, expected):
    assert parse_persona(persona) == expected


def test_structured_persona_fills_missing_lists():
    persona = parse_persona('{"demographics": {"gender": "NA"}, "interests": ["a"]}')
    assert persona == {
        "demographics": {"gender": "NA"},
        "interests": ["a"],
        "values": [],
        "communication": [],
        "statistics": [],
    }


def test_states_and_trace_are_carried():
    raw = sample_row("chat", turn_id=2)
    raw["trace"] = "They want the word."
    raw["states"] = json.dumps({"stance": "unsure", "goal": "ask"})
    row = normalize_row(raw, file="x", row=0, dataset=None)
    assert row.trace == "They want the word." and row.states == {"stance": "unsure", "goal": "ask"}
    raw["states"] = [("stance", "unsure")]  # parquet map columns come back as pairs
    assert normalize_row(raw, file="x", row=0, dataset=None).states == {"stance": "unsure"}
