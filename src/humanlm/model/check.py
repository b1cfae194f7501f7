"""Check a local model folder's weight files before any long work starts.

A copy cut short (a full disk, an interrupted download or ``scp``) leaves a ``model.safetensors``
whose header promises more bytes than the file holds; loading it fails deep inside transformers,
often after the data is prepared or a server has announced itself. `check_model_files` reads only
the headers (a few kilobytes per file) and names the broken file in one line.

Example:
    >>> check_model_files("hf:runs/demo/humanlm/model")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

from humanlm.errors import ConfigError

__all__ = ["check_model_files", "safetensors_problem"]

# Kinds of model spec whose model is a folder on this machine (or a hub id).
_LOCAL_KINDS = ("hf:", "vllm:")
_INDEX_SUFFIX = ".safetensors.index.json"
# A Hugging Face hub id: ``name`` or ``owner/name`` (letters, digits, ``-_.``, no leading dot).
_HUB_ID = re.compile(r"(?:[\w-][\w.-]*/)?[\w-][\w.-]*")
# A safetensors header is JSON of a few kilobytes; far more means the length field is garbage.
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def check_model_files(spec: str | os.PathLike[str]) -> None:
    """Refuse a local model folder whose safetensors weights are missing, truncated or corrupt.

    Args:
        spec: ``hf:PATH``, ``vllm:PATH`` or a bare path. Anything else (``openai:`` models,
            hub ids that are not a folder here, the built-in ``tiny``) is left to its loader;
            a path that cannot be a hub id (``runs/x/model``, ``./model``) must exist.

    Raises:
        ConfigError: one line naming the missing folder, or the broken file and what is wrong
            with it.
    """
    text = os.fspath(spec)
    for kind in _LOCAL_KINDS:
        if text.startswith(kind):
            text = text[len(kind) :]
            break
    else:
        if ":" in text.split("/", 1)[0]:  # another kind of spec (openai:, litellm:, ...)
            return
    folder = Path(text)
    if not folder.exists() and _is_local_path(text):
        raise ConfigError(f"model folder {text} does not exist (and is not a hub id)")
    if not folder.is_dir():
        return
    for file in _weight_files(folder):
        problem = safetensors_problem(file)
        if problem is not None:
            raise ConfigError(
                f"model file {file} {problem}; copy or save the model again (a copy cut short "
                "by a full disk or an interrupted download looks like this)"
            )


def _is_local_path(text: str) -> bool:
    """Whether ``text`` can only name a folder here: a hub id is ``name`` or ``owner/name``."""
    return _HUB_ID.fullmatch(text) is None


def _weight_files(folder: Path) -> list[Path]:
    """The safetensors files the folder's loader will read: those an index names, else all."""
    files = set(folder.glob("*.safetensors"))
    for index in folder.glob(f"*{_INDEX_SUFFIX}"):
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            files.update(folder / name for name in set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(
                f"model file {index} is not a readable weight index; copy the model again"
            ) from None
    return sorted(files)


def safetensors_problem(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with a safetensors file, as the end of a sentence; ``None`` when its header
    is sound and the file holds every byte the header promises.

    The format: 8 bytes (little-endian header length N), N bytes of JSON (tensor name ->
    ``{"dtype", "shape", "data_offsets": [begin, end]}``), then the tensor data.
    """
    file = Path(path)
    try:
        size = file.stat().st_size
        with file.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"has {size} bytes, too few for a safetensors header"
            (length,) = struct.unpack("<Q", head)
            if length > min(size - 8, _MAX_HEADER_BYTES):
                return (
                    f"is cut short or corrupt: its header claims {length:,} bytes, the file "
                    f"has {size:,}"
                )
            header = json.loads(fh.read(length).decode("utf-8"))
    except FileNotFoundError:
        return "is missing"
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    except (UnicodeDecodeError, ValueError):
        return "is corrupt: its header is not JSON"
    if not isinstance(header, dict):
        return "is corrupt: its header is not a JSON object"
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and o >= 0 for o in offsets)
        ):
            return f"is corrupt: tensor {name!r} has no valid data offsets"
        end = max(end, *offsets)
    data = size - 8 - length
    if data < end:
        return f"is cut short: it holds {data:,} bytes of tensor data, its header names {end:,}"
    return None
