"""Weekly trends of balance and gait, and when a change between two weeks is more than noise.

Pure functions over session figures (the device's
:class:`~core.protocol.messages.SessionRecord` or its summary: anything with
``started_wall``, ``balance``, ``gait_backward`` and ``gait_forward``), for
``retroguard sessions`` and, later, the caregiver's progress page, so that the
rule is written once:

* a session contributes a metric when it was measured (a balance check with
  status ``measured``; gait pooled over the session's intervals of one
  direction);
* a week's value is the **median** of its sessions' values, with a 95 %
  band ``median ± 1.96 · 1.2533 · Sw / √n`` (the standard error of the
  median of ``n`` values whose session-to-session SD is ``Sw``);
* a change between two weeks is called a change only when it exceeds the
  metric's **minimal detectable change** ``MDC95 = 1.96 · √2 · Sw`` (Weir
  2005); the word "improved" is used only for the metrics whose better
  direction the literature agrees on, and never without the MDC beside it.

``Sw`` per metric is the within-subject SD measured by ``retroguard
evaluate-gait`` on SisFall and KFall (all subjects; docs/gait.md, "What change
is meaningful"). Those were repeats within one visit, so day-to-day noise
can only be larger: the thresholds are lower bounds, used as the least a
change must be before it is named.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from core.progress import utc_of, week_of
from core.protocol.messages import BalanceFigures, GaitFigures

Better = Literal["lower", "higher"] | None


class SessionMeasures(Protocol):
    @property
    def started_wall(self) -> str: ...
    @property
    def balance(self) -> Sequence[BalanceFigures]: ...
    @property
    def gait_backward(self) -> GaitFigures | None: ...
    @property
    def gait_forward(self) -> GaitFigures | None: ...


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str
    unit: str
    within_sd: float
    """Session-to-session SD within a person (``Sw``), from ``retroguard evaluate-gait``."""
    better: Better
    value: Callable[[SessionMeasures], float | None]

    @property
    def mdc95(self) -> float:
        return 1.96 * math.sqrt(2.0) * self.within_sd


def _eyes_open(s: SessionMeasures) -> BalanceFigures | None:
    for b in s.balance:
        if b.condition == "eyes open" and b.status == "measured":
            return b
    return None


def _sway(name: str) -> Callable[[SessionMeasures], float | None]:
    def value(s: SessionMeasures) -> float | None:
        b = _eyes_open(s)
        return getattr(b, name) if b is not None else None

    return value


def _backward(name: str) -> Callable[[SessionMeasures], float | None]:
    def value(s: SessionMeasures) -> float | None:
        g = s.gait_backward
        return getattr(g, name) if g is not None else None

    return value


METRICS: tuple[Metric, ...] = (
    # KFall T01 (30 s stand, two halves, 16 subjects)
    Metric("sway_rms_ap", "balance: sway RMS AP", "m/s²", 0.0165, "lower", _sway("rms_ap_ms2")),
    Metric("sway_rms_ml", "balance: sway RMS ML", "m/s²", 0.0040, "lower", _sway("rms_ml_ms2")),
    # path grows with the trial: its 14 % CVw over 13.5 s halves, applied to the 7.3 m/s²
    # median path of the whole 27 s (a 30 s check is longer still: a conservative noise)
    Metric("sway_path", "balance: sway path", "m/s²", 1.0, "lower", _sway("path_ms2")),
    # SisFall D01 (walking slowly, 100 s, two halves, 21-22 subjects)
    Metric("cadence", "backward: cadence", "steps/min", 2.8, None, _backward("cadence_spm")),
    Metric(
        "step_time_cv",
        "backward: step-time CV",
        "%",
        1.32,
        "lower",
        _backward("step_time_cv_pct"),
    ),
    Metric(
        "step_regularity",
        "backward: step regularity",
        "",
        0.0504,
        "higher",
        _backward("step_regularity"),
    ),
    Metric(
        "walking_rms_ml",
        "backward: trunk RMS ML",
        "m/s²",
        0.0783,
        None,
        _backward("rms_ml_ms2"),
    ),
)
"""The metrics trended, with their noise (docs/gait.md lists all the measured ones)."""


@dataclass(frozen=True, slots=True)
class WeekValue:
    week: str
    sessions: int
    median: float
    low: float
    high: float
    """The 95 % band of the median (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Change:
    from_week: str
    to_week: str
    delta: float
    mdc95: float
    verdict: Literal["within noise", "improved", "worsened", "up", "down"]


def weekly(metric: Metric, sessions: Iterable[SessionMeasures], zone: dt.tzinfo) -> list[WeekValue]:
    """The metric's weekly medians with their bands, oldest week first (ISO weeks in
    ``zone``, as :func:`core.progress.weekly_progress` counts them)."""
    weeks: dict[str, list[float]] = {}
    for s in sessions:
        v = metric.value(s)
        if v is not None and math.isfinite(v):
            weeks.setdefault(week_of(utc_of(s.started_wall), zone), []).append(v)
    out = []
    for week, values in sorted(weeks.items()):
        m = statistics.median(values)
        half = 1.96 * 1.2533 * metric.within_sd / math.sqrt(len(values))
        out.append(WeekValue(week, len(values), m, m - half, m + half))
    return out


def change(metric: Metric, before: WeekValue, after: WeekValue) -> Change:
    """From one week to another: a change only beyond the metric's MDC95."""
    delta = after.median - before.median
    mdc = metric.mdc95
    verdict: Literal["within noise", "improved", "worsened", "up", "down"]
    if abs(delta) <= mdc:
        verdict = "within noise"
    elif metric.better is None:
        verdict = "up" if delta > 0 else "down"
    else:
        verdict = "improved" if (delta < 0) == (metric.better == "lower") else "worsened"
    return Change(before.week, after.week, delta, mdc, verdict)


def noise_said(mdc95: float) -> str:
    """A metric's MDC95 as every page, report and ``retroguard sessions`` says it: two
    significant figures ("0.046", "2.8", "3.7"). The figure is an estimate of noise (1.96 · √2
    · Sw, Sw measured on 16-22 people), good to a tenth of itself at best: a third figure
    ("0.0457") claimed a precision it has not, and the chart's "0.046" beside the text's
    "0.0457" read as two thresholds. Never in exponent form ("1.2e+02")."""
    return f"{float(f'{mdc95:.2g}'):g}"
