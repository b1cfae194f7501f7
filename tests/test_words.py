"""The product speaks about the project alone: no words about how its code was made (the issue
tracker, the design notes it was built from, the work sessions) in the package, docs, README,
benchmarks or scripts."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACES = [ROOT / "src" / "humanlm", ROOT / "docs", ROOT / "benchmarks", ROOT / "scripts"]
SUFFIXES = {".py", ".md", ".jinja", ".yaml", ".yml", ".txt", ".toml"}

# Each pattern names a way the making of the code leaks into the product.
MAKING = re.compile(
    r"spec section|stack\.md|style\.md|DEVELOPERS\.md|\bissue #?\d+|\(issue\b"
    r"|\bsessions? (that|which) built|\bfirst build\b|\b(last|this|previous|earlier) round\b"
    r"|\breviewer\b|\bthe review\b",
    re.IGNORECASE,
)


def _files() -> list[Path]:
    found = [ROOT / "README.md"]
    for place in PLACES:
        found += [p for p in place.rglob("*") if p.is_file() and p.suffix in SUFFIXES]
    return sorted(found)


def test_the_pattern_catches_what_it_is_for() -> None:
    for line in (
        "see spec section 3",
        "fixed (issue 12)",
        "the sessions that built it",
        "Issue #4",
    ):
        assert MAKING.search(line), line
    for line in ("a judge reply issued twice", "an HTTP session", "reviewed replies"):
        assert not MAKING.search(line), line


def test_no_words_about_how_the_code_was_made() -> None:
    hits = []
    for path in _files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if MAKING.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)
