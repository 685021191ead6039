"""The event plot tells the truth: tilt from the upright learned before the trip, labelled
marks for the trip, the impact and the confirmation, and what happened after."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from caregiver import plot
from core.protocol.messages import ImuMarks
from core.protocol.recording import encode_recording
from core.samples import ImuSample
from sim.recordings import fall_recording
from tests.caregiver_support import fall_window

Curve = Callable[[float], float]


def _still(t: float) -> float:
    return 0.0


def _recording(
    angle_deg: Curve,
    rate_dps: Curve = _still,
    upright: tuple[float, float, float] | None = (0.0, 0.0, 1.0),
) -> plot.PlotSeries:
    """A recording from -4 s to +10 s whose body angle (about y) and rate follow functions of t."""
    samples = []
    for i in range(1400):
        t = -4.0 + i / 100
        a = math.radians(angle_deg(t))
        samples.append(ImuSample(t, math.sin(a), 0.0, math.cos(a), 0.0, rate_dps(t), 0.0))
    rec = encode_recording(
        samples,
        trip_t=0.0,
        accel_range_g=8.0,
        gyro_range_dps=1000.0,
        upright=upright,
        marks=ImuMarks(impact=1.6, confirm=2.4),
    )
    return plot.recording_series(rec)


def test_tilt_is_measured_from_the_upright_learned_before_the_trip_not_the_first_second() -> None:
    # Already leaning 30 degrees when the window starts (mid-stumble), lying at 85 after:
    # measured from the window's first second the plot would level at 55 degrees.
    s = _recording(lambda t: 30.0 if t < 0 else min(85.0, 30.0 + 55.0 * t))
    assert s.upright == plot.UPRIGHT_LEARNED
    assert s.zero == plot.BELT_STOPPED
    assert s.tilt_deg[0] == pytest.approx(30.0, abs=0.5)
    assert s.tilt_deg[-1] == pytest.approx(85.0, abs=0.5)


def test_without_an_upright_the_first_second_is_upright_and_the_plot_says_so() -> None:
    s = _recording(lambda t: 30.0 if t < 0 else 85.0, upright=None)
    assert s.upright == plot.UPRIGHT_FIRST_SECOND
    assert s.tilt_deg[-1] == pytest.approx(55.0, abs=0.5)


def test_marks_are_labelled_in_time_order_and_the_window_runs_on_after_the_fall() -> None:
    s = plot.recording_series(fall_recording())
    assert [(m.t, m.label) for m in s.marks] == [
        (0.0, "belt stopped"),
        (1.6, "impact"),
        (2.4, "fall confirmed"),
    ]
    assert s.t[0] == pytest.approx(-4.0) and s.t[-1] == pytest.approx(9.99)
    impact = max(range(len(s.t)), key=lambda i: s.accel_g[i])
    assert s.t[impact] == pytest.approx(1.6, abs=0.05) and s.accel_g[impact] > 3.0


def test_a_footfall_does_not_make_the_tilt_jump() -> None:
    # a 60 ms spike of 1.5 g forward while upright: raw, that is 56 degrees of "tilt"
    samples = [
        ImuSample(-4 + i / 100, 1.5 if 100 <= i < 106 else 0.0, 0.0, 1.0, 0, 0, 0)
        for i in range(1400)
    ]
    rec = encode_recording(
        samples, trip_t=0.0, accel_range_g=8.0, gyro_range_dps=1000.0, upright=(0.0, 0.0, 1.0)
    )
    assert max(v for v in plot.recording_series(rec).tilt_deg if v is not None) < 30.0


@pytest.mark.parametrize(
    ("angle", "rate", "upright", "text"),
    [
        (lambda t: 85.0 if 1.5 < t < 5.0 else 0.0, lambda t: 0.0, True, "upright again 5 s"),
        (lambda t: 85.0 if t > 1.5 else 0.0, lambda t: 0.0, False, "still down and not moving"),
        (lambda t: 85.0 if t > 1.5 else 0.0, lambda t: 60.0, False, "still down but moving"),
    ],
)
def test_what_the_recording_shows_after_the_fall(
    angle: Curve, rate: Curve, upright: bool, text: str
) -> None:
    after = plot.after_the_fall(_recording(angle, rate))
    assert after is not None and after.upright is upright and text in after.text
    # counted from when the belt stopped, in the words the timeline uses ("trip" read as tripping)
    assert after.text.endswith(" s after the belt stopped"), after.text


def test_an_older_monitors_window_is_still_plotted_with_its_detection_mark() -> None:
    s = plot.window_series(fall_window())
    assert s.t[0] == pytest.approx(-3.0) and s.t[-1] == pytest.approx(0.0)
    assert [m.label for m in s.marks] == ["detected"]
    assert s.zero == plot.DETECTION  # its 0 s, as the time axis says it: not the belt
    assert s.upright == plot.UPRIGHT_FIRST_SECOND
    assert max(v for v in s.tilt_deg[:100] if v is not None) < 1.0
    assert plot.after_the_fall(s) is None  # nothing recorded after the detection


def test_a_recording_whose_samples_disagree_with_its_count_is_refused() -> None:
    import msgspec

    rec = msgspec.structs.replace(fall_recording(), count=10)
    with pytest.raises(ValueError, match=r"not 12 \(6 x int16\) x 10"):
        plot.recording_series(rec)
