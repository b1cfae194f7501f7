"""`check_model_files`: weight files cut short or corrupt are named before any model loads."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from humanlm.errors import ConfigError
from humanlm.model.check import check_model_files, safetensors_problem


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "model" / "model.safetensors"
    path.parent.mkdir()
    save_file({"a": np.zeros((16, 16), np.float32), "b": np.ones(8, np.float32)}, str(path))
    return path


def header(tensors: dict) -> bytes:
    text = json.dumps(tensors).encode()
    return struct.pack("<Q", len(text)) + text


@pytest.mark.parametrize(
    ("cut", "problem"),
    [
        (lambda b: b, None),  # sound
        (lambda b: b[:-1], "is cut short: it holds 1,055 bytes of tensor data, its header names 1,056"),  # one byte short
        (lambda b: b[:5], "has 5 bytes, too few for a safetensors header"),  # a stub
        (lambda b: b"", "has 0 bytes"),  # empty
        (lambda b: b"\xff" * 64, "is cut short or corrupt: its header claims"),  # garbage
        (lambda b: struct.pack("<Q", 4) + b"nope", "is corrupt: its header is not JSON"),  # bad JSON
        (lambda b: header({"w": {"dtype": "F32", "shape": [1]}}), "is corrupt: tensor 'w' has no valid data offsets"),
        (lambda b: header({"w": {"data_offsets": [0, 4]}}), "is cut short: it holds 0 bytes of tensor data"),  # no data
    ],
)  # fmt: skip
def test_safetensors_problem(weights, cut, problem):
    weights.write_bytes(cut(weights.read_bytes()))
    found = safetensors_problem(weights)
    assert found == problem if problem is None else found.startswith(problem)


def test_a_cut_model_folder_is_refused_for_every_local_spec(weights):
    folder = weights.parent
    for spec in (f"hf:{folder}", f"vllm:{folder}", str(folder)):
        check_model_files(spec)  # sound
    weights.write_bytes(weights.read_bytes()[:100])
    for spec in (f"hf:{folder}", f"vllm:{folder}", str(folder)):
        with pytest.raises(ConfigError, match=r"model file .*model.safetensors is cut short"):
            check_model_files(spec)
    for spec in ("openai:m@http://127.0.0.1:9/v1", "hf:Qwen/Qwen3-0.6B", "tiny"):
        check_model_files(spec)  # not a folder here: left to its loader


def test_a_shard_the_index_names_must_exist(weights):
    folder = weights.parent
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ConfigError, match="model-00001-of-00002.safetensors is missing"):
        check_model_files(f"hf:{folder}")
    (folder / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not a readable weight index"):
        check_model_files(f"hf:{folder}")


def test_a_missing_local_folder_is_refused_and_a_hub_id_is_not(tmp_path):
    # A path that cannot be a hub id must exist (humanlm issue 25: serve announced itself, then
    # failed 21 s later with a hub error about a repo id).
    for path in ("runs/demo/model", f"{tmp_path}/nothing", "./model"):
        for spec in (f"hf:{path}", f"vllm:{path}", path):
            with pytest.raises(ConfigError, match=f"model folder {path} does not exist"):
                check_model_files(spec)
    for spec in ("hf:Qwen/Qwen3-0.6B", "gpt2", "tiny", "vllm:org/name-1.5"):
        check_model_files(spec)  # hub ids: left to their loader
