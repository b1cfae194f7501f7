"""Errors a user can fix. The CLI prints them without a traceback and exits with code 2."""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "HumanlmError", "JudgeUnavailableError"]


class HumanlmError(Exception):
    """A problem the user can fix: bad config, bad data, an unreachable judge."""


class ConfigError(HumanlmError):
    """One or more configuration problems, reported together."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:  # one problem, one line
            super().__init__(self.problems[0])
            return
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problems):\n{lines}")


class DataError(HumanlmError):
    """Bad input data. The message names the file, the row (0-based) and the field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ):
        self.file, self.row, self.field = file, row, field
        where = []
        if file is not None:
            where.append(f"file {file}")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class JudgeUnavailableError(HumanlmError):
    """The judge could not be reached or configured (after retries)."""
