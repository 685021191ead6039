"""The one error a dataset loader raises for bad input."""

from __future__ import annotations

from pathlib import Path


class DatasetFormatError(ValueError):
    """A recording file is malformed or truncated.

    Carries the file and the 1-based line so that a person can open the file
    at the right place; ``evaluate`` catches it, counts the file as skipped and
    carries on with the batch.
    """

    def __init__(self, path: str | Path, line: int, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        super().__init__(f"{self.path}:{line}: {message}")
