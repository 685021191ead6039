"""Weekly trends of balance and gait for the progress page, the report and its chart JSON.

The rule (weekly medians, their 95 % band, a change named only beyond the
metric's MDC95) is :mod:`core.gait_trends`, shared with ``retroguard
sessions``; this module only reads the figures out of the stored session
summaries (the row keeps the minutes, the summary as received keeps the balance
check and the gait) and shapes them for display: every value with its unit, its
band and the noise a change must exceed, never a bare better or worse.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from core.gait_trends import METRICS, Change, Metric, WeekValue, change, noise_said, weekly
from core.progress import week_label, week_start
from core.protocol.messages import BalanceFigures, GaitFigures

log = logging.getLogger(__name__)


class SessionMeasures(msgspec.Struct, frozen=True):
    """What a trend reads of a session summary (unknown fields ignored: any release's
    summary decodes; one without figures simply adds nothing)."""

    started_wall: str
    balance: list[BalanceFigures] = msgspec.field(default_factory=list)
    gait_backward: GaitFigures | None = None
    gait_forward: GaitFigures | None = None


_decode = msgspec.json.Decoder(SessionMeasures).decode


def measures_of(payloads: Iterable[str]) -> list[SessionMeasures]:
    """The balance and gait figures of stored session summaries (unreadable ones skipped:
    the row was accepted, only its trend figures are lost)."""
    out = []
    for payload in payloads:
        try:
            out.append(_decode(payload))
        except msgspec.DecodeError as exc:
            log.warning("a stored session summary's figures could not be read: %s", exc)
    return out


@dataclass(frozen=True, slots=True)
class Trend:
    """One metric's weekly medians with their bands, and the change from the first week to
    the last against the metric's MDC95."""

    metric: Metric
    weeks: list[WeekValue]
    change: Change | None = None
    labels: list[str] = field(default_factory=list)
    """Each week as its Monday, "17 Feb"."""

    @property
    def unit(self) -> str:
        return self.metric.unit

    @property
    def noise(self) -> str:
        """The metric's MDC95 in words (:func:`noise_said`), without its unit."""
        return noise_said(self.metric.mdc95)

    def describe_change(self) -> str:
        """The change in words, with the noise beside it ("" with fewer than two weeks)."""
        c = self.change
        if c is None:
            return ""
        return (
            f"Week of {week_label(c.from_week)} to week of {week_label(c.to_week)}: "
            f"{self.change_amount()}"
        )

    def change_amount(self) -> str:
        """:meth:`describe_change` after its weeks ("+0.3 m/s², noise (MDC95) 0.05 m/s²:
        improved"): the page puts the weeks in the browser's words before it."""
        c = self.change
        if c is None:
            return ""
        unit = f" {self.unit}" if self.unit else ""
        return f"{c.delta:+.3g}{unit}, noise (MDC95) {noise_said(c.mdc95)}{unit}: {c.verdict}"


def trends(measures: Sequence[SessionMeasures], zone: dt.tzinfo) -> list[Trend]:
    """Every metric with at least one measured week (weeks counted in ``zone``)."""
    out = []
    for metric in METRICS:
        weeks = weekly(metric, measures, zone)
        if not weeks:
            continue
        moved = change(metric, weeks[0], weeks[-1]) if len(weeks) >= 2 else None
        out.append(Trend(metric, weeks, moved, [week_label(w.week) for w in weeks]))
    return out


def trends_json(found: Sequence[Trend]) -> list[dict[str, object]]:
    """The trend charts' data (``/api/devices/{id}/trends``)."""
    return [
        {
            "key": t.metric.key,
            "label": t.metric.label,
            "unit": t.unit,
            "mdc95": round(t.metric.mdc95, 4),
            "noise": t.noise,  # as the page's text says it: the chart's label reads the same
            "labels": t.labels,
            "mondays": [week_start(w.week).isoformat() for w in t.weeks],
            "median": [round(w.median, 4) for w in t.weeks],
            "low": [round(w.low, 4) for w in t.weeks],
            "high": [round(w.high, 4) for w in t.weeks],
            "sessions": [w.sessions for w in t.weeks],
            "change": t.describe_change(),
        }
        for t in found
    ]
