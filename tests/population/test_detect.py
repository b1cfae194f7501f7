"""The offline detector: chance on copies, near-perfect on obvious simulators, grouped folds."""

from __future__ import annotations

import random

import numpy as np
import pytest

from humanlm.population.detect import MIN_PAIRS, detect, style_features

_WORDS = "the a cat dog sat ran on over my her mat hill because honestly maybe".split()


def _real(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    replies = []
    for _ in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 40))]
        replies.append(" ".join(words).capitalize() + rng.choice([".", "!", "?", ""]))
    return replies


def test_copies_of_the_real_replies_are_at_chance():
    real = _real(30)
    result = detect(real, real)
    assert result["accuracy"] == pytest.approx(50.0)
    assert result["turing_distance"] == pytest.approx(0.0)
    assert result["pair_accuracy"] == pytest.approx(50.0)
    assert result["pairs"] == 30 and result["folds"] == 5


def test_the_same_reply_every_time_is_detected():
    result = detect(["I totally understand how you feel about this."] * 30, _real(30))
    assert result["accuracy"] >= 90 and result["turing_distance"] >= 40


def test_random_word_salad_is_detected():
    rng = random.Random(1)
    salad = [" ".join(rng.choice(["zq", "xv", "kj"]) * 3 for _ in range(12)) for _ in range(30)]
    assert detect(salad, _real(30))["accuracy"] >= 90


def test_too_few_pairs_are_unscored_not_zero():
    result = detect(["a"] * (MIN_PAIRS - 1), ["b"] * (MIN_PAIRS - 1))
    assert result["accuracy"] is None and result["turing_distance"] is None
    assert "pairs" in result["reason"]


def test_encoder_features_are_used():
    class Lookup:  # a scripted encoder: one fixed direction for simulated texts
        calls = 0

        def encode(self, texts):
            Lookup.calls += 1
            return np.array([[1.0, 0.0] if t.startswith("SIM") else [0.0, 1.0] for t in texts])

    real = _real(12)
    result = detect([f"SIM {r}" for r in real], real, encoder=Lookup())
    assert Lookup.calls == 1 and "MiniLM" in result["method"] and result["accuracy"] >= 90


@pytest.fixture
def folds(monkeypatch) -> list[tuple[set, set]]:
    """The (train groups, test groups) of every fold the detector's GroupKFold makes."""
    from sklearn import model_selection

    seen: list[tuple[set, set]] = []
    original = model_selection.GroupKFold.split

    def spy(self, x, y=None, groups=None):
        for train, test in original(self, x, y, groups):
            seen.append((set(groups[train]), set(groups[test])))
            yield train, test

    monkeypatch.setattr(model_selection.GroupKFold, "split", spy)
    return seen


def test_grouped_folds_keep_both_replies_of_an_example_together(folds):
    seen = folds
    detect(_real(10, seed=3), _real(10))
    assert len(seen) == 5
    assert all(not (train & test) for train, test in seen)


def test_style_features_are_finite_for_odd_replies():
    for text in ["", "   ", "!!!", "A\n\nB", "x" * 5000]:
        assert np.isfinite(style_features(text)).all()


def test_pairs_of_one_context_share_a_fold(folds):
    seen = folds
    posts = [f"post{i // 3}" for i in range(12)]  # four threads, three replies each
    result = detect(_real(12, seed=3), _real(12), groups=posts)
    assert result["contexts"] == 4 and result["folds"] == 4 and len(seen) == 4
    assert all(len(test) == 1 and not (train & test) for train, test in seen)


def test_one_context_only_is_unscored():
    result = detect(_real(8, seed=2), _real(8), groups=["same thread"] * 8)
    assert result["accuracy"] is None and "contexts" in result["reason"]
