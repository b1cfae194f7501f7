"""Tests for the no-repeat n-gram ban: a brute-force reference on random rows, then real generation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from humanlm.model.ngram import NoRepeatNGramLogitsProcessor, ngram_processor_list

VOCAB = 5


def _reference_banned(
    row: list[int], n: int, prompt_length: int, pad: int | None = None
) -> set[int]:
    """By definition: t is banned iff appending t makes the last n tokens repeat an earlier n-gram."""
    seen = row[prompt_length:]
    banned = set()
    for token in range(VOCAB):
        extended = [*seen, token]
        if len(extended) < n + 1:
            continue
        last = extended[-n:]
        for start in range(len(extended) - n):
            earlier = extended[start : start + n]
            if earlier == last and (pad is None or pad not in earlier):
                banned.add(token)
    return banned


@st.composite
def batches(draw):
    rows, length = draw(st.integers(1, 3)), draw(st.integers(0, 14))
    ids = draw(
        st.lists(
            st.lists(st.integers(0, VOCAB - 1), min_size=length, max_size=length),
            min_size=rows,
            max_size=rows,
        )
    )
    return ids, length


@settings(max_examples=300, deadline=None)
@given(
    batch=batches(),
    n=st.integers(1, 4),
    ignore_prompt=st.booleans(),
    pad=st.none() | st.just(0),
    data=st.data(),
)
def test_ban_matches_brute_force(batch, n, ignore_prompt, pad, data):
    ids, length = batch
    prompt_length = data.draw(st.integers(0, length)) if ignore_prompt else 0
    scores = torch.randn(len(ids), VOCAB)
    original = scores.clone()
    processor = NoRepeatNGramLogitsProcessor(n, prompt_length=prompt_length, pad_token_id=pad)
    out = processor(torch.tensor(ids, dtype=torch.long).reshape(len(ids), length), scores)
    assert torch.equal(scores, original), "the input scores must not be modified"
    for r, row in enumerate(ids):
        banned = _reference_banned(row, n, prompt_length, pad)
        got = {t for t in range(VOCAB) if out[r, t] == -float("inf")}
        assert got == banned
        kept = [t for t in range(VOCAB) if t not in banned]
        assert torch.equal(out[r, kept], original[r, kept])


CASES = [
    ([1, 2, 3, 1, 2], 3, 0, {3}),  # repeat of "1 2 3" banned
    ([1, 2, 3, 1, 2], 3, 2, set()),  # the first 1 2 3 sits in the ignored prompt
    ([1, 2, 3, 4, 1, 2], 3, 1, set()),  # prompt covers the start of the only earlier 3-gram
    ([7, 7, 7], 2, 0, {7}),  # overlapping n-grams count
    ([1, 2, 1], 1, 0, {1, 2}),  # n=1 bans every token already seen
    ([0, 0, 5, 0, 0], 3, 0, {5}),  # without a pad id the padding forms n-grams
]


@pytest.mark.parametrize(("row", "n", "prompt_length", "banned"), CASES)
def test_ban_cases(row, n, prompt_length, banned):
    scores = torch.zeros(1, 8)
    out = NoRepeatNGramLogitsProcessor(n, prompt_length=prompt_length)(torch.tensor([row]), scores)
    assert set(torch.nonzero(out[0] == -float("inf")).flatten().tolist()) == banned


def test_pad_token_id_ignores_padding():
    scores = torch.zeros(1, 8)
    out = NoRepeatNGramLogitsProcessor(3, pad_token_id=0)(torch.tensor([[0, 0, 5, 0, 0]]), scores)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("bad", [0, -1, 2.0])
def test_rejects_bad_ngram_size(bad):
    with pytest.raises(ValueError, match="ngram_size"):
        NoRepeatNGramLogitsProcessor(bad)


def _repeated_ngrams(tokens: list[int], n: int) -> bool:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


def test_generate_with_ban_has_no_repeated_4grams(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    inputs = tokenizer(
        ["Hello world", "A longer prompt that needs padding"], return_tensors="pt", padding=True
    )
    prompt_length = inputs["input_ids"].shape[1]
    greedy = {"max_new_tokens": 40, "min_new_tokens": 40, "do_sample": False}
    baseline = model.generate(**inputs, **greedy)
    banned = model.generate(
        **inputs, **greedy, logits_processor=ngram_processor_list(4, prompt_length)
    )
    # Random tied embeddings make greedy decoding loop on the last token: the ban has work to do.
    assert any(_repeated_ngrams(row[prompt_length:].tolist(), 4) for row in baseline)
    for row in banned:
        assert not _repeated_ngrams(row[prompt_length:].tolist(), 4)
