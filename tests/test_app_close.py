"""Shutting the monitor down: every step is attempted even when one fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.clock import SimClock
from core.protocol.events import EventType
from firmware.app import build_app
from firmware.link.supervisor import ThreadCourier
from sim.backends import simulated_hardware
from tests.app_support import close_rigs, make_config, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)


def test_an_imu_that_fails_to_close_keeps_nothing_from_the_courier(tmp_path: Path) -> None:
    """The IMU's close raised (a bus error putting the chip to sleep): before, everything
    after it was skipped — the records of the last moments never reached the courier's disk
    and the courier kept running — and a second close returned at once (from review)."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    app = rig.app
    assert rig.hardware.contact_closed()

    def bus_error() -> None:
        raise OSError("i2c: remote I/O error")

    app.imu.close = bus_error  # type: ignore[method-assign]
    with pytest.raises(OSError, match="remote I/O"):
        app.close()
    assert not rig.hardware.contact_closed()  # released first, as ever
    assert EventType.STOP in rig.events()  # the last records reached the disk
    courier = app.supervisor.current if app.supervisor is not None else None
    assert courier is not None and courier.wait(0)  # the courier was stopped, and is gone
    app.close()  # released already: a second call returns at once


def test_an_app_closed_before_it_started_closes_without_an_error(tmp_path: Path) -> None:
    """`run` builds the app, then attaches the session; when that fails (a control socket that
    cannot be made) it closes the app unstarted, and the close raised RuntimeError (joining the
    courier supervisor's thread, never started) over the reason."""
    config = make_config(tmp_path)
    clock = SimClock()
    sim = simulated_hardware(config.imu, config.gpio, clock)
    app = build_app(config, clock, imu=sim.imu_rig.imu, gpio=sim.gpio, courier=ThreadCourier)
    app.close()
    assert not sim.gpio.hardware.contact_closed()  # type: ignore[union-attr]
