"""The demo's "clock set": its loop stamps events from the demo's simulated wall clock,
marked set, and its courier stamps its own (a caregiver's ``closed``) judging that clock the
same way. Before, the courier asked the host, and in the demo's container (no network time)
every acknowledgement said "the treadmill's clock was not set" beside events that did not.

On a real Mosquitto, the demo's own app (:func:`launcher.demo.demo_app`) with its courier on a
thread, so the host's clock can be made to say "not set" as the container's does."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from core.clock import RealClock, SimClock
from core.protocol.commands import Ack, CommandName, encode_command
from core.protocol.events import EventType
from core.protocol.messages import ReplyMessage
from core.protocol.payloads import decode_as
from core.protocol.topics import Topics
from core.wallclock import SystemWallClock
from firmware.app import SIMULATED_COURIER_START_S
from firmware.config import SafetyConfig
from firmware.link.supervisor import ThreadCourier
from firmware.storage.events import StoredEvent
from launcher import demo
from sim.backends import simulated_hardware
from tests.app_support import Rig, Standing, _open_rigs, close_rigs, pump_link_until  # noqa: F401 - fixture
from tests.mqtt_helpers import WAIT, config_for, subscriber
from tools.broker import Mosquitto
from tools.demo_speed import demo_wall


def _demo_rig(tmp_path: Path, broker: Mosquitto) -> Rig:
    """The demo's monitor on a standing walker, reporting to ``broker``, its courier ready."""
    config = demo.demo_config(tmp_path / "device.db")
    # the worn check off, as the rigs have it: it needs seconds of a body before the first arming
    config = dataclasses.replace(
        config, mqtt=config_for(broker), safety=SafetyConfig(worn_check=False)
    )
    clock = SimClock()
    sim = simulated_hardware(config.imu, config.gpio, clock, Standing())
    app = demo.demo_app(config, clock, sim, courier=ThreadCourier)
    app.start()
    rig = Rig(app, clock, sim)
    _open_rigs.append(rig)  # closed while the broker still runs (the mosquitto fixture)
    assert pump_link_until(
        app.link, lambda: app.link.storage_ok is not None, timeout=SIMULATED_COURIER_START_S
    )
    return rig


def _stored(rig: Rig, kind: EventType) -> list[StoredEvent]:
    return [s for s in rig.app.stored_events() if s.event.type is kind]


def test_a_caregiver_s_acknowledgement_in_the_demo_is_not_flagged_clock_not_set(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the demo's container: no network time, so the host's clock says "not set"
    monkeypatch.setattr(SystemWallClock, "synchronized", lambda self: False)
    rig = _demo_rig(tmp_path, mosquitto)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    rig.press_reset()
    assert rig.state == "ARMED"
    now = rig.clock.monotonic()
    for k in range(3):  # three presses: a call for help, an incident a caregiver closes
        rig.button.press_at(now + 0.35 * k, now + 0.35 * k + 0.15)
    rig.run_for(2.0)
    assert pump_link_until(rig.app.link, lambda: bool(_stored(rig, EventType.HELP)))
    (help_,) = _stored(rig, EventType.HELP)
    assert help_.event.incident is not None and not help_.event.wall_unsynced  # the loop's

    topics = Topics(config_for(mosquitto).topic_prefix, rig.app.config.device.id)
    with subscriber(mosquitto, [topics.reply]) as sub:
        ack = Ack(incident=help_.event.incident, by="Ann", via="dashboard")
        sub.client.publish(topics.command("ack"), encode_command(ack, "ack-1"), qos=1)
        assert sub.wait(
            lambda: any(
                r.command == CommandName.ACK and r.request_id == "ack-1"
                for r in (decode_as(ReplyMessage, m.payload) for m in sub.messages)
            )
        )
    assert pump_link_until(rig.app.link, lambda: bool(_stored(rig, EventType.CLOSED)), WAIT)
    (closed,) = _stored(rig, EventType.CLOSED)
    assert closed.event.by == "Ann"
    # the courier stamped it, judging the demo's clock as the loop does
    assert not closed.event.wall_unsynced


def test_the_demos_stamp_the_host_s_time_at_any_speed() -> None:
    """At ``--speed 4`` the demos stamped their events on the sped-up clock, ahead of the
    host's by three times the time elapsed: the dashboard's incident page said "Since
    13:28:16" (the service's receipt) over its first step at 13:28:57 (the monitor's stamp).
    What people read is the host's time; the walk's timing stays on the fast clock."""
    fast = RealClock(100_000.0)
    wall = demo_wall(fast)
    before = dt.datetime.now(dt.UTC)
    while fast.monotonic() < 3600.0:  # an hour of the walk: 36 ms of the host's
        pass
    stamped = wall.now()
    assert stamped - dt.datetime.now(dt.UTC) < dt.timedelta(minutes=1)  # was an hour ahead
    assert stamped >= before
    assert wall.synchronized()
    offset = wall.offset()
    while fast.monotonic() < 7200.0:
        pass
    assert wall.offset() == offset  # no step for a session to correct its times by


def test_the_demos_wall_clock_follows_a_simulated_clock() -> None:
    """Tests run the demos on a simulated clock: their stamps keep the walk's time."""
    sim = SimClock()
    wall = demo_wall(sim)
    start = wall.now()
    sim.advance(90.0)
    assert wall.now() - start == dt.timedelta(seconds=90)
