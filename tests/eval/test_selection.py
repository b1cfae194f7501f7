"""The eval set: the first N rows whose prompt fits the dataset's limit, against brute force."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from humanlm.data import sources
from humanlm.eval.selection import select_eval_examples
from humanlm.states import RESPONSE
from humanlm.states.examples import render_prompt


def lengths(examples, tokenizer, state_set="r", thinking=True):
    return [
        len(
            tokenizer(render_prompt(ex, RESPONSE, state_set=state_set, thinking=thinking))[
                "input_ids"
            ]
        )
        for ex in examples
    ]


@pytest.mark.parametrize("limit", [1, 3, 5, 50])
def test_filter_before_taking_the_first_rows(demo_examples, tiny_model_dir, monkeypatch, limit):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    sizes = lengths(demo_examples, tokenizer)
    caps = {"reddit": sorted(sizes)[len(sizes) // 2], "wildchat": sorted(sizes)[len(sizes) // 3]}
    for source, cap in caps.items():
        monkeypatch.setitem(
            sources.DATASETS, source, {**sources.DATASETS[source], "max_prompt_tokens": cap}
        )
    fits = [ex for ex, n in zip(demo_examples, sizes, strict=True) if n <= caps[ex["data_source"]]]
    assert 0 < len(fits) < len(demo_examples)  # the caps cut some rows
    kept, report = select_eval_examples(
        demo_examples, limit=limit, tokenizer=tokenizer, state_set="r", thinking=True
    )
    assert [ex["example_id"] for ex in kept] == [ex["example_id"] for ex in fits[:limit]]
    examined = report["examined"]
    assert report["applied"] is True and report["filtered"] == examined - len(kept)
    assert examined == (
        len(demo_examples) if len(fits) <= limit else demo_examples.index(fits[limit - 1]) + 1
    )
    assert report["limits"] == {s: caps[s] for s in report["limits"]}


def test_the_paper_limits_keep_short_prompts(demo_examples, tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    kept, report = select_eval_examples(
        demo_examples, limit=4, tokenizer=tokenizer, state_set="r", thinking=False
    )
    assert len(kept) == 4 and report["filtered"] == 0
    assert report["limits"]["reddit"] == 5120


def test_without_a_tokenizer_the_rows_are_taken_with_a_note(demo_examples):
    kept, report = select_eval_examples(
        demo_examples, limit=3, tokenizer=None, state_set="r", thinking=True
    )
    assert (
        kept == demo_examples[:3] and report["applied"] is False and "tokenizer" in report["note"]
    )
    kept, report = select_eval_examples(
        demo_examples, limit=3, tokenizer=None, state_set="r", thinking=True, enabled=False
    )
    assert kept == demo_examples[:3] and "length_filter is off" in report["note"]
