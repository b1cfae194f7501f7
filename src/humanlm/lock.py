"""One writer per output: a lock file that names the run holding a folder or file.

Two runs writing into one place would each make every call and append every record (twice the
cost, duplicated records). Each command that writes an output folder (or, for ``judge``, an output
file) holds its lock for the whole run; a second run into the same place stops at once with one
line naming the holder.

The lock is a small JSON file (``pid``, ``host``, ``command``, ``started``) that the holder also
keeps ``flock``-ed, so a killed holder (even by SIGKILL) frees it: the next run takes it over with
a warning. Where the file system does not lock, a lock whose process is gone on this host is
taken over the same way; one from another host is refused (its process cannot be checked here).

Example:
    >>> with output_lock("runs/eval1", command="eval"):  # doctest: +SKIP
    ...     run_everything()
    >>> @holds_output_lock("out_dir", command="data build")  # doctest: +SKIP
    ... def run_build(*, out_dir, ...): ...
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import functools
import inspect
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from humanlm.errors import ConfigError, HumanlmError
from humanlm.files import check_output_dir

__all__ = ["LOCK_NAME", "OutputInUseError", "holds_output_lock", "lock_path", "output_lock"]

logger = logging.getLogger(__name__)

LOCK_NAME = ".humanlm.lock"


class OutputInUseError(HumanlmError):
    """Another run writes into the same output folder or file."""


@dataclass
class _Held:
    fd: int
    path: Path
    depth: int


# Locks this process holds, by lock file: a run that calls another run's function on the same
# folder (``data build`` writing personas) holds it once.
_held: dict[str, _Held] = {}
_held_guard = threading.Lock()


def lock_path(path: str | os.PathLike[str], *, file: bool = False) -> Path:
    """The lock file of an output folder (inside it) or an output file (beside it, hidden).

    Symbolic links are followed, so a link and the place it points to share one lock.
    """
    target = Path(os.path.realpath(path))
    if file:
        return target.parent / f".{target.name}.humanlm.lock"
    return target / LOCK_NAME


@contextlib.contextmanager
def output_lock(
    path: str | os.PathLike[str], *, command: str, file: bool = False, option: str = "--out"
) -> Iterator[Path]:
    """Hold the lock of the output folder ``path`` (``file``: of the output file) for the block.

    The folder (for a file, its folder) is created when missing and removed again on exit if the
    run left it empty. The lock file is removed on exit, also when the block raises.

    Args:
        path: the output folder, or the output file with ``file=True``.
        command: the holder's name in messages (``"eval"``, ``"data build"``).
        file: ``path`` is a file.
        option: the option naming the output, for the message to a second run.

    Raises:
        OutputInUseError: another live run holds it (naming its pid, host and start time).
    """
    lock = lock_path(path, file=file)
    key = str(lock)
    with _held_guard:
        mine = _held.get(key)
        if mine is not None:
            mine.depth += 1
    if mine is not None:
        try:
            yield lock
        finally:
            _release(key)
        return
    created = _make_folders(lock.parent)
    try:
        fd = _acquire(lock, shown=str(path), command=command, option=option)
    except BaseException:
        _remove_empty(created)
        raise
    with _held_guard:
        _held[key] = _Held(fd, lock, 1)
    try:
        yield lock
    finally:
        _release(key)
        _remove_empty(created)


F = TypeVar("F", bound=Callable[..., Any])


def holds_output_lock(argument: str, *, command: str, option: str = "--out") -> Callable[[F], F]:
    """Run the decorated function holding the lock of the output folder in its ``argument``.

    The folder is checked first (``check_output_dir``), so a bad path gets its one-line error
    before anything is created.
    """

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            folder = signature.bind(*args, **kwargs).arguments[argument]
            check_output_dir(folder, what=f"{command} {option}")
            with output_lock(folder, command=command, option=option):
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


def _release(key: str) -> None:
    with _held_guard:
        held = _held[key]
        held.depth -= 1
        if held.depth:
            return
        del _held[key]
    try:
        if _same_file(held.fd, held.path):
            held.path.unlink()  # while still holding it: a waiting run then starts a new file
    finally:
        os.close(held.fd)


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; the ones created, deepest first."""
    created = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the output folder {folder} ({err.strerror})") from None
    return created


def _remove_empty(created: list[Path]) -> None:
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty: the run wrote something


def _acquire(lock: Path, *, shown: str, command: str, option: str) -> int:
    for _ in range(5):  # a holder that is just letting go removes the file under us: try again
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as err:
            raise ConfigError(f"{shown}: cannot write its lock {lock} ({err.strerror})") from None
        try:
            locked = _try_flock(fd)
            if locked is False:
                raise OutputInUseError(_in_use(shown, _read_holder(fd, wait=True), option))
            if not _same_file(fd, lock):
                os.close(fd)
                continue
            holder = _read_holder(fd)
            if holder is not None:
                _check_stale(holder, shown=shown, lock=lock, option=option)
            _write_holder(fd, command)
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
    raise OutputInUseError(f"{shown}: could not take its lock {lock}; try again")


def _try_flock(fd: int) -> bool | None:
    """True: locked; False: another process holds it; None: the file system does not lock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES):
            return False
        logger.debug("no file locks on %s (%s); the lock file's pid is checked", fd, err)
        return None
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _read_holder(fd: int, *, wait: bool = False) -> dict[str, Any] | None:
    """The holder's record; ``{}`` when the file holds none that parses, None when empty."""
    for attempt in range(10 if wait else 1):
        raw = os.pread(fd, 4096, 0)
        if raw.strip():
            try:
                holder = json.loads(raw)
            except ValueError:
                holder = None
            if isinstance(holder, dict):
                return holder
        if attempt + 1 < (10 if wait else 1):
            time.sleep(0.05)  # the holder may be writing its record right now
    return {} if raw.strip() else None


def _write_holder(fd: int, command: str) -> None:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": f"humanlm {command}",
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    os.fsync(fd)


def _describe(holder: dict[str, Any]) -> str:
    """``humanlm eval (pid 1234 on host h, started 2026-01-02 10:00:00 UTC)``."""
    where = " ".join(
        part
        for part in (
            f"pid {holder['pid']}" if "pid" in holder else "",
            f"on host {holder['host']}" if holder.get("host") else "",
        )
        if part
    )
    if holder.get("started"):
        where = f"{where}, started {holder['started']}" if where else f"started {holder['started']}"
    command = holder.get("command") or "another humanlm run"
    return f"{command} ({where})" if where else command


def _in_use(shown: str, holder: dict[str, Any] | None, option: str) -> str:
    who = _describe(holder) if holder else "another humanlm run"
    return f"{shown} is in use by {who}; wait for it or choose another {option}"


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return False  # an earlier process with our pid (a restarted container): not us
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _check_stale(holder: dict[str, Any], *, shown: str, lock: Path, option: str) -> None:
    """Refuse a lock that may still be held; otherwise say it is taken over."""
    host = holder.get("host")
    if host and host != socket.gethostname():
        raise OutputInUseError(
            f"{_in_use(shown, holder, option)} (if that run has ended, delete {lock})"
        )
    if _pid_alive(holder.get("pid")):
        raise OutputInUseError(_in_use(shown, holder, option))
    logger.warning(
        "%s: taking over the lock of %s, which is no longer running",
        shown,
        _describe(holder) if holder else "an earlier run",
    )
