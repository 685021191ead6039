"""The meters' results as the session record keeps them, rounded, and pooled per direction."""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.protocol.messages import AxesSource, BalanceCondition, BalanceFigures, GaitFigures
from firmware.gait.balance import SwayMetrics
from firmware.gait.walking import GaitMeasure

SIGNIFICANT = 4
"""Significant digits kept: far below any metric's noise, short on the wire."""


def sig(value: float | None, digits: int = SIGNIFICANT) -> float | None:
    """``value`` to ``digits`` significant digits (None and non-finite stay None)."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0.0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _non_negative(value: float | None) -> float | None:
    return None if value is None else max(0.0, value)


def balance_figures(
    condition: BalanceCondition, metrics: SwayMetrics, axes: AxesSource
) -> BalanceFigures:
    """A measured check (``moved`` when the walker did not stand still: then no figures)."""
    if metrics.moved:
        return BalanceFigures(
            condition=condition, status="moved", duration_s=round(metrics.duration_s, 1)
        )
    return BalanceFigures(
        condition=condition,
        status="measured",
        duration_s=round(metrics.duration_s, 1),
        axes=axes,
        rms_ap_ms2=sig(metrics.rms_ap),
        rms_ml_ms2=sig(metrics.rms_ml),
        range_ap_ms2=sig(metrics.range_ap),
        range_ml_ms2=sig(metrics.range_ml),
        rms_ms2=sig(metrics.rms_total),
        path_ms2=sig(metrics.path),
        mean_velocity_ms=sig(metrics.mean_velocity),
        jerk_m2s5=sig(metrics.jerk),
        ellipse_area_m2s4=sig(metrics.ellipse_area),
        noise_floor_ms2=sig(metrics.noise_floor),
    )


def interrupted(condition: BalanceCondition, measured_s: float) -> BalanceFigures:
    """A check cut short (the monitor was armed, or the session stopped): no figures."""
    return BalanceFigures(
        condition=condition, status="interrupted", duration_s=round(measured_s, 1)
    )


def gait_figures(measure: GaitMeasure, dropped_s: float = 0.0) -> GaitFigures:
    return GaitFigures(
        analysed_s=round(measure.analysed_s, 1),
        steady_s=round(measure.steady_s, 1),
        steady_share=round(min(1.0, measure.steady_share), 3),
        steps=measure.steps,
        axes=measure.axes,
        dropped_s=round(dropped_s, 1),
        cadence_spm=sig(measure.cadence_spm),
        step_time_s=sig(measure.step_time_s),
        step_time_cv_pct=sig(measure.step_time_cv_pct, 3),
        step_asymmetry_pct=sig(measure.step_asymmetry_pct, 3),
        step_regularity=sig(measure.step_regularity, 3),
        stride_regularity=sig(measure.stride_regularity, 3),
        step_symmetry=sig(measure.step_symmetry, 3),
        harmonic_ratio_v=sig(_non_negative(measure.harmonic_ratio_v), 3),
        harmonic_ratio_ap=sig(_non_negative(measure.harmonic_ratio_ap), 3),
        harmonic_ratio_ml=sig(_non_negative(measure.harmonic_ratio_ml), 3),
        rms_v_ms2=sig(measure.rms_v, 3),
        rms_ap_ms2=sig(measure.rms_ap, 3),
        rms_ml_ms2=sig(measure.rms_ml, 3),
    )


_POOLED = (
    "cadence_spm",
    "step_time_s",
    "step_time_cv_pct",
    "step_asymmetry_pct",
    "step_regularity",
    "stride_regularity",
    "step_symmetry",
    "harmonic_ratio_v",
    "harmonic_ratio_ap",
    "harmonic_ratio_ml",
    "rms_v_ms2",
    "rms_ap_ms2",
    "rms_ml_ms2",
)


def pool(figures: Sequence[GaitFigures]) -> GaitFigures | None:
    """Several intervals' gait as one: times added, each metric the mean of the intervals
    that have it weighted by their steady steps (so a short interval counts little)."""
    if not figures:
        return None
    analysed = sum(f.analysed_s for f in figures)
    steady = sum(f.steady_s for f in figures)
    steps = sum(f.steps for f in figures)
    by_axes: dict[AxesSource, int] = {}
    for f in figures:
        by_axes[f.axes] = by_axes.get(f.axes, 0) + f.steps + 1
    values: dict[str, float | None] = {}
    for name in _POOLED:
        pairs = [(getattr(f, name), f.steps) for f in figures if getattr(f, name) is not None]
        weight = sum(w for _, w in pairs)
        values[name] = (
            sig(sum(v * w for v, w in pairs) / weight, 3 if name != "cadence_spm" else 4)
            if weight
            else None
        )
    return GaitFigures(
        analysed_s=round(analysed, 1),
        steady_s=round(steady, 1),
        steady_share=round(min(1.0, steady / analysed), 3) if analysed > 0 else 0.0,
        steps=steps,
        axes=max(by_axes, key=lambda a: by_axes[a]),
        dropped_s=round(sum(f.dropped_s for f in figures), 1),
        **values,
    )
