"""Training rows: SFT targets per state set, GRPO rows with the reward's columns."""

import json

from humanlm.states.template import END_OF_TURN
from humanlm.train.data import build_grpo_dataset, build_sft_dataset, sft_target, take_fraction

EXAMPLE = {
    "example_id": "demo-1",
    "data_source": "reddit",
    "persona": "age group: 30",
    "messages": [{"role": "user", "name": "op", "content": "Am I wrong?"}],
    "ground_truth": "NTA, you asked first.",
    "trace": "I side with the poster. I feel mild annoyance.",
    "states": json.dumps({"stance": "firmly sides with the poster", "emotion": ""}),
}


def test_sft_targets_per_state_and_set():
    cases = [
        # (state, state_set, thinking, use_trace) -> target
        (("response", "r_no_tag", False, True), "NTA, you asked first."),  # raw reply
        (("response", "r", False, True), "<response>NTA, you asked first.</response>"),  # tagged
        (
            ("response", "think_r", True, True),
            "I side with the poster. I feel mild annoyance.\n</think>\n\n<response>NTA, you asked first.</response>",
        ),
        (
            ("response", "sebvgcr", True, False),
            "</think>\n\n<response>NTA, you asked first.</response>",
        ),
        (
            ("stance", "sebvgcr", True, True),
            "<stance>firmly sides with the poster</stance>",
        ),  # reference
    ]
    for (state, state_set, thinking, use_trace), expected in cases:
        got = sft_target(
            EXAMPLE, state, state_set=state_set, thinking=thinking, use_trace=use_trace
        )
        assert got == expected + END_OF_TURN, (state, state_set)


def test_missing_targets_are_none_not_empty_blocks():
    assert sft_target(EXAMPLE, "emotion", state_set="sebvgcr", thinking=True) is None  # empty state
    assert sft_target(EXAMPLE, "goal", state_set="sebvgcr", thinking=True) is None  # absent state
    no_trace = {**EXAMPLE, "trace": ""}
    assert sft_target(no_trace, "response", state_set="think_r", thinking=True) is None


def test_grpo_rows_carry_state_and_reward_columns():
    dataset = build_grpo_dataset(
        [EXAMPLE, {**EXAMPLE, "example_id": "demo-2"}], state_set="sebvgcr", thinking=True
    )
    assert len(dataset) == 14
    assert sorted(set(dataset["state"])) == sorted(
        ["stance", "emotion", "belief", "value", "goal", "communication", "response"]
    )
    row = dataset[0]
    assert row["context"] == [{"name": "op", "content": "Am I wrong?"}]
    assert row["ground_truth"] == EXAMPLE["ground_truth"]
    for r in dataset:
        ending = "<think>\n" if r["state"] == "response" else "<think>\n\n</think>\n\n"
        assert r["prompt"].endswith("<|im_start|>user\n<name>HUMAN</name>\n" + ending)
        assert EXAMPLE["ground_truth"] not in r["prompt"]
    # States are shuffled across the dataset, not grouped per example.
    assert dataset["state"][:7] != [
        "stance",
        "emotion",
        "belief",
        "value",
        "goal",
        "communication",
        "response",
    ]


def test_sft_dataset_skips_rows_without_targets():
    dataset = build_sft_dataset([EXAMPLE], state_set="sebvgcr", thinking=True)
    assert sorted(dataset["state"]) == ["response", "stance"]


def test_take_fraction_is_a_seeded_ordered_subset():
    rows = [{"example_id": str(i)} for i in range(40)]
    half = take_fraction(rows, 0.5, seed=3)
    assert len(half) == 20 and half == take_fraction(rows, 0.5, seed=3)  # same subset per rank
    assert [int(r["example_id"]) for r in half] == sorted(int(r["example_id"]) for r in half)
    assert half != take_fraction(rows, 0.5, seed=4)
    assert take_fraction(rows, 1.0, seed=0) == rows and len(take_fraction(rows, 0.01, seed=0)) == 1
