"""Atomic file writes (a reader never sees a half-written file, a failure leaves nothing behind)
and JSON-lines logs that a killed writer may have cut short."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "append_jsonl",
    "apply_umask",
    "open_append",
    "atomic_path",
    "check_output_dir",
    "check_output_file",
    "decode_utf8",
    "not_utf8_error",
    "iter_jsonl",
    "read_jsonl",
    "write_json",
    "write_jsonl",
    "write_text",
]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only if the block succeeds.

    Example:
        >>> with atomic_path("out/train.parquet") as tmp:  # doctest: +SKIP
        ...     pq.write_table(table, tmp)
    """
    target = _write_target(Path(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    _drop_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, _FILE_MODE & ~_umask())  # mkstemp makes 0600; a result is shared
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


_FILE_MODE = 0o666
_PRIVATE_MODE = 0o600  # what tempfile.mkstemp (and Rust's tempfile) create
# A temporary file of a writer that was killed; younger ones may belong to a writer still running.
_STALE_TEMP_S = 600.0


def _umask() -> int:
    """The process's umask, read without changing it where the kernel shows it (setting it to
    read it would give files other threads create meanwhile the wrong mode)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(folder: str | os.PathLike[str]) -> None:
    """Give the private files under ``folder`` the mode a new file gets under the umask.

    Libraries that write through a temporary file and rename it (safetensors' weights) leave
    the file 0600; every output should get the same mode as the rest. Files already wider,
    symbolic links and files that vanish meanwhile (checkpoint rotation) are left alone.
    """
    wanted = _FILE_MODE & ~_umask()
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(path)
                mode = st.st_mode & 0o777
                if stat.S_ISREG(st.st_mode) and mode == _PRIVATE_MODE != wanted:
                    os.chmod(path, wanted)


def _write_target(path: Path) -> Path:
    """Where writing ``path`` lands: a symbolic link is written through (the link stays)."""
    if not path.is_symlink():
        return path
    real = Path(os.path.realpath(path))
    if real.is_symlink():
        from humanlm.errors import ConfigError

        raise ConfigError(f"{path} is a symbolic link loop; name a file or a working link")
    return real


def _drop_stale_temps(target: Path) -> None:
    """Remove temporary files an earlier, killed writer of ``target`` left behind."""
    import time

    now = time.time()
    for tmp in target.parent.glob(f".{glob_escape(target.name)}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > _STALE_TEMP_S:
                tmp.unlink()
        except OSError:
            continue


def glob_escape(name: str) -> str:
    """``name`` with glob wildcards escaped."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _existing_parent(path: Path) -> Path:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _check_folder_writable(folder: Path, what: str, shown: Path) -> None:
    from humanlm.errors import ConfigError

    probe = _existing_parent(folder / "x")
    if not probe.is_dir():
        raise ConfigError(f"{what} {shown}: {probe} is a file, not a folder")
    try:  # a real file: permissions, read-only file systems and quotas all show here
        fd, name = tempfile.mkstemp(prefix=".humanlm-write-check.", dir=probe)
    except OSError as err:
        raise ConfigError(f"{what} {shown}: cannot write in {probe} ({err.strerror})") from None
    os.close(fd)
    os.unlink(name)


def check_output_file(path: str | os.PathLike[str], *, what: str = "output file") -> Path:
    """Check, before any work, that ``path`` can be written atomically; return it.

    Refuses a path that is a folder, one under a file, and one in a folder this user may not
    write. The temporary file is created next to ``path``, so the final rename never crosses
    file systems.

    Raises:
        ConfigError: one line naming the path and the problem.
    """
    from humanlm.errors import ConfigError

    target = Path(path)
    try:
        real = _write_target(target)  # a symbolic link is written through, never replaced
    except ConfigError as err:
        raise ConfigError(f"{what} {err}") from None
    if target.is_dir():
        raise ConfigError(
            f"{what} {target} is a folder; name a file (for example {target}/out.jsonl)"
        )
    if real.exists() and not os.access(real, os.W_OK):
        raise ConfigError(f"{what} {target}: no permission to replace it")
    _check_folder_writable(real.parent, what, target)
    return target


def check_output_dir(path: str | os.PathLike[str], *, what: str = "output folder") -> Path:
    """Check, before any work, that ``path`` is or can become a folder this user may write in.

    Raises:
        ConfigError: ``path`` is a file, lies under a file, or is not writable.
    """
    from humanlm.errors import ConfigError

    folder = Path(path)
    if folder.is_symlink() and not folder.exists():
        raise ConfigError(
            f"{what} {folder} is a symbolic link to {os.readlink(folder)}, which does not "
            "exist (or is a loop); create that folder or name another"
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what} {folder} is a file; name a folder")
    _check_folder_writable(folder if folder.exists() else folder.parent, what, folder)
    if folder.exists():
        _check_folder_writable(folder, what, folder)
    return folder


def decode_utf8(raw: bytes, *, file: str | os.PathLike[str], offset: int = 0) -> str:
    """``raw`` as UTF-8 text; ``offset``: where ``raw`` starts in ``file``.

    Raises:
        DataError: not UTF-8, naming the file and the byte offset of the first bad byte.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        from humanlm.errors import DataError

        raise DataError(
            f"not UTF-8 text (byte 0x{raw[err.start]:02x} at byte offset {offset + err.start}); "
            "save the file as UTF-8",
            file=str(file),
        ) from None


def not_utf8_error(path: str | os.PathLike[str], *, opener: Any = open) -> Exception:
    """The one-line ``DataError`` for a file that failed to decode as UTF-8.

    The file is read again in binary (through ``opener``, e.g. ``gzip.open``) to find the
    offset of the first bad byte, so the message can point at it.
    """
    import codecs

    from humanlm.errors import DataError

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with opener(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            pending = decoder.getstate()[0]  # an incomplete character from the last chunk
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                seen = pending + chunk
                return DataError(
                    f"not UTF-8 text (byte 0x{seen[err.start]:02x} at byte offset "
                    f"{offset - len(pending) + err.start}); save the file as UTF-8",
                    file=str(path),
                )
            offset += len(chunk)
    return DataError("not UTF-8 text; save the file as UTF-8", file=str(path))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` as JSON lines atomically."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def iter_jsonl(
    path: str | os.PathLike[str], *, strict: bool = False, opener: Callable[..., Any] = open
) -> Iterator[tuple[int, Any]]:
    """``(row, value)`` of every non-blank line of a JSON-lines file; ``row`` counts lines from 0.

    Args:
        path: the file.
        strict: the file is input that must be right: a line that is not UTF-8 or not JSON raises
            a one-line ``DataError`` naming the file and the row. Otherwise the file is a log that
            a killed writer may have cut short: a missing file has no lines, and a line that does
            not parse (a half-written last line) is skipped with a warning.
        opener: opens the file for reading bytes (``gzip.open`` for a ``.gz`` file).

    Raises:
        DataError: with ``strict``, a line that is not UTF-8 or not valid JSON.
    """
    from humanlm.errors import DataError

    file = Path(path)
    if not strict and not file.is_file():
        return
    with opener(file, "rb") as fh:
        offset = 0
        for row, raw in enumerate(fh):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            try:
                value = json.loads(decode_utf8(raw, file=file, offset=start))
            except json.JSONDecodeError as err:
                problem = DataError(
                    f"line {row + 1}: not valid JSON ({err.msg})", file=str(file), row=row
                )
            except DataError as err:
                problem = err
            else:
                yield row, value
                continue
            if strict:
                raise problem from None
            logger.warning("%s line %d is incomplete; it is left out", file, row + 1)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records (JSON objects) of a JSON-lines file that a killed writer may have left
    half-written.

    A line that does not parse (the tail of a run killed mid-write) is skipped with a warning;
    a missing file has no records.
    """
    return [record for _, record in iter_jsonl(path) if isinstance(record, dict)]


def open_append(path: str | os.PathLike[str]) -> IO[str]:
    """Open a JSONL log for appending, first cutting a last line that a kill left without its
    newline (readers skip it as unfinished), so the next record starts on a line of its own."""
    path = Path(path)
    if path.is_file() and path.stat().st_size:
        with path.open("rb+") as fh:
            data = fh.read()
            if not data.endswith(b"\n"):
                keep = data.rfind(b"\n") + 1
                logger.warning(
                    "%s: dropping an incomplete last line (%d bytes)", path, len(data) - keep
                )
                fh.truncate(keep)
    return path.open("a", encoding="utf-8")


def append_jsonl(log: IO[str], record: dict[str, Any]) -> None:
    """Append one record as a JSON line and push it to disk before the next one is written."""
    log.write(json.dumps(record, ensure_ascii=False) + "\n")
    log.flush()
    os.fsync(log.fileno())
