"""Many recordings over the cores, and the progress line on stderr.

Apart from :mod:`tools.evaluate.scoring` because the worker pool, the order results come back
in and the progress display have nothing to do with how one file is scored (and a worker
process needs a module-level job function to call).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TextIO

from firmware.detection import DetectorConfig
from tools.evaluate.result import FileResult
from tools.evaluate.scoring import evaluate_file
from tools.evaluate.transforms import Rotation


def _evaluate_job(
    job: tuple[str, float, DetectorConfig, bool, Rotation | None, str, float, bool, float | None],
) -> FileResult:
    return evaluate_file(*job)


def run_files(
    paths: Sequence[Path],
    rate_hz: float,
    config: DetectorConfig,
    *,
    use_mounting: bool = True,
    rotation: Rotation | None = None,
    sisfall_accelerometer: str = "adxl345",
    gyro_scale: float = 1.0,
    reverse: bool = False,
    start_before_onset: float | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[FileResult]:
    """Evaluate every file, over ``jobs`` processes (default: all cores).

    Results come back in the order of ``paths`` whatever order the workers
    finish in, so summaries are deterministic. Longest files are submitted
    first (by size) so that one 100 s walk does not finish last alone.
    """
    jobs = jobs or os.cpu_count() or 1
    options = (
        use_mounting,
        rotation,
        sisfall_accelerometer,
        gyro_scale,
        reverse,
        start_before_onset,
    )
    work = [(str(p), rate_hz, config, *options) for p in paths]
    total = len(work)
    if progress:
        progress(0, total)
    if jobs == 1 or total <= 1:
        results = []
        for i, job in enumerate(work, start=1):
            results.append(_evaluate_job(job))
            if progress:
                progress(i, total)
        return results
    order = sorted(range(total), key=lambda i: -_size(paths[i]))
    out: list[FileResult | None] = [None] * total
    done = 0
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        futures: dict[Future[FileResult], int] = {
            ex.submit(_evaluate_job, work[i]): i for i in order
        }
        for fut in as_completed(futures):
            out[futures[fut]] = fut.result()
            done += 1
            if progress:
                progress(done, total)
    return [r for r in out if r is not None]


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


class Progress:
    """A one-line progress bar on a terminal; sparse plain lines otherwise (CI logs)."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self._last_pct = -1

    def __call__(self, done: int, total: int) -> None:
        frac = done / total if total else 1.0
        elapsed = time.monotonic() - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        if self.tty:
            bar = "#" * int(frac * self.width)
            self.stream.write(
                f"\r[{bar:<{self.width}}] {done}/{total} files  {elapsed:5.1f} s  eta {eta:5.1f} s"
            )
            if done == total:
                self.stream.write("\n")
        else:
            pct = int(frac * 10) * 10
            if pct == self._last_pct and done != total:
                return
            self._last_pct = pct
            self.stream.write(f"evaluate: {done}/{total} files ({pct}%) {elapsed:.1f} s\n")
        self.stream.flush()
