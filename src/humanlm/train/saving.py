"""A save that finds the disk full during training: one line naming the folder, no half-written
checkpoint left behind.

``torch.save`` reports a failed write as a ``RuntimeError`` without an errno ("file write
failed", "unexpected pos ..."), and safetensors as its own error naming "No space left on
device". So a failure while training counts as a full disk when an operating-system error in
its chain says so, when its message does, or when the run folder's file system has almost no
room left (``shutil.disk_usage``). Then the checkpoint folders the failed save left without
their ``trainer_state.json`` (which a resume skips anyway), a half-written final model and a
half-written warm-up model are removed, and the error names them with the way to go on.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from humanlm.errors import HumanlmError
from humanlm.files import is_disk_full
from humanlm.states.mode_file import MODE_FILE
from humanlm.train import dist

__all__ = ["full_disk_as_one_line"]

# Below this much free space a failed write is read as a full disk.
_LOW_SPACE_BYTES = 16 * 2**20
# Messages of writers that lose the errno (torch, safetensors' Rust I/O errors).
_FULL_WORDS = ("no space left", "os error 28", "disk quota exceeded", "os error 122")


@contextlib.contextmanager
def full_disk_as_one_line(run_dir: Path) -> Iterator[None]:
    """Turn a full disk while training into ``run_dir`` into one ``HumanlmError``.

    Other failures pass through unchanged.
    """
    try:
        yield
    except HumanlmError:
        raise
    except Exception as err:
        if not _disk_full(err, run_dir):
            raise
        removed = _drop_half_written(run_dir) if dist.is_main() else []
        where = ", ".join(str(p) for p in removed) or str(run_dir)
        left = " (removed: nothing half-written is left)" if removed else ""
        raise HumanlmError(
            f"no space left on the device (or disk quota exceeded) saving {where}{left}; free "
            f"some space and {_how_to_go_on(run_dir)}"
        ) from None


def _disk_full(err: BaseException, folder: Path) -> bool:
    if is_disk_full(err):
        return True
    seen: BaseException | None = err
    for _ in range(8):  # the message of the error or of one it was raised from
        if seen is None:
            break
        if any(word in str(seen).lower() for word in _FULL_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    if not isinstance(err, OSError | RuntimeError):
        return False
    try:
        return shutil.disk_usage(folder).free < _LOW_SPACE_BYTES
    except OSError:
        return False


def _drop_half_written(run_dir: Path) -> list[Path]:
    """Remove what a failed save left unfinished; the removed folders."""
    half = [
        p
        for p in sorted((run_dir / "checkpoints").glob("checkpoint-*"))
        if p.is_dir() and not (p / "trainer_state.json").is_file()
    ]
    model = run_dir / "model"
    if model.is_dir() and not (model / MODE_FILE).is_file():  # the mode file is written last
        half.append(model)
    half += [p for p in sorted(run_dir.glob("*.partial")) if p.is_dir()]  # the warm-up model
    for path in half:
        shutil.rmtree(path, ignore_errors=True)
    return half


def _how_to_go_on(run_dir: Path) -> str:
    checkpoints = (run_dir / "checkpoints").glob("checkpoint-*/trainer_state.json")
    if any(True for _ in checkpoints):
        return f"resume with `humanlm train --resume {run_dir}`"
    return "run the same command again"
