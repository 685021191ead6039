"""The streaming fall and stumble detector.

One waist IMU sample at a time, plain Python scalar arithmetic (no NumPy in
the per-sample path: on a Pi Zero a NumPy call on three numbers costs more
than the whole update). The detector knows the body rather than a mounting:

1. **Orientation.** It keeps the gravity direction *in the sensor frame*,
   propagated by the gyro and pulled gently toward the accelerometer when the
   accelerometer reads close to 1 g (a complementary filter). It never assumes
   which sensor axis points up: the first ``warmup_s`` seconds learn it, or
   the caller passes an ``up`` vector derived from a known mounting. Landings
   are followed during the warm-up too, against a provisional upright, so a
   fall in the first second is not missed.
2. **Upright reference.** The trunk's usual gravity direction, followed slowly
   while upright. Trunk *tilt* is the angle between the current gravity
   direction and this reference, so a belt worn crooked reads 0° when upright.
3. **Rates.** The angular rate is split into the part about the vertical (a
   turn, harmless however fast) and the horizontal part (the trunk pitching or
   rolling: a loss of balance). Only the latter enters decisions, which is why
   a brisk 180° turn does not trip.
4. **Vertical velocity.** Acceleration projected on the gravity direction,
   minus 1 g, integrated with a leak: the body's downward speed.
5. **Decisions.** STUMBLE (pre-impact, opens the relay) when the body moves
   down fast *and* the trunk has left upright, or moves down very fast, or
   drops unsupported with the trunk still upright (an upright collapse), or
   is in free fall for longer than a jogging flight phase, or (during calm
   gait) the trunk suddenly rotates away from upright (the table in
   :mod:`firmware.detection.rules`). FALL (confirmed) when the trunk was
   upright shortly before an impact, or the body dropped onto it in free
   fall (off a bed), and lies through the seconds after it (a brief rebound
   allowed); after a landing too soft to tell from lying down onto a bed,
   only a long lie confirms it, and only if the body got there out of
   control (a fast turn or a fast descent).
   NO_RECOVERY when the wearer stays lying and still for ``no_recovery_s``
   after a fall.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from core.samples import ImuSample
from firmware.detection.base import NO_DETECTIONS, Detection, DetectionKind
from firmware.detection.config import DetectorConfig
from firmware.detection.rules import STUMBLE_RULES

G_MPS2 = 9.80665
"""Standard gravity: converts g to m/s² for the vertical velocity."""
_D2R = math.pi / 180.0
_R2D = 180.0 / math.pi
_MAX_LANDINGS = 32
"""Landings followed at once. Each is dropped about 0.65 s after it unless the
trunk lies, so there are a few at most (8 seen in a jogging trip, F05); the
bound keeps the memory fixed whatever comes."""
_HISTORY_STEP_S = 0.02
"""Spacing (s) of the pre-event tilt and velocity history read at an impact."""
_ROTATION_STEP_S = 0.009
"""Spacing (s) of the entries of the tilt-gain window (just under 10 ms, so
that a 100 Hz stream keeps every sample)."""


class FallDetector:
    """Streaming detector implementing :class:`firmware.detection.base.Detector`.

    Build it with :func:`firmware.detection.factory.build_detector` so that the
    monitor, ``replay`` and ``evaluate`` all run the same configuration.

    After each :meth:`update` the current estimates are readable as plain
    attributes (``tilt_deg``, ``tilt_rate_dps``, ``vz_mps``, ``accel_g``,
    ``freefall_s``), which is what the plotting script and the tests use; they
    are not part of the stable :class:`Detector` interface.
    """

    def __init__(
        self,
        config: DetectorConfig,
        sample_rate_hz: float,
        up: tuple[float, float, float] | None = None,
    ) -> None:
        """``up``: the sensor-frame direction that points up when the wearer
        stands, from a known mounting. The warm-up still learns the actual
        upright direction (a belt sits 10-20 degrees off any sensor axis); the
        hint replaces it only if the two disagree by more than
        ``mounting_tolerance_deg``, i.e. when the wearer was not upright while
        the detector warmed up."""
        if sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be positive, not {sample_rate_hz}")
        self.config = config
        self.sample_rate_hz = float(sample_rate_hz)
        self._up_hint = _normalised(up) if up is not None else None
        # The numbers read on every sample, copied out of the configuration
        # once: the compiled build reads its own attributes directly, whereas
        # each read from the (Python) dataclass is a lookup.
        c = config
        self._warmup_s = c.warmup_s
        self._gravity_tau_s = c.gravity_tau_s
        self._accel_lowpass_s = c.accel_lowpass_s
        self._accel_gate_g = c.accel_gate_g
        self._activity_tau_s = c.activity_tau_s
        self._vigour_tau_s = c.vigour_tau_s
        self._tilt_speed_tau_s = c.tilt_speed_tau_s
        self._upright_max_tilt_deg = c.upright_max_tilt_deg
        self._upright_tau_s = c.upright_tau_s
        self._velocity_tau_s = c.velocity_tau_s
        self._freefall_g = c.freefall_g
        self._freefall_min_s = c.freefall_min_s
        self._rotation_window_s = c.rotation_window_s
        self._rotation_gain_deg = c.rotation_gain_deg
        self._upright_before_deg = c.upright_before_deg
        self._upright_before_s = c.upright_before_s
        self._stumble_upright_tilt_deg = c.stumble_upright_tilt_deg
        self._lying_tilt_deg = c.lying_tilt_deg
        self._descent_window_s = c.descent_window_s
        self._impact_window_s = c.impact_window_s
        self._confirm_delay_s = c.confirm_delay_s
        self._drop_min_s = c.drop_min_s
        self._nominal_s = 1.0 / self.sample_rate_hz
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything, as if freshly built (the ``up`` hint is configuration)."""
        self._t_prev: float | None = None
        self._t_start = 0.0
        self._warm = False
        # Gravity direction (accelerometer at rest reads +1 g along it); the
        # first sample's accelerometer reading initialises it.
        self._rx, self._ry, self._rz = 0.0, 0.0, 1.0
        # Upright reference (same convention), learned during the warm-up.
        self._ux, self._uy, self._uz = self._rx, self._ry, self._rz
        self._have_gravity = False
        # The first sample's gravity direction: the provisional upright of a
        # warm-up with neither a motionless sample nor a known mounting.
        self._first_rx, self._first_ry, self._first_rz = self._rx, self._ry, self._rz
        # Low-passed accelerometer (g), the filter's reference for gravity.
        self._lx, self._ly, self._lz = self._rx, self._ry, self._rz
        self.tilt_deg = 0.0
        self.tilt_rate_dps = 0.0
        self.yaw_rate_dps = 0.0
        self.vz_mps = 0.0
        self.down_mps = 0.0
        self._supported_down = 0.0
        self.unsupported_gain_mps = 0.0
        self.descending_s = 0.0
        self._g_est = 1.0
        self._g_sum = 0.0
        self._g_n = 0
        # The 1 g level's window: blocks (end time, sum of a_along x dt,
        # duration) waiting out the lag, then the ones averaged.
        self._lvl_sum = 0.0
        self._lvl_dur = 0.0
        self._lvl_block_end = -math.inf
        self._lvl_pending: deque[tuple[float, float, float]] = deque()
        self._lvl_mean = 0.0
        self._lvl_seen = 0.0
        # Whether the 1 g level is known (from standing still, or from a
        # second of whole strides): until then a downward velocity cannot be
        # told from a level error, and the rules on velocity alone wait.
        self.level_known = False
        # The warm-up's motionless samples: |a| summed (the sensor's own 1 g)
        # and the gravity directions summed (the posture standing still).
        self._still_g_sum = 0.0
        self._still_n = 0
        self._still_rx, self._still_ry, self._still_rz = 0.0, 0.0, 0.0
        self.still = False
        self.accel_g = 1.0
        self.freefall_s = 0.0
        self.activity_g = 0.0
        self.vigour_g = 0.0
        self.tilt_gain_deg = 0.0
        # Rate of change of the tilt (deg/s, smoothed; positive = leaving
        # upright). Unknown until two tilts have been computed.
        self.tilt_speed_dps = 0.0
        self._have_tilt = False
        self._tilt_window: deque[tuple[float, float]] = deque()
        # Least tilt over the last upright_before_s and greatest downward
        # velocity over the last descent_window_s (monotonic deques): the
        # pre-event posture and descent read at an impact.
        self._pre_tilt: deque[tuple[float, float]] = deque()
        self._pre_down: deque[tuple[float, float]] = deque()
        self._pre_turn: deque[tuple[float, float]] = deque()
        self._history_next_t = -math.inf
        self._rotation_next_t = -math.inf
        self._stumble_ready_t = -math.inf
        self._evidence_t = -math.inf
        self._upright_t = -math.inf
        self._risen_t = -math.inf
        # Any landing above this starts watching for a fall; a firm impact
        # (impact_g and impact_impulse_gs) is confirmed sooner than a soft one.
        self._candidate_g = min(self.config.impact_g, self.config.soft_impact_g)
        self._still_gyro2 = self.config.still_gyro_dps * self.config.still_gyro_dps
        # Every stumble rule needs at least this downward velocity, free fall
        # or a tilt gain (see _stumble).
        self._stumble_gate_mps = min(rule.gate_mps(self.config) for rule in STUMBLE_RULES)
        # Recent |a| - 1 g deviations (time, deviation x dt) for the impulse.
        self._dev_window: deque[tuple[float, float]] = deque(
            maxlen=int(self.config.impact_window_s * self.sample_rate_hz) + 2
        )
        # Landings (impacts) still in question, oldest first: each is judged
        # on what follows it, so a heel strike just before a fall cannot
        # hide the fall's own, softer landing.
        self._landings: list[_Landing] = []
        self._last_step_t = -math.inf
        # The last free fall: how long, and when it ended.
        self._drop_s = 0.0
        self._drop_end_t = -math.inf
        self._fallen_t: float | None = None
        self._still_since: float | None = None
        self._upright_since: float | None = None
        self._no_recovery_sent = False
        self._impact_t: float | None = None

    @property
    def upright(self) -> tuple[float, float, float] | None:
        """The upright reference, read-only: sensor-frame "up" (where the accelerometer reads
        +1 g) as learned while the wearer stood; None until the warm-up is over. The monitor
        sends it with each trip's IMU recording, so tilt is measured from the walker's own
        standing posture."""
        return (self._ux, self._uy, self._uz) if self._warm else None

    @property
    def impact_t(self) -> float | None:
        """Sample time of the landing the latest fall confirmed (its peak), read-only; None
        before any. The monitor marks it on the trip's recording without searching for it."""
        return self._impact_t

    @property
    def lying(self) -> bool:
        """The trunk reads lying: its gravity direction more than ``lying_tilt_deg`` from
        upright — the learned upright once the warm-up is over, the mounting's before (no
        opinion without either). Read by the monitor before it arms: nothing trips on a
        person already lying (a fall episode has no second fall in it), so the belt must
        not be let run under one. A sensor that slipped that far on the belt reads lying
        too, and should not arm either: it would watch the walker from the wrong angle."""
        if not self._have_gravity:
            return False
        if self._warm:
            ux, uy, uz = self._ux, self._uy, self._uz
        elif self._up_hint is not None:
            ux, uy, uz = self._up_hint
        else:
            return False
        cos_tilt = self._rx * ux + self._ry * uy + self._rz * uz
        return cos_tilt < math.cos(self._lying_tilt_deg * _D2R)

    @property
    def fall_open(self) -> bool:
        """A fall was confirmed and its episode is not over: no stumble or landing is looked
        for until the wearer has stood upright for 2 s (or :meth:`end_fall`)."""
        return self._fallen_t is not None

    def end_fall(self) -> None:
        """End the fall episode now: a person at the machine re-armed with the walker upright
        (the monitor reads :attr:`lying` first). Waiting for 2 s upright instead left the
        first seconds of a quick re-arm with no stumble or fall detection at all."""
        self._fallen_t = None
        self._still_since = None
        self._upright_since = None

    # ----------------------------------------------------------------- update
    def update(self, sample: ImuSample) -> Sequence[Detection]:
        """Consume one sample; return the detections it completes (often none)."""
        t, ax, ay, az, gx, gy, gz = sample
        return self.step(t, ax, ay, az, gx, gy, gz, math.sqrt(ax * ax + ay * ay + az * az))

    def step(
        self,
        t: float,
        ax: float,
        ay: float,
        az: float,
        gx: float,
        gy: float,
        gz: float,
        amag: float,
    ) -> Sequence[Detection]:
        """:meth:`update` with the acceleration magnitude ``amag`` (g) given.

        The one implementation of the per-sample logic. ``amag`` is the only
        quantity that depends on the sample alone, so it is what the batch
        path (:func:`tools.batch.detect_block`) computes for a
        whole block at once; it must equal ``sqrt(ax*ax + ay*ay + az*az)``
        evaluated in that order, bit for bit.

        The stages, in order: the clock, the orientation
        (:meth:`_orient`), the gait activity (:meth:`_track_activity`), the
        warm-up (:meth:`_warm_up`), the kinematics (:meth:`_kinematics`:
        tilt, rates, vertical velocity, free fall), the windows over the
        recent past (:meth:`_windows`), the stumble rules (:data:`STUMBLE_RULES`),
        the landings (:meth:`_follow_landings`) and, after a fall, recovery
        or escalation (:meth:`_after_fall`).
        """
        # The clock. One NaN would poison every filter for good; a timestamp
        # that does not advance cannot be integrated. Such a sample is not
        # seen at all (the monitor rejects both before they get here;
        # replayed files may not): NaN fails every comparison, inf makes
        # the sum non-finite.
        t_prev = self._t_prev
        if not (math.isfinite(amag + gx + gy + gz + t) and (t_prev is None or t > t_prev)):
            return NO_DETECTIONS
        nominal = self._nominal_s
        if t_prev is None:
            self._t_start = t
            dt = nominal
        else:
            dt = t - t_prev
            if dt > 5.0 * nominal:
                # A gap (lost samples) must not blow up the integrators: it
                # counts as one nominal period. What happened to the body in
                # the gap is unknown: no landing is confirmed across it.
                self._landings = []
                dt = nominal
        self._t_prev = t
        self.accel_g = amag
        self._orient(t, dt, ax, ay, az, gx, gy, gz, amag)
        self._track_activity(t, dt, amag)
        a_along = ax * self._rx + ay * self._ry + az * self._rz
        if not self._warm:
            self.still = (
                gx * gx + gy * gy + gz * gz < self._still_gyro2
                and abs(amag - 1.0) < self.config.still_accel_g
            )
            if not self._warm_up(t, a_along):
                # Not blind: landings are followed from the first sample,
                # against the provisional upright (:meth:`_warm_up`), and
                # judged later against the learned one. The stumble rules
                # wait: they need the 1 g level and the posture the
                # warm-up is still learning.
                self._measure_tilt(dt, self._ux, self._uy, self._uz)
                self._windows(t)
                fall = self._follow_landings(t, dt, amag)
                return NO_DETECTIONS if fall is None else [fall]
        self._kinematics(t, dt, a_along, gx, gy, gz, amag)
        self._windows(t)

        out: list[Detection] | None = None
        # Every stumble rule needs one of these: most samples pass none.
        if (
            self.down_mps > self._stumble_gate_mps
            or self.freefall_s >= self._freefall_min_s
            or self.tilt_gain_deg > self._rotation_gain_deg
        ):
            stumble = self._stumble(t)
            if stumble is not None:
                out = [stumble]
        fall = self._follow_landings(t, dt, amag)
        if fall is not None:
            out = [fall] if out is None else [*out, fall]
        if self._fallen_t is not None:
            escalation = self._after_fall(t, amag)
            if escalation is not None:
                out = [escalation] if out is None else [*out, escalation]
        return NO_DETECTIONS if out is None else out

    # ------------------------------------------------------------------ stages
    def _orient(
        self,
        t: float,
        dt: float,
        ax: float,
        ay: float,
        az: float,
        gx: float,
        gy: float,
        gz: float,
        amag: float,
    ) -> None:
        """Orientation: the gravity direction in the sensor frame, propagated
        by the gyro (``r' = r x w``) and pulled toward the *low-passed*
        accelerometer while that reads close to 1 g."""
        wx = gx * _D2R
        wy = gy * _D2R
        wz = gz * _D2R
        rx, ry, rz = self._rx, self._ry, self._rz
        if not self._have_gravity:
            if amag > 0.0:
                rx, ry, rz = ax / amag, ay / amag, az / amag
                self._have_gravity = True
                self._lx, self._ly, self._lz = rx, ry, rz
        else:
            nrx = rx + dt * (ry * wz - rz * wy)
            nry = ry + dt * (rz * wx - rx * wz)
            nrz = rz + dt * (rx * wy - ry * wx)
            rx, ry, rz = nrx, nry, nrz
            # Correct toward the *low-passed* accelerometer: over a gait cycle
            # the trunk's linear acceleration averages out and what remains is
            # gravity, whereas single samples during jogging rarely read 1 g.
            warming = t - self._t_start < self._warmup_s
            tau = self._gravity_tau_s * (0.2 if warming else 1.0)
            lx, ly, lz = self._lx, self._ly, self._lz
            kl = dt / self._accel_lowpass_s
            lx += kl * (ax - lx)
            ly += kl * (ay - ly)
            lz += kl * (az - lz)
            self._lx, self._ly, self._lz = lx, ly, lz
            lmag = math.sqrt(lx * lx + ly * ly + lz * lz)
            if lmag > 0.0 and abs(lmag - 1.0) < self._accel_gate_g:
                k = dt / tau if dt < tau else 1.0
                inv = k / lmag
                rx += lx * inv - k * rx
                ry += ly * inv - k * ry
                rz += lz * inv - k * rz
        n = math.sqrt(rx * rx + ry * ry + rz * rz)
        if n > 0.0:
            rx /= n
            ry /= n
            rz /= n
        self._rx, self._ry, self._rz = rx, ry, rz

    def _track_activity(self, t: float, dt: float, amag: float) -> None:
        """Gait vigour: a running mean of how far |a| strays from 1 g.

        Slow to medium walking stays below ~0.3 g, jogging reaches ~1 g; the
        rotation rule only applies to calm gait, where the trunk is steady.
        It runs from the first sample (a cumulative mean until
        ``activity_tau_s`` has passed), so it is at its true level when
        decisions start."""
        span = t - self._t_start + dt
        tau_act = self._activity_tau_s if span > self._activity_tau_s else span
        act = self.activity_g
        act += (abs(amag - 1.0) - act) * dt / tau_act
        self.activity_g = act
        # Landing vigour: how hard the feet land, from the first step on.
        push = 2.0 * (amag - 1.0) if amag > 1.0 else 0.0
        vig = self.vigour_g
        vig += (push - vig) * dt / self._vigour_tau_s
        self.vigour_g = vig

    def _warm_up(self, t: float, a_along: float) -> bool:
        """Learn "upright" and the 1 g level during the warm-up; True once it is over.

        Both come from the *motionless* samples of the warm-up when there are
        any (standing still before the belt starts): a body that has started
        to move is accelerating, and its mean vertical specific force over a
        part of a stride is not 1 g (the first steps of a jog read 1.07 g on
        average, which the velocity integrator then takes for a steady
        descent of 0.7 m/s), nor is its posture the one it stands in. A
        recording that starts in motion has no such samples: then the mean
        over the warm-up and its last gravity direction are the best there is.
        """
        cfg = self.config
        rx, ry, rz = self._rx, self._ry, self._rz
        if self._g_n == 0:
            self._first_rx, self._first_ry, self._first_rz = rx, ry, rz
        self._g_sum += a_along
        self._g_n += 1
        if self.still:
            self._still_g_sum += self.accel_g
            self._still_n += 1
            self._still_rx += rx
            self._still_ry += ry
            self._still_rz += rz
        self._g_est = self._g_sum / self._g_n
        if t - self._t_start < cfg.warmup_s:
            self._provisional_upright()
            return False
        self._warm = True
        # From here on tilt is measured from the learned upright: the tilt
        # gain and tilt speed gathered against the provisional one would
        # read the change of reference as a rotation of the trunk.
        self._tilt_window.clear()
        self._rotation_next_t = -math.inf
        self._have_tilt = False
        self.tilt_speed_dps = 0.0
        # Likewise "not lying lately", which only the stumble rules read:
        # they start with the learned upright, the landings' 50 deg margin
        # is what the provisional one is good for.
        self._risen_t = -math.inf
        if self._still_n > 0:
            # Standing still measured the level: it counts as a whole
            # averaging time's worth of data.
            self._g_est = self._lvl_mean = self._still_g_sum / self._still_n
            self._lvl_seen = cfg.gravity_level_tau_s
            self.level_known = True
        self._upright_from_warm_up(rx, ry, rz)
        return True

    def _upright_from_warm_up(self, rx: float, ry: float, rz: float) -> None:
        """Set the upright reference from what the warm-up has seen: the mean
        gravity direction of its motionless samples (standing still), else
        ``r`` (the caller's fallback); and the mounting's "up" instead when
        that disagrees with it by more than ``mounting_tolerance_deg``."""
        sx, sy, sz = self._still_rx, self._still_ry, self._still_rz
        n = math.sqrt(sx * sx + sy * sy + sz * sz)
        if self._still_n > 0 and n > 0.0:
            rx, ry, rz = sx / n, sy / n, sz / n
        hint = self._up_hint
        if hint is not None and (
            rx * hint[0] + ry * hint[1] + rz * hint[2]
            < math.cos(self.config.mounting_tolerance_deg * _D2R)
        ):
            # The warm-up did not see an upright wearer (started lying or
            # bending): trust the mounting's "up" instead.
            rx, ry, rz = hint
        self._ux, self._uy, self._uz = rx, ry, rz

    def _provisional_upright(self) -> None:
        """The provisional "upright" while the warm-up is still learning it,
        for the landings followed meanwhile: the posture standing still so
        far (the mean gravity direction of the motionless samples), else the
        mounting's "up" when it is known, else the first sample's gravity
        direction (with the same check against the mounting as at the end
        of the warm-up, :meth:`_upright_from_warm_up`).

        A landing needs the trunk within ``upright_before_deg`` (50 deg) of
        upright shortly before it, and lying after it judged against the
        learned upright once the warm-up is over: a belt worn 10-20 deg off
        its mounting's axis, or a first sample taken mid-stride, is well
        inside that margin. So a fall in the first second of a recording (a
        device switched on just before it, a dataset that starts 0.1 s
        before the onset) is judged like any other, instead of falling into
        a blind second."""
        hint = self._up_hint
        if hint is not None:
            self._upright_from_warm_up(hint[0], hint[1], hint[2])
        else:
            self._upright_from_warm_up(self._first_rx, self._first_ry, self._first_rz)

    def _level_block(self, t: float) -> None:
        """The sensor's 1 g along the vertical, from the vertical specific
        force of the past, a ``gravity_level_lag_s`` behind (0 while unknown).

        Over whole strides the vertical specific force averages to exactly
        the sensor's own 1 g (the body neither rises nor sinks on average).
        Staying a second behind keeps a fall in progress out of its own
        reference. The level seeded by standing still during the warm-up is
        followed with the time constant ``gravity_level_tau_s``; without
        that seed (a recording that starts in motion) everything seen so far
        is averaged until ``gravity_level_tau_s`` has been seen, so the
        first partial strides do not linger. Kept in blocks of
        ``_HISTORY_STEP_S``: :meth:`_kinematics` sums the samples, this
        closes a block and takes in the ones old enough."""
        cfg = self.config
        self._lvl_block_end = t + _HISTORY_STEP_S
        pending = self._lvl_pending
        pending.append((t, self._lvl_sum, self._lvl_dur))
        self._lvl_sum = 0.0
        self._lvl_dur = 0.0
        lag_edge = t - cfg.gravity_level_lag_s
        tau = cfg.gravity_level_tau_s
        while pending and pending[0][0] <= lag_edge:
            _, bsum, bdur = pending.popleft()
            seen = self._lvl_seen + bdur
            self._lvl_seen = seen
            weight = bdur / (seen if seen < tau else tau)
            self._lvl_mean += (bsum / bdur - self._lvl_mean) * weight
            if not self.level_known and seen >= cfg.gravity_level_min_s:
                self.level_known = True

    def _kinematics(
        self, t: float, dt: float, a_along: float, gx: float, gy: float, gz: float, amag: float
    ) -> None:
        """What the body does: trunk tilt and its speed, the upright
        reference, the horizontal and vertical angular rates, the vertical
        velocity and the time in free fall."""
        rx, ry, rz = self._rx, self._ry, self._rz
        # --- tilt from the upright reference --------------------------------
        ux, uy, uz = self._ux, self._uy, self._uz
        c = rx * ux + ry * uy + rz * uz
        c = 1.0 if c > 1.0 else (-1.0 if c < -1.0 else c)
        tilt = math.acos(c) * _R2D
        if self._have_tilt:
            ks = dt / self._tilt_speed_tau_s
            speed = self.tilt_speed_dps
            speed += ((tilt - self.tilt_deg) / dt - speed) * (ks if ks < 1.0 else 1.0)
            self.tilt_speed_dps = speed
        self._have_tilt = True
        self.tilt_deg = tilt
        if tilt < self._upright_max_tilt_deg:
            ku = dt / self._upright_tau_s
            ux += ku * (rx - ux)
            uy += ku * (ry - uy)
            uz += ku * (rz - uz)
            nu = math.sqrt(ux * ux + uy * uy + uz * uz)
            self._ux, self._uy, self._uz = ux / nu, uy / nu, uz / nu

        # --- rates: horizontal part only (turns are about the vertical) -----
        w_vert = gx * rx + gy * ry + gz * rz
        wh2 = gx * gx + gy * gy + gz * gz - w_vert * w_vert
        self.tilt_rate_dps = math.sqrt(wh2) if wh2 > 0.0 else 0.0
        self.yaw_rate_dps = w_vert

        # --- vertical velocity (positive up) --------------------------------
        # The sensor's own 1 g is not exactly 1 g (scale error, temperature),
        # and any bias here integrates into a phantom velocity: subtract a
        # slow average of the vertical specific force instead of 1 g.
        g_est = self._g_est
        a_vert = a_along - g_est
        self._lvl_sum += a_along * dt
        self._lvl_dur += dt
        if t >= self._lvl_block_end:
            self._level_block(t)
            if self.level_known:
                self._g_est = self._lvl_mean
        vz = self.vz_mps
        vz += (a_vert * G_MPS2 - vz / self._velocity_tau_s) * dt
        self.vz_mps = vz
        self.down_mps = -vz
        # Downward speed gained since the body last bore its weight (the
        # vertical specific force at or above 1 g): what an unsupported
        # pelvis picks up, which a phantom velocity (a level error) is not.
        if a_vert >= 0.0:
            self._supported_down = -vz
        self.unsupported_gain_mps = -vz - self._supported_down
        # How long the body has been going down without a pause.
        if vz < 0.0:
            self.descending_s += dt
        else:
            self.descending_s = 0.0

        if amag < self._freefall_g:
            self.freefall_s += dt
        elif self.freefall_s > 0.0:
            # A free fall just ended (the body met something): remember it.
            self._drop_s = self.freefall_s
            self._drop_end_t = t
            self.freefall_s = 0.0

    def _measure_tilt(self, dt: float, ux: float, uy: float, uz: float) -> float:
        """Trunk tilt (deg) of the gravity direction from the upright ``u``,
        and its smoothed rate of change; returns the tilt. For the warm-up:
        :meth:`_kinematics` does the same inline, a call per sample being
        measurable in the pure-Python build."""
        c = self._rx * ux + self._ry * uy + self._rz * uz
        c = 1.0 if c > 1.0 else (-1.0 if c < -1.0 else c)
        tilt = math.acos(c) * _R2D
        if self._have_tilt:
            ks = dt / self._tilt_speed_tau_s
            speed = self.tilt_speed_dps
            speed += ((tilt - self.tilt_deg) / dt - speed) * (ks if ks < 1.0 else 1.0)
            self.tilt_speed_dps = speed
        self._have_tilt = True
        self.tilt_deg = tilt
        return tilt

    def _windows(self, t: float) -> None:
        """The recent past: tilt gained within ``rotation_window_s`` (a
        sliding-window minimum in a monotonic deque, amortised O(1) per
        sample), and the pre-event history read at an impact (least tilt
        over ``upright_before_s``, greatest downward velocity over
        ``descent_window_s``), kept every ``_HISTORY_STEP_S`` only: tilt and
        velocity are smooth at that scale, and it halves the cost."""
        tilt = self.tilt_deg
        win = self._tilt_window
        if t >= self._rotation_next_t:
            # Kept every _ROTATION_STEP_S: a minimum missed between two
            # entries is within half a step of the trunk's motion (0.5 deg at
            # 200 deg/s) of the one kept, and it halves the cost at 200 Hz.
            self._rotation_next_t = t + _ROTATION_STEP_S
            while win and win[-1][1] >= tilt:
                win.pop()
            win.append((t, tilt))
            horizon = t - self._rotation_window_s
            while win[0][0] < horizon:
                win.popleft()
        low = win[0][1]
        self.tilt_gain_deg = tilt - (low if low < tilt else tilt)

        if t >= self._history_next_t:
            down = self.down_mps
            ptw = self._pre_tilt
            pdw = self._pre_down
            self._history_next_t = t + _HISTORY_STEP_S
            while ptw and ptw[-1][1] >= tilt:
                ptw.pop()
            ptw.append((t, tilt))
            horizon = t - self._upright_before_s
            while ptw[0][0] < horizon:
                ptw.popleft()
            while pdw and pdw[-1][1] <= down:
                pdw.pop()
            pdw.append((t, down))
            horizon = t - self._descent_window_s
            while pdw[0][0] < horizon:
                pdw.popleft()
            turn = self.tilt_speed_dps
            ptn = self._pre_turn
            while ptn and ptn[-1][1] <= turn:
                ptn.pop()
            ptn.append((t, turn))
            while ptn[0][0] < horizon:
                ptn.popleft()

    def _stumble(self, t: float) -> Detection | None:
        """A STUMBLE when the first of :data:`STUMBLE_RULES` that holds may
        fire: not after a fall, only if the trunk was recently not lying, and
        not within ``stumble_refractory_s`` of the last one unless the
        evidence has cleared in between (no rule held for
        ``stumble_clear_s``): a new loss of balance after the last one has
        settled is a new episode, worth its own report. (:meth:`step` calls
        this only when the body goes down faster than some rule needs, or
        free fall or a tilt gain is under way.)"""
        cfg = self.config
        for rule in STUMBLE_RULES:
            if rule.holds(self):
                cleared = t - self._evidence_t >= cfg.stumble_clear_s
                self._evidence_t = t
                if (
                    (t >= self._stumble_ready_t or cleared)
                    and self._fallen_t is None
                    and t - self._risen_t <= cfg.stumble_upright_within_s
                ):
                    self._stumble_ready_t = t + cfg.stumble_refractory_s
                    return Detection(DetectionKind.STUMBLE, t, rule.explain(self), self._figures())
                return None
        return None

    def _follow_landings(self, t: float, dt: float, amag: float) -> Detection | None:
        """Landings: a fall is a transition, upright shortly before an impact
        and lying for a while after it. Requiring the "upright before" keeps
        turning over in bed (already lying) from counting. Every contact above
        the candidate level is followed on its own (:meth:`_judge_landings`)."""
        tilt = self.tilt_deg
        if tilt < self._upright_before_deg:
            self._upright_t = t
        if tilt < self._stumble_upright_tilt_deg:
            self._risen_t = t  # not lying: a stumble may follow
        dev = abs(amag - 1.0) * dt
        self._dev_window.append((t, dev))
        landings = self._landings
        # A landing is a fall candidate when the trunk was upright shortly
        # before it, or when the body dropped onto it in free fall (off a
        # bed: lying before and after, but nobody lies down through the air).
        dropped = t - self._drop_end_t <= self._impact_window_s and self._drop_s >= self._drop_min_s
        if (
            amag > self._candidate_g
            and self._fallen_t is None
            and (t - self._upright_t <= self._upright_before_s or dropped)
        ):
            last = landings[-1] if landings else None
            if last is not None and t - last.t <= self._impact_window_s:
                # The same contact: keep its strongest sample as the peak.
                if amag > last.peak:
                    self._start_landing(last, t, amag, dt, tilt, self.down_mps)
            else:
                if tilt < self._lying_tilt_deg:
                    self._last_step_t = t  # a contact with the trunk up: a step
                landing = _Landing()
                landing.dropped = dropped
                self._start_landing(landing, t, amag, dt, tilt, self.down_mps)
                if len(landings) >= _MAX_LANDINGS:
                    # Keep the ones furthest along; forget the weakest.
                    landings.remove(min(landings, key=_peak))
                landings.append(landing)
        if not landings:
            return None
        # A new contact starts a new landing only impact_window_s after the
        # last one: so only the newest can still be gathering its impulse,
        # and only the oldest can be confirm_delay_s old, when the posture
        # after it starts to count. Until then there is nothing to judge.
        newest = landings[-1]
        since = t - newest.t
        if 0.0 < since <= self._impact_window_s:
            newest.impulse += dev
        if t - landings[0].t < self._confirm_delay_s:
            return None
        lying = tilt > self._lying_tilt_deg
        fall = self._judge_landings(t, dt, tilt, lying)
        if fall is None:
            return None
        self._impact_t = fall.t
        return Detection(
            DetectionKind.FALL,
            t,
            f"impact {fall.peak:.1f} g ({fall.impulse:.2f} g s), "
            f"{'lying' if lying else 'down'} {tilt:.0f} deg",
            self._figures()
            | {
                "impact_g": round(fall.peak, 2),
                "impulse_gs": round(fall.impulse, 3),
                "descent_mps": round(fall.descent, 2),
                "turn_dps": round(fall.turn, 0),
                "pre_tilt_deg": round(fall.pre_tilt, 1),
            },
        )

    def _after_fall(self, t: float, amag: float) -> Detection | None:
        """After a fall: standing up again ends the episode; lying still for
        ``no_recovery_s`` escalates it (NO_RECOVERY, once)."""
        cfg = self.config
        tilt = self.tilt_deg
        if tilt < cfg.upright_max_tilt_deg:
            if self._upright_since is None:
                self._upright_since = t
            elif t - self._upright_since >= 2.0:
                # Back on their feet: the episode is over.
                self._fallen_t = None
                self._still_since = None
        else:
            self._upright_since = None
        wh = self.tilt_rate_dps
        lying = tilt > cfg.lying_tilt_deg
        still = wh < cfg.still_gyro_dps and abs(amag - 1.0) < cfg.still_accel_g
        if lying and still and abs(self.yaw_rate_dps) < cfg.still_gyro_dps:
            if self._still_since is None:
                self._still_since = t
            elif not self._no_recovery_sent and t - self._still_since >= cfg.no_recovery_s:
                self._no_recovery_sent = True
                still_s = t - self._still_since
                # still_s: how long the wearer has lain still, the figure the
                # caregiver's story tells ("lying still: yes, 10 s or more").
                return Detection(
                    DetectionKind.NO_RECOVERY,
                    t,
                    f"lying still {still_s:.0f} s after a fall",
                    self._figures() | {"still_s": round(still_s, 1)},
                )
        else:
            self._still_since = None
        return None

    def _start_landing(
        self, landing: _Landing, t: float, amag: float, dt: float, tilt: float, down: float
    ) -> None:
        cfg = self.config
        landing.t = t
        landing.peak = amag
        # Impulse: the window before the peak (peak included) now, the
        # window after it as the samples come in.
        since = t - cfg.impact_window_s - 0.5 * dt
        landing.impulse = sum(d for ts, d in self._dev_window if ts >= since)
        ptw = self._pre_tilt
        pdw = self._pre_down
        landing.pre_tilt = min(ptw[0][1], tilt) if ptw else tilt
        landing.descent = max(pdw[0][1], down) if pdw else down
        ptn = self._pre_turn
        turn = self.tilt_speed_dps
        landing.turn = max(ptn[0][1], turn) if ptn else turn
        landing.not_lying_s = 0.0
        landing.not_down_s = 0.0

    def _judge_landings(self, t: float, dt: float, tilt: float, lying: bool) -> _Landing | None:
        """Judge the landings old enough to judge (the oldest ones, in time
        order; the younger ones wait, not visited); return the one that a
        fall is confirmed from (and forget them all), or None."""
        landings = self._landings
        delay = self._confirm_delay_s
        cfg = self.config
        keep: list[_Landing] = []
        for i, landing in enumerate(landings):
            since = t - landing.t
            if since < delay:
                keep.extend(landings[i:])
                break
            firm = landing.peak > cfg.impact_g and landing.impulse >= cfg.impact_impulse_gs
            hard = (
                firm
                and landing.peak > cfg.hard_impact_g
                and landing.impulse > cfg.hard_impact_impulse_gs
                and landing.descent > cfg.hard_descent_mps
            )
            if not lying or (tilt <= landing.pre_tilt + cfg.lying_rise_deg and not landing.dropped):
                landing.not_lying_s += dt
            if tilt <= cfg.hard_down_tilt_deg:
                landing.not_down_s += dt
            if landing.not_lying_s > cfg.confirm_upright_max_s and not (
                hard and landing.not_down_s <= cfg.confirm_upright_max_s
            ):
                continue  # back up (or never down): not a fall, or a recovered one
            if self._last_step_t - landing.t > cfg.stepping_after_s:
                continue  # still stepping well after it: the gait went on
            if not (firm or hard or landing.dropped) and (
                landing.turn < cfg.soft_min_turn_dps and landing.descent < cfg.soft_min_descent_mps
            ):
                continue  # a soft landing reached under control: lying down, not falling
            if since >= (cfg.confirm_window_s if firm else cfg.soft_confirm_s):
                self._landings = []
                self._fallen_t = t
                self._still_since = None
                self._upright_since = None
                self._no_recovery_sent = False
                return landing
            keep.append(landing)
        self._landings = keep
        return None

    def _figures(self) -> dict[str, float]:
        return {
            "tilt_deg": round(self.tilt_deg, 1),
            "tilt_rate_dps": round(self.tilt_rate_dps, 1),
            "vz_mps": round(self.vz_mps, 3),
            "accel_g": round(self.accel_g, 3),
            "freefall_s": round(self.freefall_s, 3),
        }


class _Landing:
    """One impact candidate and what has been seen since."""

    __slots__ = (
        "descent",
        "dropped",
        "impulse",
        "not_down_s",
        "not_lying_s",
        "peak",
        "pre_tilt",
        "t",
        "turn",
    )

    def __init__(self) -> None:
        self.t = 0.0
        self.peak = 0.0
        self.impulse = 0.0
        """Integral of | |a| - 1 g | x dt within impact_window_s of the peak."""
        self.pre_tilt = 0.0
        """Least tilt in the upright_before_s before the peak."""
        self.descent = 0.0
        """Greatest downward velocity in the descent_window_s before the peak."""
        self.turn = 0.0
        """Greatest rate (deg/s) at which the trunk left upright in that window."""
        self.dropped = False
        """The body met this contact at the end of a free fall."""
        self.not_lying_s = 0.0
        self.not_down_s = 0.0


def _peak(landing: _Landing) -> float:
    return landing.peak


def _normalised(v: tuple[float, float, float]) -> tuple[float, float, float]:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if n == 0.0:
        raise ValueError("the up vector must not be zero")
    return (v[0] / n, v[1] / n, v[2] / n)
