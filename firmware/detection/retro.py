"""The streaming fall and stumble detector.

One waist IMU sample at a time, plain Python scalar arithmetic (no NumPy in
the per-sample path: on a Pi Zero a NumPy call on three numbers costs more
than the whole update). The detector knows the body rather than a mounting:

1. **Orientation.** It keeps the gravity direction *in the sensor frame*,
   propagated by the gyro and pulled gently toward the accelerometer when the
   accelerometer reads close to 1 g (a complementary filter). It never assumes
   which sensor axis points up: the first ``warmup_s`` seconds learn it, or
   the caller passes an ``up`` vector derived from a known mounting.
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
   down fast *and* the trunk has left upright, or moves down very fast, or is
   in free fall for longer than a jogging flight phase, or (during calm gait)
   the trunk suddenly rotates away from upright. FALL (confirmed) when
   the trunk was upright shortly before an impact and lies through the
   seconds after it (a brief rebound allowed); after a landing too soft to
   tell from lying down onto a bed, only a long lie confirms it.
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
        # Low-passed accelerometer (g), the filter's reference for gravity.
        self._lx, self._ly, self._lz = self._rx, self._ry, self._rz
        self.tilt_deg = 0.0
        self.tilt_rate_dps = 0.0
        self.vz_mps = 0.0
        self._g_est = 1.0
        self._g_sum = 0.0
        self._g_n = 0
        self.accel_g = 1.0
        self.freefall_s = 0.0
        self.activity_g = 0.0
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
        self._history_next_t = -math.inf
        self._stumble_ready_t = -math.inf
        self._upright_t = -math.inf
        self._risen_t = -math.inf
        # Any landing above this starts watching for a fall; a firm impact
        # (impact_g and impact_impulse_gs) is confirmed sooner than a soft one.
        self._candidate_g = min(self.config.impact_g, self.config.soft_impact_g)
        # Recent |a| - 1 g deviations (time, deviation x dt) for the impulse.
        self._dev_window: deque[tuple[float, float]] = deque(
            maxlen=int(self.config.impact_window_s * self.sample_rate_hz) + 2
        )
        # Landings (impacts) still in question, oldest first: each is judged
        # on what follows it, so a heel strike just before a fall cannot
        # hide the fall's own, softer landing.
        self._landings: list[_Landing] = []
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
        """
        cfg = self.config
        t_prev = self._t_prev
        # One NaN would poison every filter for good; a timestamp that does
        # not advance cannot be integrated. Such a sample is not seen at all
        # (the monitor rejects both before they get here; replayed files may
        # not). NaN fails every comparison, inf makes the sum non-finite.
        if not (math.isfinite(amag + gx + gy + gz + t) and (t_prev is None or t > t_prev)):
            return NO_DETECTIONS
        nominal = 1.0 / self.sample_rate_hz
        if t_prev is None:
            self._t_start = t
            dt = nominal
        else:
            dt = t - t_prev
            # A gap (lost samples) must not blow up the integrators: step one
            # nominal period. What happened to the body in the gap is unknown,
            # so no landing can be confirmed across it.
            if dt > 5.0 * nominal:
                dt = nominal
                self._landings = []
        self._t_prev = t

        self.accel_g = amag

        # --- orientation: propagate gravity with the gyro (r' = r x w) ----
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
            warming = t - self._t_start < cfg.warmup_s
            tau = cfg.gravity_tau_s * (0.2 if warming else 1.0)
            lx, ly, lz = self._lx, self._ly, self._lz
            kl = dt / cfg.accel_lowpass_s
            lx += kl * (ax - lx)
            ly += kl * (ay - ly)
            lz += kl * (az - lz)
            self._lx, self._ly, self._lz = lx, ly, lz
            lmag = math.sqrt(lx * lx + ly * ly + lz * lz)
            if lmag > 0.0 and abs(lmag - 1.0) < cfg.accel_gate_g:
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

        # Gait vigour: a running mean of how far |a| strays from 1 g. Slow to
        # medium walking stays below ~0.3 g, jogging reaches ~1 g; the rotation
        # rule below only applies to calm gait, where the trunk is steady. It
        # runs from the first sample (a cumulative mean until activity_tau_s
        # has passed), so it is at its true level when decisions start.
        span = t - self._t_start + dt
        tau_act = cfg.activity_tau_s if span > cfg.activity_tau_s else span
        act = self.activity_g
        act += (abs(amag - 1.0) - act) * dt / tau_act
        self.activity_g = act

        a_along = ax * rx + ay * ry + az * rz
        if not self._warm:
            self._ux, self._uy, self._uz = rx, ry, rz
            self._g_sum += a_along
            self._g_n += 1
            self._g_est = self._g_sum / self._g_n
            if t - self._t_start < cfg.warmup_s:
                return NO_DETECTIONS
            self._warm = True
            hint = self._up_hint
            if hint is not None and (
                rx * hint[0] + ry * hint[1] + rz * hint[2]
                < math.cos(cfg.mounting_tolerance_deg * _D2R)
            ):
                # The warm-up did not see an upright wearer (started lying or
                # bending): trust the mounting's "up" instead.
                self._ux, self._uy, self._uz = hint

        # --- tilt from the upright reference --------------------------------
        ux, uy, uz = self._ux, self._uy, self._uz
        c = rx * ux + ry * uy + rz * uz
        c = 1.0 if c > 1.0 else (-1.0 if c < -1.0 else c)
        tilt = math.acos(c) * _R2D
        if self._have_tilt:
            ks = dt / cfg.tilt_speed_tau_s
            speed = self.tilt_speed_dps
            speed += ((tilt - self.tilt_deg) / dt - speed) * (ks if ks < 1.0 else 1.0)
            self.tilt_speed_dps = speed
        self._have_tilt = True
        self.tilt_deg = tilt
        if tilt < cfg.upright_max_tilt_deg:
            ku = dt / cfg.upright_tau_s
            ux += ku * (rx - ux)
            uy += ku * (ry - uy)
            uz += ku * (rz - uz)
            nu = math.sqrt(ux * ux + uy * uy + uz * uz)
            self._ux, self._uy, self._uz = ux / nu, uy / nu, uz / nu

        # --- rates: horizontal part only (turns are about the vertical) -----
        w_vert = gx * rx + gy * ry + gz * rz
        wh2 = gx * gx + gy * gy + gz * gz - w_vert * w_vert
        wh = math.sqrt(wh2) if wh2 > 0.0 else 0.0
        self.tilt_rate_dps = wh

        # --- vertical velocity (positive up) --------------------------------
        # The sensor's own 1 g is not exactly 1 g (scale error, temperature),
        # and any bias here integrates into a phantom velocity: subtract a
        # slow average of the vertical specific force instead of 1 g.
        g_est = self._g_est
        a_vert = a_along - g_est
        self._g_est = g_est + a_vert * dt / cfg.gravity_level_tau_s
        vz = self.vz_mps
        vz += (a_vert * G_MPS2 - vz / cfg.velocity_tau_s) * dt
        self.vz_mps = vz
        down = -vz

        if amag < cfg.freefall_g:
            self.freefall_s += dt
        else:
            self.freefall_s = 0.0
        ff = self.freefall_s

        # Tilt gained within the last rotation_window_s: a sliding-window
        # minimum kept in a monotonic deque (amortised O(1) per sample).
        win = self._tilt_window
        while win and win[-1][1] >= tilt:
            win.pop()
        win.append((t, tilt))
        horizon = t - cfg.rotation_window_s
        while win[0][0] < horizon:
            win.popleft()
        gain = tilt - win[0][1]
        self.tilt_gain_deg = gain

        # Pre-event history, kept every _HISTORY_STEP_S only (tilt and
        # velocity are smooth at that scale; it halves the cost per sample).
        ptw = self._pre_tilt
        pdw = self._pre_down
        if t >= self._history_next_t:
            self._history_next_t = t + _HISTORY_STEP_S
            while ptw and ptw[-1][1] >= tilt:
                ptw.pop()
            ptw.append((t, tilt))
            horizon = t - cfg.upright_before_s
            while ptw[0][0] < horizon:
                ptw.popleft()
            while pdw and pdw[-1][1] <= down:
                pdw.pop()
            pdw.append((t, down))
            horizon = t - cfg.descent_window_s
            while pdw[0][0] < horizon:
                pdw.popleft()

        out: list[Detection] | None = None

        # --- stumble: pre-impact loss of balance ----------------------------
        # During calm gait the score looks at where the tilt is heading: a
        # trunk tipping over at 100 deg/s is 10 deg further a tenth of a
        # second later.
        tilt_ahead = tilt
        speed = self.tilt_speed_dps
        if speed > 0.0 and act < cfg.balance_extrapolate_max_activity_g:
            tilt_ahead += cfg.balance_extrapolate_s * speed
        reason = ""
        if down > cfg.stumble_velocity_mps and tilt > cfg.stumble_tilt_deg:
            reason = f"down {down:.2f} m/s, tilt {tilt:.0f} deg"
        elif (
            down > cfg.balance_min_velocity_mps
            and tilt > cfg.balance_min_tilt_deg
            and down * tilt_ahead > cfg.balance_score
            and act < cfg.balance_max_activity_g
        ):
            reason = f"loss of balance: down {down:.2f} m/s x tilt {tilt:.0f} deg"
            if tilt_ahead > tilt + 0.5:
                reason += f" (heading for {tilt_ahead:.0f})"
        elif down > cfg.stumble_fast_velocity_mps:
            reason = f"down {down:.2f} m/s"
        elif ff >= cfg.freefall_min_s:
            reason = f"free fall {ff * 1000:.0f} ms"
        elif (
            gain > cfg.rotation_gain_deg
            and tilt > cfg.rotation_tilt_deg
            and cfg.rotation_min_activity_g <= act < cfg.rotation_max_activity_g
        ):
            reason = (
                f"trunk rotated {gain:.0f} deg in {cfg.rotation_window_s:.1f} s to {tilt:.0f} deg"
            )
        if (
            reason
            and t >= self._stumble_ready_t
            and self._fallen_t is None
            and t - self._risen_t <= cfg.stumble_upright_within_s
        ):
            self._stumble_ready_t = t + cfg.stumble_refractory_s
            out = [Detection(DetectionKind.STUMBLE, t, reason, self._figures(wh))]

        # --- fall: upright, then an impact, then lying ------------------------
        # A fall is a transition: the trunk was upright shortly before the
        # impact and lies for a while after it. Requiring the "upright
        # before" keeps turning over in bed (already lying) from counting.
        if tilt < cfg.upright_before_deg:
            self._upright_t = t
        if tilt < cfg.stumble_upright_tilt_deg:
            self._risen_t = t  # not lying: a stumble may follow
        dev = abs(amag - 1.0) * dt
        self._dev_window.append((t, dev))
        landings = self._landings
        if (
            amag > self._candidate_g
            and self._fallen_t is None
            and t - self._upright_t <= cfg.upright_before_s
        ):
            last = landings[-1] if landings else None
            if last is not None and t - last.t <= cfg.impact_window_s:
                # The same contact: keep its strongest sample as the peak.
                if amag > last.peak:
                    self._start_landing(last, t, amag, dt, tilt, down)
            else:
                landing = _Landing()
                self._start_landing(landing, t, amag, dt, tilt, down)
                if len(landings) >= _MAX_LANDINGS:
                    # Keep the ones furthest along; forget the weakest.
                    landings.remove(min(landings, key=_peak))
                landings.append(landing)
        lying = tilt > cfg.lying_tilt_deg
        if landings:
            fall = self._judge_landings(t, dt, dev, tilt, lying)
            if fall is not None:
                self._impact_t = fall.t
                det = Detection(
                    DetectionKind.FALL,
                    t,
                    f"impact {fall.peak:.1f} g ({fall.impulse:.2f} g s), "
                    f"{'lying' if lying else 'down'} {tilt:.0f} deg",
                    self._figures(wh)
                    | {"impact_g": round(fall.peak, 2), "impulse_gs": round(fall.impulse, 3)},
                )
                out = [det] if out is None else [*out, det]

        # --- after a fall: recovery or escalation -----------------------------
        fallen_t = self._fallen_t
        if fallen_t is not None:
            if tilt < cfg.upright_max_tilt_deg:
                if self._upright_since is None:
                    self._upright_since = t
                elif t - self._upright_since >= 2.0:
                    # Back on their feet: the episode is over.
                    self._fallen_t = None
                    self._still_since = None
            else:
                self._upright_since = None
            still = wh < cfg.still_gyro_dps and abs(amag - 1.0) < cfg.still_accel_g
            if lying and still and abs(w_vert) < cfg.still_gyro_dps:
                if self._still_since is None:
                    self._still_since = t
                elif not self._no_recovery_sent and t - self._still_since >= cfg.no_recovery_s:
                    self._no_recovery_sent = True
                    det = Detection(
                        DetectionKind.NO_RECOVERY,
                        t,
                        f"lying still {t - self._still_since:.0f} s after a fall",
                        self._figures(wh),
                    )
                    out = [det] if out is None else [*out, det]
            else:
                self._still_since = None

        return NO_DETECTIONS if out is None else out

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
        landing.not_lying_s = 0.0
        landing.not_down_s = 0.0

    def _judge_landings(
        self, t: float, dt: float, dev: float, tilt: float, lying: bool
    ) -> _Landing | None:
        """Follow every landing still in question; return the one that a
        fall is confirmed from (and forget them all), or None."""
        cfg = self.config
        keep: list[_Landing] = []
        for landing in self._landings:
            since = t - landing.t
            if 0.0 < since <= cfg.impact_window_s:
                landing.impulse += dev
            if since < cfg.confirm_delay_s:
                keep.append(landing)
                continue
            firm = landing.peak > cfg.impact_g and landing.impulse >= cfg.impact_impulse_gs
            hard = (
                firm
                and landing.peak > cfg.hard_impact_g
                and landing.impulse > cfg.hard_impact_impulse_gs
                and landing.descent > cfg.hard_descent_mps
            )
            if not lying or tilt <= landing.pre_tilt + cfg.lying_rise_deg:
                landing.not_lying_s += dt
            if tilt <= cfg.hard_down_tilt_deg:
                landing.not_down_s += dt
            if landing.not_lying_s > cfg.confirm_upright_max_s and not (
                hard and landing.not_down_s <= cfg.confirm_upright_max_s
            ):
                continue  # back up (or never down): not a fall, or a recovered one
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

    def _figures(self, wh: float) -> dict[str, float]:
        return {
            "tilt_deg": round(self.tilt_deg, 1),
            "tilt_rate_dps": round(wh, 1),
            "vz_mps": round(self.vz_mps, 3),
            "accel_g": round(self.accel_g, 3),
            "freefall_s": round(self.freefall_s, 3),
        }


class _Landing:
    """One impact candidate and what has been seen since."""

    __slots__ = ("descent", "impulse", "not_down_s", "not_lying_s", "peak", "pre_tilt", "t")

    def __init__(self) -> None:
        self.t = 0.0
        self.peak = 0.0
        self.impulse = 0.0
        """Integral of | |a| - 1 g | x dt within impact_window_s of the peak."""
        self.pre_tilt = 0.0
        """Least tilt in the upright_before_s before the peak."""
        self.descent = 0.0
        """Greatest downward velocity in the descent_window_s before the peak."""
        self.not_lying_s = 0.0
        self.not_down_s = 0.0


def _peak(landing: _Landing) -> float:
    return landing.peak


def _normalised(v: tuple[float, float, float]) -> tuple[float, float, float]:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if n == 0.0:
        raise ValueError("the up vector must not be zero")
    return (v[0] / n, v[1] / n, v[2] / n)
