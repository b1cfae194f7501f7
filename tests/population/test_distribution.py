"""Reply length and AITA verdict distributions; the verdict rule on written and real replies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from humanlm.population.distribution import (
    VERDICTS,
    compare_lengths,
    compare_verdicts,
    read_verdict,
    verdict_shares,
)


def _fixture() -> Path:
    """The real Humanual sample rows, found in a ``shared/fixtures`` folder above the checkout."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "fixtures" / "humanual_sample.jsonl"
        if candidate.is_file():
            return candidate
    pytest.skip(
        "real data fixture not found: no shared/fixtures/humanual_sample.jsonl in a folder above "
        "the checkout (the CI machine has it; a clone elsewhere lacks it)"
    )


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("NTA. Your house, your rules.", "NTA"),  # verdict first
        ("nta, she's being unfair", "NTA"),  # lower case
        ("Honestly, NTA.", "NTA"),  # verdict after a word
        ("**YTA** and you know it", "YTA"),  # markdown bold
        ("Yta. Apologise.", "YTA"),  # mixed case
        ("ESH here, both of you", "ESH"),
        ("NAH, just a misunderstanding", "NAH"),
        ("INFO: did you tell her beforehand?", "INFO"),
        ("YWBTA if you skip the wedding", "YTA"),  # hypothetical forms
        ("YWNBTA, go ahead", "NTA"),
        ("I'd say YTA, not NTA", "YTA"),  # the first one counts
        ("NTA but INFO on the money", "NTA"),
        ("nah, you're fine", "none"),  # 'nah' is a word, not NAH
        ("need more info first", "none"),  # so is 'info'
        ("AITA for asking? Probably not.", "none"),  # the question is no verdict
        ("Look at https://i.imgur.com/NTAxyz.jpg", "none"),  # inside a word
        ("These are wonderful cat puddles!", "none"),
        ("", "none"),
    ],
)
def test_read_verdict_written_cases(reply, expected):
    assert read_verdict(reply) == expected


def test_every_label_is_reachable():
    replies = ["NTA", "YTA", "ESH", "NAH", "INFO", "no verdict"]
    assert [read_verdict(r) for r in replies] == list(VERDICTS)


def test_read_verdict_on_real_aita_replies_and_comments():
    rows = [json.loads(line) for line in _fixture().read_text("utf-8").splitlines() if line]
    threads = {r["post_id"]: r for r in rows if r["dataset"] == "opinion"}
    found = {}
    for post_id, row in threads.items():
        found[(post_id, "reply")] = read_verdict(row["completion"])
        for i, message in enumerate(row["prompt"]):
            found[(post_id, i)] = read_verdict(message["content"])
    assert found == {
        ("ef49r2", "reply"): "none",  # "These are wonderful cat puddles!"
        ("ef49r2", 0): "none",  # the post: "AITA for gifting my sister ..."
        ("ef49r2", 1): "YTA",  # "YTA for not sharing the picture. ..."
        ("ef49r2", 2): "none",  # a link to pet pictures (imgur ids are no verdicts)
        ("miquq1", "reply"): "ESH",  # "ESH. Idc if i get downvotes. ..."
        ("miquq1", 0): "none",  # the post
    }


def test_verdict_shares_and_distance():
    sim = ["NTA"] * 3 + ["YTA"]
    shares = verdict_shares(sim)
    assert shares == {"NTA": 0.75, "YTA": 0.25, "ESH": 0.0, "NAH": 0.0, "INFO": 0.0, "none": 0.0}
    assert compare_verdicts(sim, list(reversed(sim)))["distance"] == 0.0  # same population
    assert compare_verdicts(["NTA"] * 4, ["YTA"] * 4)["distance"] == pytest.approx(1.0)
    near = compare_verdicts(["NTA"] * 9 + ["YTA"], ["NTA"] * 10)["distance"]
    far = compare_verdicts(["YTA"] * 9 + ["NTA"], ["NTA"] * 10)["distance"]
    assert 0 < near < far < 1
    assert compare_verdicts([], [])["distance"] is None


def test_length_distance_is_wasserstein_in_words():
    block = compare_lengths(["a b c"] * 4, ["a b c d e"] * 4)
    assert block["distance"] == pytest.approx(2.0)  # every reply is 2 words shorter
    assert block["simulated"]["mean"] == 3.0 and block["real"]["median"] == 5.0
    assert compare_lengths(["x y", "z"], ["z", "x y"])["distance"] == 0.0
    assert compare_lengths([], ["a"])["distance"] is None
