"""Atomic file writes (a reader never sees a half-written file, a failure leaves nothing behind)
and JSON-lines logs that a killed writer may have cut short.

A full disk or an exceeded quota while writing is a one-line `HumanlmError` naming the path and
how much was written (`disk_full_error`): an atomic output leaves nothing behind, a log keeps
its finished records, so the next run resumes. Input text is refused where it cannot be
written back as UTF-8 (`refuse_lone_surrogates`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
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
    "broken_link",
    "check_out_outside_input",
    "check_output_dir",
    "check_output_file",
    "decode_utf8",
    "disk_full_error",
    "is_disk_full",
    "not_utf8_error",
    "refuse_lone_surrogates",
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
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:  # no room even for an empty file (no free inodes)
        if not is_disk_full(err):
            raise
        raise disk_full_error(target) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, _FILE_MODE & ~_umask())  # mkstemp makes 0600; a result is shared
        os.replace(tmp, target)
    except OSError as err:
        if not is_disk_full(err):
            raise
        written = tmp.stat().st_size if tmp.exists() else 0
        raise disk_full_error(target, written=written, kept=False) from None
    finally:
        if tmp.exists():
            tmp.unlink()


# The errors of a full file system and of an exceeded disk quota.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err``, or an error it was raised from, is a full disk or an exceeded quota."""
    seen: BaseException | None = err
    for _ in range(8):  # libraries wrap the operating system's error in their own
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full_error(
    path: str | os.PathLike[str] | None, *, written: int | None = None, kept: bool = False
) -> Exception:
    """The one-line error of a write that found the disk full (or the quota used up).

    Args:
        path: the file being written (``None``: not known).
        written: bytes of it written before the failure.
        kept: they stay (a log a rerun resumes from), rather than being removed.
    """
    from humanlm.errors import HumanlmError

    where = f"writing {path}" if path is not None else "writing an output"
    if written is not None and kept:
        where += f" (its {written:,} bytes of finished records are kept)"
    elif written is not None:
        where += f" ({written:,} bytes written, then removed: nothing half-written is left)"
    again = "run the same command again" + (": it resumes after them" if kept else "")
    return HumanlmError(
        f"no space left on the device (or disk quota exceeded) {where}; free some space and {again}"
    )


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
    """Where writing ``path`` lands: a symbolic link is written through (the link stays).

    Raises:
        ConfigError: a link loop, or a device, pipe or socket (renaming a file over it would
            replace it: as root, ``/dev/null`` itself).
    """
    from humanlm.errors import ConfigError

    real = Path(os.path.realpath(path)) if path.is_symlink() else path
    if real.is_symlink():
        raise ConfigError(f"{path} is a symbolic link loop; name a file or a working link")
    with contextlib.suppress(OSError):
        mode = real.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ConfigError(
                f"{path} is not a regular file (a device, pipe or socket); name a file"
            )
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


def broken_link(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with ``path`` when it is a symbolic link that leads nowhere (a loop, or a
    missing target), as the end of a sentence; ``None`` otherwise."""
    link = Path(path)
    if not link.is_symlink() or link.exists():
        return None
    try:
        os.stat(link)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return f"{link} is a symbolic link loop"
    return f"{link} is a symbolic link to {os.readlink(link)}, which does not exist"


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
    if target.is_symlink() and not real.parent.is_dir():  # a link to a new file is fine
        raise ConfigError(
            f"{what} {target} is a symbolic link to {os.readlink(target)}, whose folder does "
            "not exist; create that folder or name another file"
        )
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


def check_out_outside_input(
    out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]], *, what: str
) -> None:
    """Refuse an output folder that is an input folder or lies inside one.

    What a run writes there would be read as input by the next run over that folder (or,
    with the same names, replace the input while it is read).

    Raises:
        ConfigError: naming both folders.
    """
    from humanlm.errors import ConfigError

    target = Path(os.path.realpath(out))
    for entry in inputs:
        folder = Path(entry)
        if not folder.is_dir():
            continue
        real = Path(os.path.realpath(folder))
        if target == real or real in target.parents:
            where = "is" if target == real else "lies inside"
            raise ConfigError(
                f"{what} {out} {where} the input folder {folder}: its output would be read as "
                "input next time; choose an output folder outside the input"
            )


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


# A JSON escape of a UTF-16 surrogate (d800-dfff): a fast test before looking at the values.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate_field(value: Any, where: str = "") -> str | None:
    """The path (``prompt[1].content``) of the first text in ``value`` holding a lone surrogate."""
    if isinstance(value, str):
        return (where or "value") if _LONE_SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            if _LONE_SURROGATE.search(str(key)):
                return name
            if (found := _surrogate_field(item, name)) is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _surrogate_field(item, f"{where}[{i}]")) is not None:
                return found
    return None


def refuse_lone_surrogates(
    value: Any, *, file: str | os.PathLike[str], row: int | None, raw: bytes | None = None
) -> None:
    """Refuse parsed JSON input holding a lone surrogate escape such as ``"\\ud800"``.

    Such an escape is half of a character (an emoji cut in two, common in scraped dumps): JSON
    readers accept it, but it is no text, and no output could hold it as UTF-8. Every command
    that reads JSON input (``data validate``, ``prepare``, ``build``, ``judge``, ``eval``) refuses
    it here, the same way.

    Args:
        value: the parsed row (or document).
        file, row: where it came from, for the message.
        raw: the row's JSON text; when given and free of surrogate escapes, ``value`` is not
            walked.

    Raises:
        DataError: naming the file, the row and the field.
    """
    if raw is not None and not _SURROGATE_ESCAPE.search(raw):
        return
    field = _surrogate_field(value)
    if field is None:
        return
    from humanlm.errors import DataError

    line = f"line {row + 1}: " if row is not None and raw is not None else ""
    raise DataError(
        f"{line}the text holds a lone surrogate escape (such as \\ud800: half of a character, "
        "e.g. an emoji cut in two), which is not valid Unicode; remove it or replace it "
        "(e.g. with \\ufffd) and run again",
        file=str(file),
        row=row,
        field=field,
    )


def _dumps(obj: Any, **kwargs: Any) -> str:
    """JSON text of ``obj``, non-ASCII kept as is; text holding a lone surrogate (a model
    reply may) is written with ASCII escapes instead, so the file stays valid UTF-8."""
    text = json.dumps(obj, ensure_ascii=False, default=str, **kwargs)
    if _LONE_SURROGATE.search(text):
        return json.dumps(obj, ensure_ascii=True, default=str, **kwargs)
    return text


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    write_text(path, _dumps(obj, indent=2) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` as JSON lines atomically."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(_dumps(row) + "\n")


def iter_jsonl(
    path: str | os.PathLike[str], *, strict: bool = False, opener: Callable[..., Any] = open
) -> Iterator[tuple[int, Any]]:
    """``(row, value)`` of every non-blank line of a JSON-lines file; ``row`` counts lines from 0.

    Args:
        path: the file.
        strict: the file is input that must be right: a line that is not UTF-8 or not JSON, or
            that holds a lone surrogate escape (`refuse_lone_surrogates`), raises a one-line
            ``DataError`` naming the file and the row. Otherwise the file is a log that
            a killed writer may have cut short: a missing file has no lines, and a line that does
            not parse (a half-written last line) is skipped with a warning.
        opener: opens the file for reading bytes (``gzip.open`` for a ``.gz`` file).

    Raises:
        DataError: with ``strict``, a line that is not UTF-8, not valid JSON, or holds a lone
            surrogate escape.
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
                if strict:
                    refuse_lone_surrogates(value, file=file, row=row, raw=raw)
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


def append_jsonl(log: IO[str], record: dict[str, Any], *, sync: bool = True) -> None:
    """Append one record as a JSON line, whole or not at all.

    The line goes straight to the file (no buffer that could be left half-written) and, with
    ``sync``, to the disk before the next one is written.

    Raises:
        HumanlmError: the disk is full or the quota used up; the log is cut back to its last
            whole record, so a rerun resumes after it.
    """
    data = (_dumps(record) + "\n").encode("utf-8")
    log.flush()  # anything written through ``log`` itself goes first
    fd = log.fileno()
    size = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    except OSError as err:
        if not is_disk_full(err):
            raise
        with contextlib.suppress(OSError):  # a device such as /dev/full cannot be cut
            os.ftruncate(fd, size)
        raise disk_full_error(getattr(log, "name", None), written=size, kept=True) from None
