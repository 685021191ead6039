"""A trace's rows held to what its header says of them, as they stream.

The trace format (docs/trace-format.md) takes ``sample_rate_hz`` as a nominal rate that
timestamps jitter around, and lets the rows span up to twice their nominal time, so a
header that is simply wrong passed: a 100 Hz recording under a 200 Hz header was fed to the
detector as 200 Hz samples (no resampling: the rates "agreed"), and ``replay`` said "1200
samples (6.0 s at 200 Hz)" of twelve seconds. Checked on the stream, not the file: the
first rows are held back only until their spacing is known.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from core.samples import ImuSample
from tools.datasets.errors import DatasetFormatError

RATE_CHECK_ROWS = 65
"""Rows whose 64 intervals' median is the trace's spacing: a lost sample or a late one moves
a median of 64 not at all, and a third of a second at 200 Hz is read before the first
sample goes on."""

RATE_TOLERANCE = 0.25
"""How far the median spacing may be from ``1 / sample_rate_hz``: an MPU-6050's clock is
within a few percent of its nominal rate; a header off by a factor (100 for 200) is not."""


def rows_at_header_rate(
    samples: Iterable[ImuSample], path: Path, sample_rate_hz: float
) -> Iterator[ImuSample]:
    """``samples`` unchanged, once their spacing agrees with ``sample_rate_hz``; else
    :class:`DatasetFormatError` naming the header's line and both rates, before any sample
    is yielded."""
    rows = iter(samples)
    head = list(itertools.islice(rows, RATE_CHECK_ROWS))
    gaps = sorted(b.t - a.t for a, b in itertools.pairwise(head))
    if len(gaps) >= 2:
        spacing = gaps[len(gaps) // 2]
        nominal = 1.0 / sample_rate_hz
        if abs(spacing - nominal) > RATE_TOLERANCE * nominal:
            raise DatasetFormatError(
                path,
                _header_line(path, "sample_rate_hz"),
                f"sample_rate_hz: {sample_rate_hz:g}, but the rows are "
                f"{spacing * 1000:.3g} ms apart ({1.0 / spacing:.4g} Hz): fix the header, or "
                "the t column (docs/trace-format.md)",
            )
    yield from head
    yield from rows


def rows_reach_labels(
    samples: Iterable[ImuSample], path: Path, labelled: Mapping[str, float | None]
) -> Iterator[ImuSample]:
    """``samples`` unchanged; at their end :class:`DatasetFormatError` when a labelled time
    (``impact_t``, ``onset_t``) lies after the last row, or there is no row. A trace cut off
    at a line's end reads as whole: its fall's labels stayed, replay put a stumble "before
    impact" of an impact the file no longer held, and evaluate scored the fall as caught.
    Cut off before its first row, it said "0 samples, no detections" and exit 0."""
    last: float | None = None
    for sample in samples:
        last = sample.t
        yield sample
    for key, t in labelled.items():
        if t is not None and (last is None or t > last):
            after = "the header, no row" if last is None else f"the last row (t = {last:g})"
            raise DatasetFormatError(
                path,
                _header_line(path, key),
                f"{key}: {t:g}, after {after}: the recording ends before what it labels (was "
                "it cut off?)",
            )


def _header_line(path: Path, key: str) -> int:
    """The 1-based line of ``# key:`` in the trace's header (1 when it cannot be found)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(itertools.islice(f, 200), start=1):
                if line.startswith(f"# {key}:"):
                    return number
                if not line.startswith("#"):
                    break
    except OSError:
        pass
    return 1
