"""On-disk cache of successful LLM calls: judge verdicts, personas, traces (SQLite, WAL mode).

Keys hash everything that decides a verdict: backend kind, model name, sampling parameters,
prompt version and the prompt itself (context, real reply, state, candidates). The endpoint is
not part of the key: the same model served elsewhere shares its cached verdicts. Only successful
judgements are stored, so a failure is retried on the next run.

Several processes may share one cache file: WAL mode lets readers and one writer work at once,
writers wait on each other (``busy_timeout``), and every write is a single committed statement,
so a process killed mid-run leaves either the whole entry or none of it.

The file, and the ``-wal`` and ``-shm`` files beside it (SQLite gives them the file's mode), get
the mode any new file gets under the umask, like every other output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["LLMCache", "cache_key"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(parts: Mapping[str, Any]) -> str:
    """A stable sha256 hex key of JSON-serialisable ``parts`` (order of keys does not matter)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class LLMCache:
    """A key -> JSON value store in one SQLite file, safe for concurrent processes.

    Args:
        path: the database file (parent folders are created).
        busy_timeout_s: how long a writer waits for another writer's lock.

    Example:
        >>> cache = LLMCache("runs/judge_cache.sqlite")  # doctest: +SKIP
        >>> cache.put(key, {"scores": {"1": 0.4}})  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 60.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite creates a new file 0644 whatever the umask allows (0664 under umask 002);
        # created here first, it gets the umask's mode, which its -wal and -shm files copy.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666))
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
        )
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL keeps WAL commits atomic after a process kill (only power loss may drop the
        # newest entries, which a cache can afford).
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def __repr__(self) -> str:
        return f"LLMCache({str(self.path)!r})"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value of ``key``, or ``None``."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM verdicts WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError:
            logger.warning("judge cache %s: entry %s is not JSON; ignoring it", self.path, key[:12])
            return None

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        """Store ``value`` under ``key`` (the last writer wins; equal keys mean equal inputs)."""
        blob = json.dumps(value, ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO verdicts (key, value, created) VALUES (?, ?, ?)",
                (key, blob, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()
