"""The safety controller: an explicit state machine that owns relay and buzzer.

States::

    STARTING ──healthy IMU──► STANDBY ──local reset──► ARMED
                                 ▲                      │ detection
                                 │                      ▼
          FAULT ──healthy again──┘   TRIPPED ◄──────────┘
            ▲                          │ local reset (healthy IMU)
            └── any fault, any state   └────────────────► ARMED

The relay is held only in ARMED, and only for a batch that passed every
check: each healthy batch calls :meth:`Relay.hold` once (one heartbeat edge).
Everything else — a detection, IMU silence, frozen or impossible data, FIFO
overflow, a detector exception — releases it on the spot, before the next
sample is looked at. Arming needs a local button press that happened after
the trip, with the IMU healthy for a while; there is no other way in.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from core.protocol.events import Event, EventType
from core.samples import ImuSample
from firmware.config import SafetyConfig
from firmware.detection.base import TRIPPING_KINDS, Detection, DetectionKind, Detector
from hal.errors import ImuBusError, ImuError, ImuFifoOverflowError
from hal.interfaces import Buzzer, Relay

log = logging.getLogger(__name__)


class SafetyState(StrEnum):
    STARTING = "STARTING"
    STANDBY = "STANDBY"
    ARMED = "ARMED"
    TRIPPED = "TRIPPED"
    FAULT = "FAULT"


_DETECTION_EVENTS = {
    DetectionKind.STUMBLE: EventType.STUMBLE,
    DetectionKind.FALL: EventType.FALL,
    DetectionKind.NO_RECOVERY: EventType.NO_RECOVERY,
}


@dataclass(frozen=True, slots=True)
class SensorLimits:
    """Largest magnitude the configured ranges can report; beyond is garbage."""

    accel_g: float
    gyro_dps: float


@dataclass(frozen=True, slots=True)
class Transition:
    state: SafetyState
    reason: str
    t: float


class SafetyController:
    """Decides, sample by sample, whether the treadmill may keep running.

    All methods run on the real-time thread; ``emit`` must not block (it is
    :meth:`firmware.sinks.EventDispatcher.submit`).
    """

    def __init__(
        self,
        *,
        relay: Relay,
        buzzer: Buzzer,
        detector: Detector,
        emit: Callable[[Event], None],
        config: SafetyConfig,
        limits: SensorLimits,
        sample_rate_hz: float,
        device_id: str,
        on_state: Callable[[str, str], None] | None = None,
    ) -> None:
        self._relay = relay
        self._buzzer = buzzer
        self._detector = detector
        self._emit = emit
        self._config = config
        self._limits = limits
        self._device_id = device_id
        self._on_state = on_state
        self._window: deque[ImuSample] = deque(
            maxlen=max(1, int(config.window_before_s * sample_rate_hz))
        )
        self.state = SafetyState.STARTING
        self.reason = "starting"
        self.since = 0.0
        self.transitions: deque[Transition] = deque(maxlen=256)
        self._last_good_t: float | None = None
        self._last_good_at: float | None = None
        self._healthy_since: float | None = None
        self._last_values: tuple[float, ...] | None = None
        self._frozen_since: float | None = None
        self._tripped_at = -math.inf
        self.samples_seen = 0
        self.bus_errors = 0
        self.last_detection: Detection | None = None

    # ----------------------------------------------------------------- inputs

    def start(self, now: float) -> None:
        """Begin in STARTING with the relay released."""
        self._relay.release()
        self._enter(SafetyState.STARTING, "starting", now)
        self._healthy_since = None
        self._emit(Event.now(EventType.START, self._device_id, now, self.state, "monitor started"))

    def on_samples(self, batch: Sequence[ImuSample], now: float) -> None:
        """Check and detect on each sample; hold the relay if the whole batch was good."""
        for sample in batch:
            problem = self._check(sample)
            if problem is not None:
                self._fault(problem, now)
                return
            self._window.append(sample)
            self.samples_seen += 1
            try:
                detections = self._detector.update(sample)
            except Exception as exc:
                log.exception("detector failed")
                self._fault(f"detector error: {type(exc).__name__}: {exc}", now)
                return
            for detection in detections:
                self._on_detection(detection, now)
        if not batch:
            self.on_idle(now)
            return
        self._last_good_at = now
        if self._healthy_since is None:
            self._healthy_since = now
        recovering = self.state in (SafetyState.STARTING, SafetyState.FAULT)
        if recovering and self._healthy_long_enough(now):
            self._enter(SafetyState.STANDBY, "IMU healthy; press reset to arm", now)
        if self.state is SafetyState.ARMED:
            self._relay.hold()
        self._buzzer.update(now)

    def on_idle(self, now: float) -> None:
        """A read returned nothing: fault once the silence exceeds the timeout."""
        last = self._last_good_at
        if last is None:
            last = self.since
        silence = now - last
        if silence > self._config.sample_timeout_s and self.state is not SafetyState.FAULT:
            self._fault(f"no IMU sample for {silence * 1000:.0f} ms", now)
        self._buzzer.update(now)

    def on_imu_error(self, error: ImuError, now: float) -> None:
        """Map a HAL error to the state machine; transient bus errors wait for the timeout."""
        if isinstance(error, ImuBusError):
            self.bus_errors += 1
            self.on_idle(now)
            return
        if isinstance(error, ImuFifoOverflowError):
            self._fault(f"IMU FIFO overflow: samples lost ({error})", now)
        else:
            self._fault(f"IMU error: {error}", now)

    def on_button(self, pressed_at: float, now: float) -> None:
        """A local reset press: arm when allowed, otherwise say why not."""
        if self.state not in (SafetyState.STANDBY, SafetyState.TRIPPED):
            log.warning("reset ignored in %s: %s", self.state, self.reason)
            return
        if pressed_at <= self._tripped_at:
            return  # pressed before the trip: not a reset of this trip
        if not self._healthy_long_enough(now):
            log.warning("reset ignored: IMU not healthy long enough")
            return
        previous = self.state
        self._enter(SafetyState.ARMED, f"armed by local reset from {previous}", now)
        self._buzzer.stop()
        self._buzzer.play("chirp", now)
        self._emit(Event.now(EventType.RESET, self._device_id, now, self.state, self.reason))

    def fail(self, reason: str, now: float) -> None:
        """Any unexpected error outside the controller: release and go to FAULT."""
        self._fault(reason, now)

    def stop(self, now: float, reason: str = "monitor stopped") -> None:
        self._relay.release()
        self._buzzer.stop()
        self._emit(Event.now(EventType.STOP, self._device_id, now, self.state, reason))

    # ---------------------------------------------------------------- helpers

    def _check(self, sample: ImuSample) -> str | None:
        ax, ay, az, gx, gy, gz = sample[1:]
        limit_a = self._limits.accel_g
        limit_g = self._limits.gyro_dps
        # ``not (a <= x <= b)`` is also true for NaN, which is exactly what we want.
        if not (
            -limit_a <= ax <= limit_a
            and -limit_a <= ay <= limit_a
            and -limit_a <= az <= limit_a
            and -limit_g <= gx <= limit_g
            and -limit_g <= gy <= limit_g
            and -limit_g <= gz <= limit_g
        ):
            return f"IMU data out of range: {tuple(round(v, 3) for v in sample[1:])}"
        if self._last_good_t is not None and not sample.t > self._last_good_t:
            return f"IMU timestamps not increasing ({sample.t:.6f} after {self._last_good_t:.6f})"
        values = sample[1:]
        if values == self._last_values:
            if self._frozen_since is None:
                self._frozen_since = self._last_good_t
            assert self._frozen_since is not None
            if sample.t - self._frozen_since >= self._config.frozen_after_s:
                return f"IMU data frozen for {sample.t - self._frozen_since:.2f} s"
        else:
            self._frozen_since = None
            self._last_values = values
        self._last_good_t = sample.t
        return None

    def _healthy_long_enough(self, now: float) -> bool:
        return (
            self._healthy_since is not None
            and self._last_good_at is not None
            and now - self._last_good_at <= self._config.sample_timeout_s
            and now - self._healthy_since >= self._config.healthy_before_arm_s
        )

    def _on_detection(self, detection: Detection, now: float) -> None:
        self.last_detection = detection
        tripping = detection.kind in TRIPPING_KINDS
        if tripping and self.state is SafetyState.ARMED:
            self._relay.release()
            self._tripped_at = now
            self._enter(SafetyState.TRIPPED, f"{detection.kind.value}: {detection.reason}", now)
        if tripping or detection.kind is DetectionKind.NO_RECOVERY:
            self._buzzer.play("alarm", now)
        window = tuple(self._window) if tripping else ()
        self._emit(
            Event.now(
                _DETECTION_EVENTS[detection.kind],
                self._device_id,
                now,
                self.state,
                detection.reason,
                figures=detection.figures,
                imu_window=window,
            )
        )

    def _fault(self, reason: str, now: float) -> None:
        self._relay.release()
        self._healthy_since = None
        self._last_values = None
        self._frozen_since = None
        if self.state is SafetyState.FAULT:
            return
        self._tripped_at = now
        self._enter(SafetyState.FAULT, reason, now)
        self._buzzer.play("fault", now)
        self._emit(Event.now(EventType.FAULT, self._device_id, now, self.state, reason))

    def _enter(self, state: SafetyState, reason: str, now: float) -> None:
        if state is not SafetyState.ARMED:
            self._relay.release()
        self.state = state
        self.reason = reason
        self.since = now
        self.transitions.append(Transition(state, reason, now))
        log.info("state %s: %s", state.value, reason)
        if self._on_state is not None:
            self._on_state(state.value, reason)
