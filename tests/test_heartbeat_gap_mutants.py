"""The heartbeat-gap FAULT (:meth:`firmware.safety.SafetyController._hold`), by behaviour.

Each test here killed a hand mutant of ``_hold`` or of what it touches that the tests beside
it (``tests/test_safety.py``, ``tests/test_safety_recovery.py``,
``tests/test_demo_and_replay.py``) let live, or shows a defect found in review:

* the first edge after arming is measured from the arming: a loop that stalled between the
  reset press that armed and its first edge, while the walker let go, left the state ARMED
  over a latch that never closed, and the next press (a call for help's first) closed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.samples import ImuSample
from firmware.safety import Faulted, FaultKind, SafetyState
from hal.interfaces import Imu
from tests.app_support import Rig, make_rig


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
    now = rig.clock.monotonic()
    for k in range(3):  # three quick presses: help
        rig.button.press_at(now + 0.5 * k, now + 0.5 * k + 0.2)
    rig.run_for(2.0)
    assert rig.hardware.history == []  # never closed: no press started the belt
