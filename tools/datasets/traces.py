"""Project traces (``retroguard-trace/1``, :mod:`core.trace`) as recordings.

The trace format is how any other dataset reaches ``evaluate``: convert it to
traces with ``label``, ``activity``, ``subject`` and (if known) ``impact_t``
in the header and it is scored like SisFall. This module only adapts
:mod:`core.trace` (the one reader of the format) to the loader interface: its
:class:`~core.trace.TraceFormatError` becomes :class:`DatasetFormatError` with
the same file and line, so callers handle one error type.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from core.samples import ImuSample
from core.trace import TraceFormatError, TraceHeader, TraceReader
from tools.datasets.errors import DatasetFormatError

TRACE_SUFFIXES = frozenset({".csv", ".trace"})
"""File suffixes taken as traces when a directory is scanned."""
_MAGIC = "# format:"


def looks_like_trace(path: str | Path) -> bool:
    """True for ``*.csv``/``*.trace`` files and any file starting with the trace magic."""
    p = Path(path)
    if p.suffix.lower() in TRACE_SUFFIXES:
        return True
    try:
        with open(p, encoding="utf-8-sig", errors="replace") as f:
            return f.read(len(_MAGIC)) == _MAGIC
    except OSError:
        return False


def read_trace_header(path: str | Path) -> TraceHeader:
    """The validated header of a trace (the samples are not read)."""
    try:
        with TraceReader(path) as reader:
            return reader.header
    except TraceFormatError as e:
        raise DatasetFormatError(e.path, e.line, e.message) from None


def iter_trace_samples(path: str | Path) -> Iterator[ImuSample]:
    """Stream a trace's samples at its own rate, validating every line."""
    try:
        with TraceReader(path) as reader:
            yield from reader
    except TraceFormatError as e:
        raise DatasetFormatError(e.path, e.line, e.message) from None
