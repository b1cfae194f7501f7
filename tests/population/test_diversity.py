"""Lexical diversity measures: hand-computed values and the direction each one moves."""

from __future__ import annotations

import pytest

from humanlm.population.diversity import (
    HDD_SAMPLE,
    MATTR_WINDOW,
    compare_diversity,
    distinct_n,
    hdd,
    mattr,
    tokenize,
    yules_k,
)


@pytest.mark.parametrize(
    ("texts", "n", "expected"),
    [
        (["a b c"], 1, 1.0),  # nothing repeats
        (["a b a b"], 1, 0.5),  # 2 types over 4 tokens
        (["a b a b"], 2, 2 / 3),  # (a b), (b a), (a b)
        (["a b", "b c"], 2, 1.0),  # no bigram spans two replies
        (["a", "b"], 2, None),  # no bigram at all
        ([], 1, None),  # empty corpus
    ],
)
def test_distinct_n(texts, n, expected):
    assert distinct_n(texts, n) == (None if expected is None else pytest.approx(expected))


def test_tokenize_lowercases_words_and_keeps_inner_apostrophes():
    assert tokenize("NTA, don't  worry... OP's fine!") == ["nta", "don't", "worry", "op's", "fine"]


def test_mattr_window_and_short_corpus():
    assert mattr(list("abcab")) == pytest.approx(3 / 5)  # shorter than the window: plain TTR
    tokens = [str(i % 10) for i in range(200)]  # 10 types cycling
    assert mattr(tokens) == pytest.approx(10 / MATTR_WINDOW)
    assert mattr([str(i) for i in range(200)]) == 1.0
    assert mattr([]) is None


def test_yules_k_hand_computed():
    # f = (2, 1, 1): sum f^2 = 6, N = 4 -> 1e4 * (6 - 4) / 16
    assert yules_k(list("aabc")) == pytest.approx(1250.0)
    assert yules_k(list("abcd")) == 0.0  # no repetition
    assert yules_k([]) is None


def test_hdd_matches_its_definition():
    from math import comb

    tokens = [str(i % 7) for i in range(100)] + [str(i) for i in range(100, 130)]
    n, draw = len(tokens), HDD_SAMPLE
    counts = {t: tokens.count(t) for t in set(tokens)}
    expected = sum(1 - comb(n - f, draw) / comb(n, draw) for f in counts.values()) / draw
    assert hdd(tokens) == pytest.approx(expected, rel=1e-9)
    assert hdd(list("abc")) == 1.0  # draw = whole corpus, all distinct
    assert hdd(list("aaaa")) == pytest.approx(1 / 4)
    assert hdd([]) is None


def test_identical_replies_are_far_less_diverse_than_varied_ones():
    real = [f"reply number {i} talks about topic {i * 7} and {i * 13} things" for i in range(40)]
    same = ["I think you should talk to her about it."] * 40
    block = compare_diversity(same, real)
    sim, ref, ratio = block["simulated"], block["real"], block["ratio"]
    assert sim["distinct_2"] < 0.1 * ref["distinct_2"]
    assert sim["distinct_1"] < ref["distinct_1"] and sim["mattr"] < ref["mattr"]
    assert sim["hdd"] < ref["hdd"] and sim["yules_k"] > ref["yules_k"]
    assert ratio["distinct_2"] == pytest.approx(sim["distinct_2"] / ref["distinct_2"], abs=1e-3)
    assert sim["replies"] == ref["replies"] == 40
    copies = compare_diversity(real, real)["ratio"]
    assert all(v == 1.0 for v in copies.values())
