"""Prompt folders: every template's text matches the hash in its VERSIONS file."""

from __future__ import annotations

import shutil

import pytest

from humanlm.errors import ConfigError
from humanlm.llm import templates
from humanlm.llm.templates import PromptFolder

FOLDERS = ["humanlm.states", "humanlm.judge", "humanlm.enrich"]


@pytest.mark.parametrize("package", FOLDERS)
def test_every_template_matches_its_recorded_hash(package):
    # Changing a template's text requires a version bump and a new hash in prompts/VERSIONS.
    folder = PromptFolder(package)
    assert folder.versions(), package
    assert folder.check() == []


def test_check_names_a_changed_template(tmp_path, monkeypatch):
    import humanlm.judge

    copy = tmp_path / "pkg"
    shutil.copytree(humanlm.judge.__path__[0] + "/prompts", copy / "prompts")
    (copy / "__init__.py").write_text("")
    (copy / "prompts" / "group.md").write_text("changed\n")
    (copy / "prompts" / "extra.md").write_text("new\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    templates._load.cache_clear()
    templates._entries.cache_clear()
    problems = PromptFolder("pkg").check()
    assert any("group.md changed" in p and "bump its version" in p for p in problems)
    assert any("extra.md is not listed" in p for p in problems)


def test_unknown_template_and_version_are_config_errors():
    folder = PromptFolder("humanlm.judge")
    with pytest.raises(ConfigError, match="no prompt template named 'nosuch'"):
        folder.load("nosuch")
    with pytest.raises(ConfigError, match="lists no 'nosuch'"):
        folder.version("nosuch")
