"""Shared fixtures. Heavy ones are session-scoped and import their dependencies lazily."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline tiny Qwen3 (model + tokenizer, Hugging Face format), built once per session."""
    from humanlm.model.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))
