"""Shared fixtures: prepared demo examples and a scripted chat server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from humanlm.testing import ScriptedServer

# The first bundled demo set (a forum and a chat with an assistant, 12 users).
MIXED_DEMO = Path(__file__).parents[1] / "fixtures" / "mixed_demo"


@pytest.fixture(scope="session")
def demo_examples(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The mixed fixture's test split, prepared (12 examples, reddit and wildchat)."""
    from humanlm.data.resolve import resolve_split

    work: Path = tmp_path_factory.mktemp("demo_prepared")
    return resolve_split(str(MIXED_DEMO), dataset="auto", split="test", work_dir=work)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv
