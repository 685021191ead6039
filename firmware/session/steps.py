"""A streaming step detector for the belt IMU: steps, cadence, walking versus standing time.

Like the fall detector it is pure — samples in, figures out, no I/O, no
clock of its own — so the same object runs in the monitor loop, in tests
and on SisFall files. It costs a few multiplications per sample.

How it works
    1. The acceleration magnitude ``|a|`` (g) does not depend on how the
       box is mounted; each step's heel strike and the pelvis bounce make it
       rise and fall once per step (lower-trunk vertical acceleration of
       ±0.15-0.4 g at step frequency: Zijlstra & Hof 2003, Gait Posture 18:1).
    2. Gravity and slow drifts are removed with a moving mean (time constant
       :data:`MEAN_TAU_S`); two cascaded first-order low-passes at
       :data:`LOWPASS_HZ` smooth the heel-strike spikes and the second
       harmonic of the bounce.
    3. A step is an upward crossing of ``+k·E`` after the signal has been
       below ``-k·E``, where ``E`` is the running mean of ``|signal|`` and
       ``k`` = :data:`HYSTERESIS`, never less than :data:`MIN_THRESHOLD_G`
       (quiet standing sways by a few mg and never crosses it). Crossings
       closer than :data:`MIN_STEP_S` are one step.
    4. Steps count only in bouts: :data:`BOUT_STEPS` steps in a row, each
       within :data:`MAX_STEP_S` of the last, start a bout and are counted
       together; a longer gap ends it. A single shift of weight, a bump or a
       turn on the spot is therefore not walking.

Walking time is the time covered by bouts (one step period per step);
cadence is 60 / the median of the last :data:`CADENCE_STEPS` step intervals,
in steps per minute, and 0 when not walking.

Expected cadence (steps/min): forward treadmill walking 96-120 at 1.0-1.5 m/s
(1.6-2.0 steps/s, Grieve & Gear 1966); slow backward walking at the prescribed
~0.5 mph (0.22 m/s) about 48-70 (the simulator clamps it at 48); SisFall D01
"walking slowly" 80-115 and D02 "walking quickly" 100-135 on its 38 subjects
(Sucerquia et al. 2017; figures measured in tests/test_session_steps.py and
docs/sessions.md). The detector accepts 30-240 steps/min
(:data:`MAX_STEP_S` and :data:`MIN_STEP_S`).

What it does not claim: the direction of walking. A waist IMU cannot tell
backward from forward walking reliably, so the session log records the
*planned* direction of each interval next to the measured walking.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque
from dataclasses import dataclass

from core.samples import ImuSample

MEAN_TAU_S = 1.5
LOWPASS_HZ = 3.0
HYSTERESIS = 0.5
MIN_THRESHOLD_G = 0.02
ENVELOPE_TAU_S = 2.0
MIN_STEP_S = 0.25
MAX_STEP_S = 2.0
BOUT_STEPS = 3
CADENCE_STEPS = 8


@dataclass(frozen=True, slots=True)
class StepCounts:
    """Running totals; differences of two snapshots give an interval's figures."""

    steps: int = 0
    walking_s: float = 0.0

    def minus(self, earlier: StepCounts) -> StepCounts:
        return StepCounts(self.steps - earlier.steps, self.walking_s - earlier.walking_s)

    @property
    def cadence_spm(self) -> float:
        """Mean cadence over the walking time (steps/min), 0 without walking."""
        return 60.0 * self.steps / self.walking_s if self.walking_s > 0 else 0.0


class StepDetector:
    """Feed samples in time order with :meth:`update`; read the figures any time."""

    def __init__(self) -> None:
        self._t: float | None = None
        self._mean = 0.0
        self._lp1 = 0.0
        self._lp2 = 0.0
        self._envelope = 0.0
        self._below = False
        self._last_crossing = -math.inf
        self._pending: list[float] = []
        self._in_bout = False
        self._last_step = -math.inf
        self._intervals: deque[float] = deque(maxlen=CADENCE_STEPS)
        self.steps = 0
        self.walking_s = 0.0
        self.bouts = 0

    @property
    def counts(self) -> StepCounts:
        return StepCounts(self.steps, self.walking_s)

    def walking(self, t: float) -> bool:
        """Whether the walker is in a bout at time ``t`` (a step within :data:`MAX_STEP_S`)."""
        return self._in_bout and t - self._last_step <= MAX_STEP_S

    def cadence_spm(self, t: float) -> float:
        """Current cadence (steps/min), 0 when not walking at ``t``."""
        if not self.walking(t) or not self._intervals:
            return 0.0
        return 60.0 / statistics.median(self._intervals)

    def update(self, sample: ImuSample) -> bool:
        """Take one sample; True when it completed a counted step."""
        t = sample.t
        m = math.sqrt(sample.ax * sample.ax + sample.ay * sample.ay + sample.az * sample.az)
        previous = self._t
        self._t = t
        if previous is None:
            self._mean = m
            return False
        dt = t - previous
        if not dt > 0:
            return False
        dt = min(dt, 0.1)  # a gap in the data must not throw the filters
        self._mean += (m - self._mean) * (1.0 - math.exp(-dt / MEAN_TAU_S))
        a = 1.0 - math.exp(-dt * 2.0 * math.pi * LOWPASS_HZ)
        self._lp1 += (m - self._mean - self._lp1) * a
        self._lp2 += (self._lp1 - self._lp2) * a
        x = self._lp2
        self._envelope += (abs(x) - self._envelope) * (1.0 - math.exp(-dt / ENVELOPE_TAU_S))
        threshold = max(MIN_THRESHOLD_G, HYSTERESIS * self._envelope)
        if x < -threshold:
            self._below = True
            return False
        if not (self._below and x > threshold):
            return False
        self._below = False
        if t - self._last_crossing < MIN_STEP_S:
            return False
        self._last_crossing = t
        return self._step(t)

    def _step(self, t: float) -> bool:
        if self._in_bout and t - self._last_step <= MAX_STEP_S:
            interval = t - self._last_step
            self._intervals.append(interval)
            self.steps += 1
            self.walking_s += interval
            self._last_step = t
            return True
        self._in_bout = False
        pending = self._pending
        if pending and t - pending[-1] > MAX_STEP_S:
            pending.clear()
        pending.append(t)
        if len(pending) < BOUT_STEPS:
            return False
        gaps = [b - a for a, b in itertools.pairwise(pending)]
        self._in_bout = True
        self.bouts += 1
        self.steps += len(pending)
        # One step period per step: the intervals plus one more for the first step.
        self.walking_s += sum(gaps) + statistics.mean(gaps)
        self._intervals.clear()
        self._intervals.extend(gaps)
        self._last_step = t
        pending.clear()
        return True
