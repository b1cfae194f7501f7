"""The training mode saved with a model (``humanlm_mode.json``) and the one loader of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from humanlm.errors import ConfigError
from humanlm.states.mode_file import MODE_FILE, load_mode, write_mode_file
from humanlm.states.modes import MODES


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_written_file_names_the_mode_and_its_prompt(tmp_path, mode):
    path = write_mode_file(tmp_path, mode)
    data = json.loads(path.read_text())
    assert path.name == MODE_FILE and data["mode"] == mode
    assert (data["state_set"], data["thinking"]) == (MODES[mode].state_set, MODES[mode].thinking)
    saved = load_mode(tmp_path)
    assert saved.mode is MODES[mode] and saved.source == path


def _layout(root: Path, folder: str, *, file_at: str | None, manifest_mode: str | None) -> Path:
    model = root / folder
    model.mkdir(parents=True)
    if file_at is not None:
        write_mode_file(root / file_at, "sft")
    if manifest_mode is not None:
        (root / "manifest.json").write_text(json.dumps({"seed": 0, "mode": manifest_mode}))
    return model


# issue 21: a checkpoint named by best_checkpoint.json must give its run's mode.
LAYOUTS = [  # (model folder, where the mode file is, run manifest's mode, expected mode, file)
    ("checkpoints/checkpoint-200", "checkpoints/checkpoint-200", "grpo", "sft", "file"),  # own
    ("model", "model", None, "sft", "file"),  # a final model
    ("checkpoints/checkpoint-200", None, "grpo", "grpo", "manifest"),  # a run older than the file
    ("model", None, "sft-think", "sft-think", "manifest"),  # its run's manifest
    ("global_step_25/actor", ".", None, "sft", "file"),  # verl: the checkpoint root's file
    ("global_step_25/actor/huggingface", ".", None, "sft", "file"),  # verl's HF export
    ("weights", None, "grpo", None, None),  # an unrelated folder does not inherit a manifest
    ("checkpoints/step-3", None, "grpo", None, None),  # not a Trainer checkpoint name
    ("actor", ".", None, None, None),  # not under global_step_N
]


@pytest.mark.parametrize(("folder", "file_at", "manifest", "expected", "source"), LAYOUTS)
def test_every_model_folder_of_a_run_finds_its_mode(
    tmp_path, folder, file_at, manifest, expected, source
):
    model = _layout(tmp_path, folder, file_at=file_at, manifest_mode=manifest)
    saved = load_mode(model)
    if expected is None:
        assert saved is None
        return
    assert saved.mode is MODES[expected]
    assert saved.source.name == (MODE_FILE if source == "file" else "manifest.json")


def test_specs_name_the_folder(tmp_path):
    write_mode_file(tmp_path, "grpo")
    for spec in (f"hf:{tmp_path}", f"vllm:{tmp_path}", f"openai:{tmp_path}@http://127.0.0.1:9/v1"):
        assert load_mode(spec).mode is MODES["grpo"], spec
    for spec in ("openai:gpt-5-mini", "litellm:anthropic/claude-haiku-4-5", "embedding:minilm"):
        assert load_mode(spec) is None, spec
    assert load_mode(f"hf:{tmp_path / 'missing'}") is None


BAD_FILES = [  # (file content, message)
    ("{not json", "not a readable mode file"),  # broken JSON
    ("[1, 2]", "a JSON object is expected"),  # not an object
    ('{"mode": "dpo"}', "mode 'dpo' is not one of"),  # unknown mode
    ('{"mode": "sft", "thinking": true}', "thinking True contradicts mode 'sft'"),  # edited badly
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_a_bad_mode_file_is_named(tmp_path, content, message):
    (tmp_path / MODE_FILE).write_text(content)
    with pytest.raises(ConfigError, match=message) as err:
        load_mode(f"hf:{tmp_path}")
    assert str(tmp_path / MODE_FILE) in str(err.value)
