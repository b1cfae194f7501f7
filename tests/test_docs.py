"""The Python snippets of docs/api.md run as written (offline: demo data, tiny model, MiniLM)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow
def test_api_page_snippets_run(tmp_path, capsys):
    blocks = python_blocks(DOCS / "api.md")
    assert len(blocks) >= 6
    namespace: dict = {"WORK": tmp_path}
    for number, block in enumerate(blocks, start=1):
        try:
            exec(compile(block, f"docs/api.md block {number}", "exec"), namespace)
        except Exception as err:  # name the block that broke
            raise AssertionError(f"docs/api.md block {number} failed: {err!r}") from err
    printed = capsys.readouterr().out
    assert "response_alignment" in printed  # the evaluation summary was printed
    assert (tmp_path / "eval" / "results.json").is_file()
    assert namespace["verdict"].verdicts[0].score > namespace["verdict"].verdicts[1].score
