"""Tests for the no-repeat n-gram ban: a brute-force reference on random rows, then real generation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from humanlm.model.ngram import NoRepeatNGramLogitsProcessor, ngram_processor_list

VOCAB = 5


def _reference_banned(
    row: list[int], n: int, prompt_length: int, pad: int | None = None, *, vocab: int = VOCAB
) -> set[int]:
    """By definition: t is banned iff appending t makes the last n tokens repeat an earlier n-gram."""
    seen = row[prompt_length:]
    banned = set()
    for token in range(vocab):
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


# The ban's scope (issue 21): ``reply`` leaves the thinking block out, ``all`` covers it.
OPEN, CLOSE = 8, 9  # stand-ins for the ids of <think> and </think>
THINK = (OPEN, CLOSE)

SCOPE_CASES = [
    # (row, n, prompt_length, banned with scope reply, banned with scope all)
    pytest.param([OPEN, 1, 2, 3, CLOSE, 1, 2], 3, 1, set(), {3}, id="reuse-thinking-draft"),
    pytest.param([OPEN, 1, 2, 3, 1, 2], 3, 1, set(), {3}, id="still-thinking-bans-nothing"),
    pytest.param([OPEN, CLOSE, 1, 2, 3, 1, 2], 3, 2, {3}, {3}, id="thinking-off-all-reply"),
    pytest.param([1, 2, 3, 1, 2], 3, 0, {3}, {3}, id="no-think-markers"),
    pytest.param(
        [OPEN, 1, 2, CLOSE, 1, 2], 3, 1, set(), {CLOSE}, id="straddling-ngram-not-counted"
    ),
    pytest.param([OPEN, 5, CLOSE, 1, OPEN, 5, CLOSE], 3, 1, set(), {1}, id="empty-reply"),
    pytest.param([OPEN, 5, CLOSE, 1, OPEN, CLOSE, 1], 3, 1, set(), {OPEN}, id="suffix-straddles"),
    pytest.param([OPEN, 1, 2, 3, CLOSE, 1, 2, 3, 1, 2], 3, 1, {3}, {3}, id="repeat-within-reply"),
    pytest.param([OPEN, CLOSE, 1, 2, 3, OPEN, 1, 2], 3, 2, set(), {3}, id="block-reopened"),
    pytest.param(
        [OPEN, 4, 4, 4, CLOSE, 4, 4], 2, 1, {4}, {4, CLOSE}, id="reply-repeat-not-thinking"
    ),
]


@pytest.mark.parametrize(("row", "n", "prompt_length", "reply", "everything"), SCOPE_CASES)
def test_ban_scope_cases(row, n, prompt_length, reply, everything):
    def banned(think_ids):
        processor = NoRepeatNGramLogitsProcessor(
            n, prompt_length=prompt_length, think_ids=think_ids
        )
        out = processor(torch.tensor([row]), torch.zeros(1, 10))
        return set(torch.nonzero(out[0] == -float("inf")).flatten().tolist())

    assert banned(THINK) == reply
    assert banned(None) == everything


def _reference_reply_start(row: list[int], prompt_length: int) -> int:
    """By definition: after the last </think>; the row's end while a <think> is still open."""
    for position in range(len(row) - 1, -1, -1):
        if row[position] == OPEN:
            return len(row)
        if row[position] == CLOSE:
            return max(prompt_length, position + 1)
    return prompt_length


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.sampled_from([1, 2, 3, OPEN, CLOSE]), min_size=12, max_size=12),
        min_size=1,
        max_size=3,
    ),
    n=st.integers(1, 4),
    prompt_length=st.integers(0, 4),
)
def test_reply_scope_matches_brute_force_on_the_reply(rows, n, prompt_length):
    out = NoRepeatNGramLogitsProcessor(n, prompt_length=prompt_length, think_ids=THINK)(
        torch.tensor(rows), torch.zeros(len(rows), 10)
    )
    for r, row in enumerate(rows):
        start = _reference_reply_start(row, prompt_length)
        expected = _reference_banned(row, n, start, vocab=10)
        got = {t for t in range(10) if out[r, t] == -float("inf")}
        assert got == expected, (row, start)


def test_think_token_ids_come_from_the_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    from humanlm.model.ngram import scope_think_ids, think_token_ids

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = think_token_ids(tokenizer)
    assert ids == tuple(tokenizer.convert_tokens_to_ids(["<think>", "</think>"]))
    assert tokenizer.decode([ids[1]]) == "</think>"
    assert scope_think_ids("reply", tokenizer) == ids
    assert scope_think_ids("all", tokenizer) is None
    with pytest.raises(ValueError, match="scope"):
        scope_think_ids("thinking", tokenizer)


def test_reply_scope_leaves_an_open_think_block_alone_in_generate(tiny_model_dir):
    # issue 21: while the model thinks, the eval ban does not touch it; after a closed (empty)
    # block every generated token is reply and repeats are banned.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from humanlm.model.ngram import think_token_ids

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    think_ids = think_token_ids(tokenizer)
    greedy = {"max_new_tokens": 20, "min_new_tokens": 20, "do_sample": False}

    def run(prompt: str, ids) -> list[int]:
        inputs = tokenizer([prompt], return_tensors="pt")
        length = inputs["input_ids"].shape[1]
        processors = ngram_processor_list(4, length, think_ids=ids) if ids != "off" else None
        out = model.generate(**inputs, **greedy, logits_processor=processors)
        return out[0, length:].tolist()

    thinking, answering = "Hello world<think>\n", "Hello world<think>\n\n</think>\n\n"
    baseline = run(thinking, "off")
    assert _repeated_ngrams(baseline, 4)
    assert think_ids[1] not in baseline  # the block stays open for the whole generation
    assert run(thinking, think_ids) == baseline
    assert not _repeated_ngrams(run(thinking, None), 4)
    assert not _repeated_ngrams(run(answering, think_ids), 4)
