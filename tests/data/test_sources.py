from __future__ import annotations

import pytest

from humanlm.data.sources import DATASET_IDS, DATASETS, resolve_dataset
from humanlm.errors import DataError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("reddit", "reddit"),  # our id
        ("opinion", "reddit"),  # hub name
        ("book", "amazon"),
        ("politics", "medium"),
        ("news", "youtube"),
        ("chat", "wildchat"),
        ("email", "enron"),
        ("Generic", "generic"),  # case does not matter
    ],
)
def test_resolve_dataset(name, expected):
    assert resolve_dataset(name) == expected


def test_resolve_dataset_unknown_lists_known_ids():
    with pytest.raises(DataError) as err:
        resolve_dataset("tiktok", file="rows.jsonl", row=4)
    message = str(err.value)
    assert "tiktok" in message and "rows.jsonl" in message and "row 4" in message
    assert all(dataset_id in message for dataset_id in DATASET_IDS)
    assert err.value.field == "dataset"


def test_dataset_facts():
    assert DATASETS["reddit"]["hub_repo"] == "snap-stanford/humanual-opinion"
    assert DATASETS["enron"]["hub_repo"] == "snap-stanford/humanual-email"
    assert DATASETS["reddit"]["eval_rows"] == 5000
    assert {DATASETS[d]["eval_rows"] for d in DATASET_IDS if d != "reddit"} == {2000}
    assert DATASETS["amazon"]["max_prompt_tokens"] == 7168
