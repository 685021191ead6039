"""The IMU recording around a trip: from 4 s before to 10 s after, compact, with its marks.

A real SafetyController on fake outputs and a scripted detector; the samples
are synthetic so that what comes back out of the recording can be checked
against what went in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from core.protocol.events import Event, EventType
from core.protocol.recording import decode_recording
from core.samples import ImuSample
from firmware.config import SafetyConfig
from firmware.detection.base import Detection, DetectionKind
from firmware.safety import SafetyController, SafetyState, SensorLimits
from firmware.windows import AFTER_S, BEFORE_S

RATE = 200.0
UP = (0.0, 0.6, 0.8)


class Relay:
    drive = "static"

    def __init__(self) -> None:
        self.holding = False

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False

    def close(self) -> None:
        self.holding = False


class Buzzer:
    """A silent buzzer: it plays nothing (its :attr:`pattern` stays None, as the interface's)."""

    pattern: str | None = None

    def play(self, pattern: str, now: float) -> None:
        pass

    def update(self, now: float) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


class Planned:
    """Decides each planned (time, kind) at the first sample at or past it; knows the upright
    and, for a fall, when its landing was (as the real detector does)."""

    def __init__(self, plan: list[tuple[float, DetectionKind]], impact_t: float = 0.0) -> None:
        self._plan = plan
        self.upright = UP
        self.impact_t: float | None = impact_t

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        due = []
        while self._plan and sample.t >= self._plan[0][0]:
            _, kind = self._plan.pop(0)
            due.append(Detection(kind, sample.t, kind.value, {"impact_g": 3.0}))
        return due

    def reset(self) -> None:
        pass


def wave(t: float) -> ImuSample:
    """A sample whose values say when it was taken (slowly, so averaging pairs barely moves
    them)."""
    return ImuSample(t, 0.5 * math.sin(t), 0.25, 0.9, 100 * math.sin(t / 2), -20.0, 3.0)


class Walk:
    def __init__(self, detector: Planned) -> None:
        self.events: list[Event] = []
        self.relay = Relay()
        self.controller = SafetyController(
            relay=self.relay,
            buzzer=Buzzer(),
            detector=detector,
            emit=self.events.append,
            config=SafetyConfig(),
            limits=SensorLimits(16.0, 2000.0),
            sample_rate_hz=RATE,
            device_id="tm1",
        )
        self.t = 0.0
        self.controller.start(self.t)

    def run_until(self, until: float) -> None:
        while self.t < until - 1e-9:
            self.t = round(self.t + 1 / RATE, 9)
            self.controller.on_samples([wave(self.t)], self.t)

    def arm(self) -> None:
        self.controller.on_button(self.t, self.t + 0.001)
        assert self.controller.state is SafetyState.ARMED

    def of(self, kind: EventType) -> list[Event]:
        return [e for e in self.events if e.type is kind]


def test_the_window_event_follows_the_trip_with_the_seconds_around_it() -> None:
    walk = Walk(Planned([(20.0, DetectionKind.STUMBLE)]))
    walk.run_until(5.0)
    walk.arm()
    walk.run_until(20.0 + AFTER_S - 0.5)
    (trip,) = walk.of(EventType.STUMBLE)
    assert trip.imu_window == () and walk.of(EventType.WINDOW) == []  # the alert went at once
    walk.run_until(20.0 + AFTER_S + 0.5)
    (window,) = walk.of(EventType.WINDOW)
    assert window.of == trip.id and window.incident == trip.incident is not None
    assert window.reason == "IMU -4.0 .. +10.0 s around the trip"  # a stumble, and only that
    recording = window.recording
    assert recording is not None
    assert recording.upright == UP and recording.marks.trip == 0.0
    assert recording.period_s == pytest.approx(0.01, rel=0.01)  # 200 Hz averaged to 100 Hz
    samples = decode_recording(recording)
    assert samples[0].t == pytest.approx(-BEFORE_S, abs=0.02)
    assert samples[-1].t == pytest.approx(AFTER_S, abs=0.02)
    for sample in samples[::50]:  # what went in comes back, to the counts' resolution
        expected = wave(20.0 + sample.t)
        assert sample.ax == pytest.approx(expected.ax, abs=0.002)
        assert sample.gx == pytest.approx(expected.gx, abs=0.2)
    assert len(recording.samples) < 12 * recording.count  # int16 counts, compressed


def test_a_fall_after_the_trip_is_marked_in_its_recording_with_its_landing() -> None:
    walk = Walk(Planned([(20.0, DetectionKind.STUMBLE), (22.4, DetectionKind.FALL)], 20.4))
    walk.run_until(5.0)
    walk.arm()
    walk.run_until(35.0)
    (trip,) = walk.of(EventType.STUMBLE)
    (fall,) = walk.of(EventType.FALL)
    assert fall.incident == trip.incident
    (window,) = walk.of(EventType.WINDOW)  # one plot tells the story
    assert window.of == trip.id and window.recording is not None
    assert window.reason == "IMU -4.0 .. +10.0 s around the fall"  # what the trip became
    marks = window.recording.marks
    assert marks.impact == pytest.approx(0.4, abs=0.006)
    assert marks.confirm == pytest.approx(2.4, abs=0.006)


def test_a_reset_before_the_end_sends_what_was_recorded_first_and_ends_the_incident() -> None:
    walk = Walk(Planned([(20.0, DetectionKind.STUMBLE), (40.0, DetectionKind.STUMBLE)]))
    walk.run_until(5.0)
    walk.arm()
    walk.run_until(23.0)
    walk.arm()
    kinds = [e.type for e in walk.events]
    assert kinds[-4:] == [EventType.STUMBLE, EventType.WINDOW, EventType.OK, EventType.RESET]
    window, ok, reset = walk.events[-3:]
    assert window.recording is not None
    assert decode_recording(window.recording)[-1].t == pytest.approx(3.0, abs=0.02)
    assert ok.by == "walker" and ok.incident == reset.incident == window.incident
    walk.run_until(45.0)
    first, second = walk.of(EventType.STUMBLE)
    assert second.incident is not None and second.incident != first.incident  # a new one


def test_a_recording_whose_samples_stop_is_sent_with_what_it_has() -> None:
    walk = Walk(Planned([(20.0, DetectionKind.STUMBLE)]))
    walk.run_until(5.0)
    walk.arm()
    walk.run_until(22.0)
    for step in range(1, 200):  # the IMU went silent: the loop idles on its own clock
        walk.controller.on_idle(22.0 + step * 0.1)
    assert walk.controller.state is SafetyState.FAULT
    (window,) = walk.of(EventType.WINDOW)
    assert window.recording is not None
    assert decode_recording(window.recording)[-1].t == pytest.approx(2.0, abs=0.02)
    (fault,) = walk.of(EventType.FAULT)
    assert fault.incident == window.incident  # the fault joins the trip's incident


def test_the_impact_search_finds_the_latest_matching_peak_within_its_horizon() -> None:
    """The raw ring (t, ax, ay, az of the last 8 s) wraps many times and still answers like
    the samples themselves: the newest peak at or before ``t``, nothing past the horizon."""
    from firmware.windows import IMPACT_SEARCH_S, WindowRecorder

    recorder = WindowRecorder(RATE, 16.0, 2000.0)
    peaks = {3.0: 3.0, 20.0: 3.0, 24.0: 3.0, 27.5: 3.0}  # sample time -> |a| in g

    def magnitude(t: float) -> float:
        return next((g for at, g in peaks.items() if abs(t - at) < 1e-9), 1.0)

    n = int(30.0 * RATE)
    for i in range(n):
        t = i / RATE
        g = magnitude(t)
        recorder.add(ImuSample(t, 0.0, g * 0.6, g * 0.8, 1.0, 2.0, 3.0))
    assert recorder.impact_before(27.6, 3.0) == pytest.approx(27.5)
    assert recorder.impact_before(27.4, 3.0) == pytest.approx(24.0)  # newer samples skipped
    assert recorder.impact_before(27.6, 2.5) is None  # no sample of that magnitude
    # The ring keeps the last IMPACT_SEARCH_S: the peak at 20 s is gone, though within 8 s of 23.9.
    assert 23.9 - IMPACT_SEARCH_S < 20.0
    assert recorder.impact_before(23.9, 3.0) is None
    assert recorder.impact_before(29.99, 3.0) == pytest.approx(27.5)


def test_a_wakes_batch_is_recorded_exactly_as_sample_by_sample() -> None:
    """The loop hands the recorder a wake's samples in one call (two at 200 Hz): the ring, the
    impact search's raw samples and the recordings under way end up byte for byte as with one
    call a sample, whatever the batches (pairs, a lone sample that leaves a row half made,
    longer ones after a late wake) and across the raw ring's wrap."""
    from firmware.windows import WindowRecorder

    one, batched = WindowRecorder(RATE, 16.0, 2000.0), WindowRecorder(RATE, 16.0, 2000.0)
    trip = Event.now(EventType.STUMBLE, "tm1", 0.0, "TRIPPED", "stumble")
    sizes = [2, 2, 1, 2, 2, 3, 2, 1, 1, 2, 4, 2]
    i, started = 0, False
    while i < int(12.0 * RATE):  # past the 8 s raw ring: it wraps, at odd places too
        size = sizes[(i // 7) % len(sizes)]
        batch = [wave(round((i + k + 1) / RATE, 9)) for k in range(size)]
        for sample in batch:
            one.add(sample)
        batched.add_batch(batch)
        i += size
        if i >= 1000 and not started:  # a recording under way from the middle on, in both
            started = True
            for recorder in (one, batched):
                recorder.start(trip, batch[-1].t, batch[-1].t, UP)
    assert list(batched._ring) == list(one._ring) and len(one._ring) > 100
    assert batched._raw == one._raw and batched._raw_at == one._raw_at
    assert batched._group == one._group
    (a,), (b,) = one.take_all(), batched.take_all()
    assert a.rows == b.rows and len(a.rows) > 400
    assert (a.first_t, a.last_t, a.complete) == (b.first_t, b.last_t, b.complete)
    assert one.finish(a) == batched.finish(b)


@pytest.mark.parametrize("second", [False, True], ids=["first-of-pair", "second-of-pair"])
def test_two_samples_a_wake_give_the_trip_and_its_recording_of_one_a_wake(second: bool) -> None:
    """The controller checks a wake's samples, records them in one call, then detects each:
    a trip on either sample of a pair gives the same alert and the same recording (a recording
    a detection starts holds the rest of its batch) as a sample a wake."""
    trip_at = 20.0 + (1 / RATE if second else 0.0)

    def walk(per_wake: int) -> Walk:
        w = Walk(Planned([(trip_at, DetectionKind.STUMBLE)]))
        w.run_until(5.0)
        w.arm()
        while w.t < 20.0 + AFTER_S + 0.5:
            samples = [wave(round(w.t + (k + 1) / RATE, 9)) for k in range(per_wake)]
            w.t = samples[-1].t
            w.controller.on_samples(samples, w.t)
        return w

    alone, paired = walk(1), walk(2)
    (trip_1,), (trip_2,) = alone.of(EventType.STUMBLE), paired.of(EventType.STUMBLE)
    assert trip_1.reason == trip_2.reason  # (its loop time is the wake's)
    (window_1,), (window_2,) = alone.of(EventType.WINDOW), paired.of(EventType.WINDOW)
    assert window_1.recording is not None and window_2.recording is not None
    assert window_1.recording.samples == window_2.recording.samples
    assert window_1.recording.start_s == window_2.recording.start_s
    assert paired.controller.samples_seen == alone.controller.samples_seen


def test_a_bad_sample_after_a_trip_in_the_same_wake_faults_after_the_trip() -> None:
    """Checked first, acted on in order: the good sample before a bad one is recorded and
    detected (its trip alerts) before the bad one faults, as sample by sample."""
    w = Walk(Planned([(20.0, DetectionKind.STUMBLE)]))
    w.run_until(5.0)
    w.arm()
    w.run_until(20.0 - 1 / RATE)
    bad = ImuSample(20.005, float("nan"), 0.0, 1.0, 0.0, 0.0, 0.0)
    w.controller.on_samples([wave(20.0), bad], 20.005)
    kinds = [e.type for e in w.events]
    assert kinds.index(EventType.STUMBLE) < kinds.index(EventType.FAULT)
    assert w.controller.state is SafetyState.FAULT and not w.relay.holding
    assert w.controller.samples_seen == round(20.0 * RATE)
