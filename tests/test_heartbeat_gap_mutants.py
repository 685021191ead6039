"""The heartbeat-gap FAULT (:meth:`firmware.safety.SafetyController._hold`), by behaviour.

Hand mutants of ``_hold`` and of what it touches, each run against ``tests/test_safety.py``,
``tests/test_safety_recovery.py``, ``tests/test_demo_and_replay.py`` and this file. Those the
first three let live, and what kills them here:

* ``t - last >= hold_s * HOLD_MARGIN`` turned ``>``: a gap of exactly the limit
  (:func:`test_a_gap_of_exactly_the_limit_faults`, on exact binary times);
* the arming stamped with the press's ``now`` instead of the edge clock
  (:func:`test_the_first_edge_is_measured_from_the_arming_on_the_edge_clock`);
* ``FaultKind.HEARTBEAT_GAP`` in the CONTACT class (the walker told to pull the safety key
  of a relay that did stop the belt), and in ``RESTART_MAY_CURE`` (a restart for a loop that
  is alive, its FAULT and alert sent twice).

And a defect found in review, fixed with its test: the first edge after an arming was not
measured (``_last_hold_at = None``), so a loop that stalled between the reset press that armed
and its first edge, while the walker let go after the chirp, left the state ARMED over a latch
that never closed, and the next press, a call for help's first, closed it and started the
belt (:func:`test_a_stall_between_the_arming_and_its_first_edge_faults`).

Killed by the tests beside these: a bound of twice the hold, the edge sent after the fault,
no return after it, the fault entered without releasing or announcing, another fault kind,
the edge clock replaced by ``now``, ``_last_hold_at`` never updated or never reset on arming,
the gap measured under static drive (no hold time), and the fault without
``_distrust_the_data`` (``test_safety.py``'s stall test sees STANDBY too soon; asserted here
too, on exact times).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.clock import SimClock
from core.samples import ImuSample
from firmware.config import SafetyConfig
from firmware.detection.base import Detection
from firmware.safety import (
    HOLD_MARGIN,
    FaultClass,
    Faulted,
    FaultKind,
    SafetyController,
    SafetyState,
    SensorLimits,
)
from hal.gpio import GpioBuzzer, GpioRelay
from hal.interfaces import Imu
from sim.pins import ClockedMockFactory
from tests.app_support import Rig, Standing, make_rig


def _stall_after_arming(rig: Rig, stall_s: float) -> None:
    """The first read after the controller arms takes ``stall_s``; the walker lets go of the
    button halfway through it (after the chirp, before any heartbeat edge)."""
    monitor = rig.app.monitor
    read = monitor.pacing.read
    done = False

    def stalled(imu: Imu) -> Sequence[ImuSample]:
        nonlocal done
        if not done and rig.app.controller.state is SafetyState.ARMED:
            done = True
            rig.clock.advance(stall_s / 2)
            rig.button.up()
            rig.clock.advance(stall_s / 2)
        return read(imu)

    monitor.pacing.read = stalled  # type: ignore[method-assign]


def test_a_stall_between_the_arming_and_its_first_edge_faults(tmp_path: Path) -> None:
    """The press that armed is let go before the first heartbeat edge (the loop stalled right
    after it): the latch never closed. ARMED over that open latch, the next press of the
    button, the first of a call for help, closes it and starts the belt, and without the
    contact read back nothing says so. The first edge is measured from the arming, as every
    later one from the edge before it: a FAULT, and no press starts the belt."""
    rig = make_rig(tmp_path, relay_sense_wired=False)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    hold_s = rig.hardware.hold_s  # type: ignore[attr-defined]
    _stall_after_arming(rig, 4 * hold_s)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 5.0)  # held for the chirp; let go during the stall
    rig.run_for(1.0)
    controller = rig.app.controller
    armed = [t for t in controller.transitions if t.state is SafetyState.ARMED]
    assert len(armed) == 1  # the press armed
    assert rig.hardware.history == []  # the latch never closed
    fault = controller.transitions[-1]
    assert rig.state == "FAULT" and fault.cause == Faulted(FaultKind.HEARTBEAT_GAP)
    assert fault.source is SafetyState.ARMED
    assert "after the reset armed" in fault.reason, fault.reason
    assert not rig.app.gpio.relay.holding
    # No restart for it: the loop is alive and the fault clears on healthy data (a restart
    # would only send the FAULT and its alert again).
    assert not rig.app.monitor.restart_may_cure
    now = rig.clock.monotonic()
    for k in range(3):  # three quick presses: help
        rig.button.press_at(now + 0.5 * k, now + 0.5 * k + 0.2)
    rig.run_for(2.0)
    assert rig.hardware.history == []  # never closed: no press started the belt


class _Edges:
    """The controller on a real relay driver over mock pins, its edge clock set by hand: the
    gaps between heartbeat edges are chosen exactly (binary fractions of a 0.25 s hold)."""

    HOLD_S = 0.25

    def __init__(self) -> None:
        self.clock = SimClock()
        self.relay = GpioRelay(17, ClockedMockFactory(self.clock), "heartbeat")
        self.edge_t = 0.0
        self.standing = Standing()
        self.t = 0.0
        self.safety = SafetyController(
            relay=self.relay,
            buzzer=GpioBuzzer(18, ClockedMockFactory(self.clock)),
            detector=_NoDetector(),
            emit=lambda event: None,
            config=SafetyConfig(worn_check=False),
            limits=SensorLimits(accel_g=8.0, gyro_dps=1000.0),
            sample_rate_hz=200.0,
            device_id="tm-test",
            heartbeat_hold_s=self.HOLD_S,
            edge_clock=lambda: self.edge_t,
        )
        self.safety.start(0.0)

    def wake(self, edge_t: float, now: float | None = None) -> None:
        """One wake: two samples up to ``now`` (default ``edge_t``), its edge at ``edge_t``."""
        now = edge_t if now is None else now
        batch = []
        for t in (max(self.t + 0.001, now - 0.005), now):
            batch.append(ImuSample(t, *self.standing.at(t)))
        self.t = now
        self.edge_t = edge_t
        self.safety.on_samples(batch, now)

    def armed_at(self, t: float, now: float | None = None) -> None:
        """Healthy wakes 10 ms apart up to ``t``, then a reset press that arms at ``t`` on the
        edge clock, told ``now`` (default ``t``)."""
        wake = 0.01
        while wake < t:
            self.wake(wake)
            wake += 0.01
        self.edge_t = t
        now = t if now is None else now
        self.safety.on_button(now - 0.1, now)
        assert self.safety.state is SafetyState.ARMED


class _NoDetector:
    def update(self, sample: ImuSample) -> Sequence[Detection]:
        return ()

    def reset(self) -> None:
        pass


def test_a_gap_of_exactly_the_limit_faults() -> None:
    """The hold timer is active for less than its time after its last edge (the wiring
    guide's half-open window), and the real hold is known only to its tolerance: an edge due
    exactly seven eighths of the configured hold after the last one (:data:`HOLD_MARGIN`) may
    come to a latch that has let go. Kills ``>=`` turned ``>`` (and a bound of the whole hold,
    or twice it)."""
    assert HOLD_MARGIN == 0.875  # the times below are exact in binary for it
    edges = _Edges()
    edges.armed_at(1.0)
    edges.wake(1.125)
    assert edges.safety.state is SafetyState.ARMED and edges.relay.holding
    edges.wake(1.125 + 0.21875)
    assert edges.safety.state is SafetyState.FAULT
    assert edges.safety.fault_kind is FaultKind.HEARTBEAT_GAP
    assert "no heartbeat for 219 ms, against the relay's 250 ms hold" in edges.safety.reason
    assert "(219 ms with its tolerance)" in edges.safety.reason, edges.safety.reason
    assert not edges.relay.holding
    # The walker hears the stall's words ("wait, then press again"), not the relay's ("may not
    # stop the belt: pull the safety key"): the relay did stop it.
    assert edges.safety.fault_class is FaultClass.STALL
    # The data before the gap no longer counts toward "IMU healthy": STANDBY, and a reset,
    # only after healthy_before_arm_s of good data from the fault on.
    edges.wake(1.34375 + 0.01)
    assert edges.safety.state is SafetyState.FAULT


def test_a_gap_just_short_of_the_limit_sends_its_edge() -> None:
    """A gap a sixty-fourth of a second short of the limit is healthy: the edge is sent and
    the walk goes on (a check that faulted early would stop healthy walks)."""
    edges = _Edges()
    edges.armed_at(1.0)
    edges.wake(1.125)
    edges.wake(1.125 + 0.21875 - 1 / 64)
    assert edges.safety.state is SafetyState.ARMED and edges.relay.holding


def test_the_first_edge_is_measured_from_the_arming_on_the_edge_clock() -> None:
    """The arming is stamped by the edge clock, as the edges are, not by the ``now`` the press
    came with (read earlier in the iteration): a first edge an eighth of a second after the
    arming is healthy however stale that ``now``; one a hold time after the arming faults."""
    stale = _Edges()
    stale.armed_at(1.0, now=0.75)
    stale.wake(1.125)
    assert stale.safety.state is SafetyState.ARMED and stale.relay.holding
    late = _Edges()
    late.armed_at(1.0)
    late.wake(1.25)
    assert late.safety.fault_kind is FaultKind.HEARTBEAT_GAP
    assert "after the reset armed" in late.safety.reason, late.safety.reason
    assert not late.relay.holding
