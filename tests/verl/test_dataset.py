"""HumanlmDataset on verl's RLHFDataset: 7 items per example for training, the response only for
validation, our template's prompt endings, the fields the agent loop and reward read, and the
over-long filter measured on the real per-state prompt."""

from __future__ import annotations

from collections import Counter

import pytest

pytest.importorskip("verl", reason="verl is not installed (pip install 'humanlm[verl]')")

from humanlm.data.prepare import load_prepared  # noqa: E402
from humanlm.errors import ConfigError  # noqa: E402
from humanlm.states import STATE_NAMES  # noqa: E402
from humanlm.verl.agent_loop import AGENT_NAME, build_prompt_ids  # noqa: E402
from humanlm.verl.dataset import HumanlmDataset  # noqa: E402

from .conftest import configured  # noqa: E402

RESPONSE_END = "<|im_start|>user\n<name>HUMAN</name>\n<think>\n"
STATE_END = "<|im_start|>user\n<name>HUMAN</name>\n<think>\n\n</think>\n\n"


def test_train_serves_every_state_of_every_example(train_dataset, prepared_dir) -> None:
    examples = load_prepared(prepared_dir / "train.parquet")
    assert len(train_dataset) == 7 * len(examples)
    per_example = Counter(
        train_dataset[i]["extra_info"]["example_id"] for i in range(len(train_dataset))
    )
    assert set(per_example.values()) == {7}
    states = {
        (train_dataset[i]["extra_info"]["example_id"], train_dataset[i]["extra_info"]["state"])
        for i in range(len(train_dataset))
    }
    assert len(states) == len(train_dataset)  # each (example, state) exactly once
    first_28 = {train_dataset[i]["extra_info"]["state"] for i in range(28)}
    assert len(first_28) > 1  # states are mixed, not one block per state


def test_items_carry_what_agent_loop_and_reward_read(train_dataset, prepared_dir) -> None:
    examples = {ex["example_id"]: ex for ex in load_prepared(prepared_dir / "train.parquet")}
    for i in range(14):
        item = train_dataset[i]
        info = item["extra_info"]
        example = examples[info["example_id"]]
        assert item["agent_name"] == AGENT_NAME
        assert item["data_source"] == example["data_source"]
        assert item["reward_model"]["ground_truth"] == example["ground_truth"]
        assert info["split"] == "train" and info["tagged"] is True and info["index"] == i
        assert info["thinking"] is (info["state"] == "response")
        assert info["context"] == [
            {"name": m["name"], "content": m["content"]} for m in example["messages"]
        ]
        system, *context = item["raw_prompt"]
        assert system["role"] == "system" and f"<{info['state']}>" in system["content"]
        assert [m["content"] for m in context] == [m["content"] for m in example["messages"]]


def test_prompts_end_as_the_template_requires(train_dataset, tokenizer) -> None:
    seen = set()
    for i in range(len(train_dataset)):
        item = train_dataset[i]
        state = item["extra_info"]["state"]
        if state in seen:
            continue
        seen.add(state)
        ids = build_prompt_ids(
            tokenizer, item["raw_prompt"], thinking=item["extra_info"]["thinking"]
        )
        text = tokenizer.decode(ids)
        assert text.endswith(RESPONSE_END if state == "response" else STATE_END), state
        # The length filter measures the same text the agent loop sends.
        example = train_dataset.examples[train_dataset.dataframe[i]["example_index"]]
        assert text == train_dataset.prompt_text(example, state)
        assert text.startswith("<|im_start|>system\n")
    assert seen == set(STATE_NAMES)


def test_validation_serves_the_response_only(val_dataset, prepared_dir, tokenizer) -> None:
    examples = load_prepared(prepared_dir / "val.parquet")
    assert len(val_dataset) == len(examples)
    for i in range(len(val_dataset)):
        item = val_dataset[i]
        assert item["extra_info"]["state"] == "response"
        assert item["extra_info"]["split"] == "val"
        assert item["extra_info"]["example_id"] == examples[i]["example_id"]
    text = tokenizer.decode(
        build_prompt_ids(tokenizer, val_dataset[0]["raw_prompt"], thinking=True)
    )
    assert text.endswith(RESPONSE_END)


def test_overlong_filter_measures_the_real_per_state_prompt(base_config, tokenizer, train_dataset):
    examples = train_dataset.examples
    longest = [
        max(len(tokenizer(train_dataset.prompt_text(ex, st))["input_ids"]) for st in STATE_NAMES)
        for ex in examples
    ]
    limit = sorted(longest)[len(longest) // 2]
    cfg = configured(base_config, {"data.max_prompt_length": limit})
    filtered = HumanlmDataset(cfg.data.train_files, tokenizer, cfg.data)
    kept = {ex["example_id"] for ex in filtered.examples}
    expected = {ex["example_id"] for ex, n in zip(examples, longest, strict=True) if n <= limit}
    assert kept == expected and 0 < len(kept) < len(examples)
    assert len(filtered) == 7 * len(kept)
    for i in range(len(filtered)):
        item = filtered[i]
        ids = build_prompt_ids(
            tokenizer, item["raw_prompt"], thinking=item["extra_info"]["thinking"]
        )
        assert len(ids) <= limit


def test_verl_collates_items_into_a_dataproto(train_dataset) -> None:
    from verl.protocol import DataProto
    from verl.utils.dataset.rl_dataset import collate_fn

    batch = DataProto.from_single_dict(collate_fn([train_dataset[i] for i in range(8)]))
    assert len(batch) == 8
    repeated = batch.repeat(4, interleave=True)
    assert [x["state"] for x in repeated.non_tensor_batch["extra_info"][:4]] == [
        train_dataset[0]["extra_info"]["state"]
    ] * 4


@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ({"data.val_files": "TRAIN"}, "name the same files"),  # train and val files equal
        ({"data.humanlm.mode": "sft"}, "cannot train on verl"),  # an SFT mode
    ],
)
def test_dataset_refuses(base_config, tokenizer, updates, message) -> None:
    updates = {k: base_config.data.train_files if v == "TRAIN" else v for k, v in updates.items()}
    cfg = configured(base_config, updates)
    with pytest.raises(ConfigError, match=message):
        HumanlmDataset(cfg.data.train_files, tokenizer, cfg.data)
