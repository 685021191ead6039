"""Weekly balance and gait trends: medians with a noise band, a change named only beyond the
metric's minimal detectable change; and ``retroguard sessions`` showing them from a real log."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import msgspec
import pytest

from core.gait_trends import METRICS, change, weekly
from core.protocol.messages import BalanceFigures, GaitFigures, IntervalSummary, SessionRecord
from firmware.storage.database import connect
from firmware.storage.sessions import save_session
from launcher.cli import main

UTC = dt.UTC
STEP_CV = next(m for m in METRICS if m.key == "step_time_cv")
SWAY_AP = next(m for m in METRICS if m.key == "sway_rms_ap")
CADENCE = next(m for m in METRICS if m.key == "cadence")


def gait(cv: float, cadence: float = 90.0) -> GaitFigures:
    return GaitFigures(
        analysed_s=600.0,
        steady_s=540.0,
        steady_share=0.9,
        steps=800,
        axes="mounting",
        cadence_spm=cadence,
        step_time_s=60.0 / cadence,
        step_time_cv_pct=cv,
        step_regularity=0.7,
        stride_regularity=0.65,
        step_symmetry=1.08,
        harmonic_ratio_v=2.5,
        rms_ap_ms2=1.1,
        rms_ml_ms2=0.9,
    )


def balance(rms_ap: float, status: str = "measured") -> BalanceFigures:
    if status != "measured":
        return BalanceFigures(condition="eyes open", status=status, duration_s=12.0)  # type: ignore[arg-type]
    return BalanceFigures(
        condition="eyes open",
        status="measured",
        duration_s=30.0,
        axes="mounting",
        rms_ap_ms2=rms_ap,
        rms_ml_ms2=0.02,
        path_ms2=7.0,
        ellipse_area_m2s4=0.025,
        jerk_m2s5=1.1,
        noise_floor_ms2=0.005,
    )


def record(day: str, cv: float, sway: float | None, n: int = 0) -> SessionRecord:
    g = gait(cv)
    return SessionRecord(
        id=f"{n:032x}",
        device_id="tm-1",
        plan="backward-10",
        status="completed",
        started_wall=f"{day}T12:00:00+00:00",
        ended_wall=f"{day}T12:12:00+00:00",
        planned_s=600.0,
        planned_backward_s=600.0,
        done_s=600.0,
        backward_s=600.0,
        longest_backward_s=600.0,
        paused_s=0.0,
        pauses=0,
        steps=900,
        walking_s=600.0,
        cadence_spm=90.0,
        trips=0,
        stumbles=0,
        intervals=[
            IntervalSummary(
                index=0,
                direction="backward",
                speed="0.5 mph",
                planned_s=600.0,
                done_s=600.0,
                steps=900,
                walking_s=600.0,
                cadence_spm=90.0,
                trips=0,
                stumbles=0,
                gait=g,
            )
        ],
        balance=[balance(sway)] if sway is not None else [balance(0.0, "moved")],
        gait_backward=g,
    )


# Week 10 of 2026 (Mon 2 March) and week 14 (Mon 30 March), Tuesday to Thursday at noon UTC:
# the same ISO weeks in any zone (``retroguard sessions`` counts weeks in the system's).
WEEK_A = [record("2026-03-03", 6.0, 0.080, 1), record("2026-03-04", 6.4, 0.090, 2),
          record("2026-03-05", 5.8, None, 3)]  # fmt: skip
WEEK_B = [record("2026-03-31", 1.9, 0.075, 4), record("2026-04-01", 2.1, 0.070, 5),
          record("2026-04-02", 2.0, 0.085, 6)]  # fmt: skip


def test_a_week_is_the_median_of_its_measured_sessions_with_a_band_that_narrows_with_n() -> None:
    (week,) = weekly(STEP_CV, WEEK_A, UTC)
    assert week.week == "2026-W10" and week.sessions == 3 and week.median == 6.0
    half = 1.96 * 1.2533 * STEP_CV.within_sd / math.sqrt(3)
    assert (week.low, week.high) == pytest.approx((6.0 - half, 6.0 + half))
    # The check in which the walker moved gives no sway value: two sessions count.
    (sway,) = weekly(SWAY_AP, WEEK_A, UTC)
    assert sway.sessions == 2 and sway.median == pytest.approx(0.085)
    one = weekly(STEP_CV, WEEK_A[:1], UTC)[0]
    assert one.high - one.low > week.high - week.low


def test_a_change_is_named_only_beyond_the_minimal_detectable_change() -> None:
    before, after = weekly(STEP_CV, WEEK_A, UTC)[0], weekly(STEP_CV, WEEK_A + WEEK_B, UTC)[1]
    assert STEP_CV.mdc95 == pytest.approx(1.96 * math.sqrt(2) * STEP_CV.within_sd)
    big = change(STEP_CV, before, after)  # 6.0 % -> 2.0 %: beyond 3.7 points
    assert big.delta == pytest.approx(-4.0) and big.verdict == "improved"
    assert change(STEP_CV, after, before).verdict == "worsened"
    # Sway 0.085 -> 0.075 m/s²: lower, but well within its noise.
    sway_a, sway_b = weekly(SWAY_AP, WEEK_A + WEEK_B, UTC)
    assert change(SWAY_AP, sway_a, sway_b).verdict == "within noise"
    # Cadence has no better direction: beyond noise it is only "up" or "down".
    fast = [msgspec.structs.replace(r, gait_backward=gait(5.0, 110.0)) for r in WEEK_B]
    c_a, c_b = weekly(CADENCE, WEEK_A, UTC)[0], weekly(CADENCE, fast, UTC)[0]
    assert change(CADENCE, c_a, c_b).verdict == "up"


def test_sessions_prints_the_checks_the_gait_and_the_weekly_trend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "device.db"
    conn = connect(db)
    for r in WEEK_A + WEEK_B:
        save_session(conn, r)
    conn.close()
    assert main(["sessions", "--db", str(db), "--intervals"]) == 0
    text = capsys.readouterr().out
    assert "balance eyes open: sway RMS AP 0.080 ML 0.020 m/s²" in text
    assert "balance eyes open: not measured, the walker moved" in text
    assert "backward 800 steady steps (90 % steady): cadence 90.0/min" in text
    # Counted from 1, as the spoken cues, `session demo` and the dashboard count.
    assert "    interval 1 backward 800 steady steps" in text
    assert "  backward: step-time CV %: 2026-W10 6 [" in text
    assert "2026-W10 to 2026-W14: -4 % (MDC95 3.7 %): improved" in text
    assert "2026-W10 to 2026-W14: -0.01 m/s² (MDC95 0.046 m/s²): within noise" in text
