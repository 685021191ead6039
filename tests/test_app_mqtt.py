"""The whole monitor reporting to a real Mosquitto: what a caregiver sees, and what they cannot do.

The real-time loop runs on a simulated clock in the test thread; the MQTT
publisher runs on its own thread against a real broker. Waits are on
messages arriving (bounded as a safety net), never on time passing.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from core.clock import SimClock
from core.protocol.commands import COMMANDS
from core.protocol.events import EventType
from firmware.mqtt.commands import FLOOD_REFUSAL
from firmware.session.cues import Cue
from firmware.session.plan import Interval, Plan
from firmware.session.runner import SessionState, attach_session, detach_session
from firmware.storage.outbox import outbox_depth
from hal.buzzer_patterns import get_pattern
from launcher.demo import demo_config, run_session
from tests.app_support import (
    Heard,
    Rig,
    TripAt,
    TripsAt,
    close_rigs,
    make_rig,
    pump_link_until,
)
from tests.mqtt_helpers import WAIT, Subscriber, config_for, validate
from tools.broker import Mosquitto

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

DEVICE = "treadmill-1"

_PLAN = Plan(
    "silence", (Interval.of_seconds("backward", 30.0), Interval.of_seconds("forward", 30.0))
)
"""A guided session whose first cue ("walk backward") sounds as it starts."""


def tripped_rig(tmp_path: Path, broker: Mosquitto, **mqtt: Any) -> Rig:
    rig = make_rig(tmp_path, detector=TripAt(3.0), mqtt=config_for(broker, **mqtt))
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(2.0)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    return rig


def test_trip_reaches_the_caregiver_with_state_and_window(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/#"])
    try:
        rig = tripped_rig(tmp_path, mosquitto)
        assert sub.wait(lambda: any(b'"stumble"' in m.payload for m in sub.on("/event")))
        stumble = next(
            validate("event", m.payload) for m in sub.on("/event") if b'"stumble"' in m.payload
        )
        assert stumble["state"] == "TRIPPED"
        rig.run_for(10.0)  # the IMU around the trip follows it, 10 s later, in a window event
        assert sub.wait(lambda: any(b'"window"' in m.payload for m in sub.on("/event")))
        window = next(
            validate("event", m.payload) for m in sub.on("/event") if b'"window"' in m.payload
        )
        assert window["of"] == stumble["id"] and window["incident"] == stumble["incident"]
        assert window["recording"]["count"] > 100
        assert sub.wait(
            lambda: any(json.loads(m.payload)["state"] == "TRIPPED" for m in sub.on("/state"))
        )
        for message in sub.on("/state"):
            validate("state", message.payload)
    finally:
        sub.close()


def test_no_command_arms_or_starts_the_treadmill(tmp_path: Path, mosquitto: Mosquitto) -> None:
    rig = tripped_rig(tmp_path, mosquitto, command_burst=1000)  # every command answered
    assert rig.courier.reporter is not None
    assert rig.courier.reporter.wait_until(lambda s: s.ready, WAIT)
    names = [*COMMANDS, "arm", "rearm", "reset", "start", "resume", "run", "relay", "../arm"]
    payloads = [
        b"",
        b"{}",
        b'{"id":"x1"}',
        b'{"id":"x2","by":"Ann","event_id":"latest"}',
        b'{"state":"ARMED","relay":"closed"}',
        b"\xff\xfe garbage",
        b"[1,2,3]",
        b'"arm"',
        b"{" * 1000,
    ]
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/reply"])
    try:
        sent = 0
        for name in names:
            for payload in payloads:
                topic = f"retroguard/{DEVICE}/cmd/{name}"
                sub.client.publish(topic, payload, qos=1).wait_for_publish(WAIT)
                sent += 1
                rig.run_for(0.02)  # the loop keeps running while commands arrive
        # Every command under cmd/ with a single-level name is answered (a name with "/"
        # never matches the device's cmd/+ subscription, so it is simply never seen).
        answered = sent - len(payloads)
        # A silence is answered by the loop (its next iteration takes it): the loop keeps
        # running until every reply is in, or a silence that reached the link after the last
        # command's iteration (a loaded machine) would never be answered.
        deadline = time.monotonic() + WAIT  # a bound against hangs, not a timing
        while len(sub.on("/reply")) < answered:
            assert time.monotonic() < deadline, f"{len(sub.on('/reply'))} of {answered} replies"
            rig.run_for(0.02)
        for message in sub.on("/reply"):
            validate("reply", message.payload)
        rig.run_for(1.0)
    finally:
        sub.close()
    assert rig.state == "TRIPPED"
    assert not rig.hardware.contact_closed()
    assert rig.hardware.history[-1][1] is False
    assert not rig.app.gpio.relay.holding


def test_silence_command_stops_the_alarm_but_not_the_trip(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    rig = tripped_rig(tmp_path, mosquitto)
    assert rig.app.gpio.buzzer.pattern == "alarm"
    assert rig.courier.reporter is not None
    assert rig.courier.reporter.wait_until(lambda s: s.ready, WAIT)
    reply = _silence_over_mqtt(rig, mosquitto, "s1")
    assert reply["ok"] and reply["result"]["silence"] == "stopped"
    assert reply["result"]["pattern"] == "alarm"
    assert rig.app.gpio.buzzer.pattern is None
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()


def test_broker_restart_during_the_demo_session_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """The README demo's story with the broker restarted mid-walk: every event arrives once."""
    config = demo_config(tmp_path / "events.db")
    config = dataclasses.replace(config, mqtt=config_for(mosquitto))
    sub = Subscriber(
        mosquitto, [f"retroguard/{DEVICE}/event"], client_id="caregiver-1", persistent=True
    )
    restarted: list[float] = []

    def on_started(app: object, session: object, runner: object) -> None:
        def restart_once(monitor: object) -> None:
            now = app.clock.monotonic()  # type: ignore[attr-defined]
            if not restarted and now >= 30.0:  # between the stumble and the fall
                restarted.append(now)
                mosquitto.stop()
                mosquitto.start()

        app.monitor.on_iteration.append(restart_once)  # type: ignore[attr-defined]

    try:
        result = run_session(config, SimClock(), on_started=on_started)
        assert restarted, "the broker was never restarted"
        stored = [s.event.id for s in result.events]
        assert outbox_depth(config.storage.database).unsent == 0  # the broker has everything
        assert sub.wait(lambda: set(sub.event_ids()) >= set(stored))
        first_seen = list(dict.fromkeys(sub.event_ids()))
        assert first_seen == stored  # all of them, once each by id, in order
    finally:
        sub.close()


def test_a_command_flood_is_dropped_where_it_arrives(tmp_path: Path, mosquitto: Mosquitto) -> None:
    rig = tripped_rig(tmp_path, mosquitto, command_rate_per_s=1.0, command_burst=10)
    reporter = rig.courier.reporter
    assert reporter is not None and reporter.wait_until(lambda s: s.ready, WAIT)
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/reply"])
    try:
        for i in range(300):
            sub.client.publish(f"retroguard/{DEVICE}/cmd/ping", f'{{"id":"f{i}"}}', qos=0)
        sub.client.publish(
            f"retroguard/{DEVICE}/cmd/ping", b'{"id":"last"}', qos=1
        ).wait_for_publish(WAIT)

        # A drop happens in the device, where this subscriber hears nothing: if the last
        # command was dropped, only polling sees it (waiting on replies alone ran out WAIT).
        def ran() -> list[Any]:
            return [m for m in sub.on("/reply") if json.loads(m.payload)["ok"]]

        def refused() -> list[Any]:
            return [m for m in sub.on("/reply") if not json.loads(m.payload)["ok"]]

        assert sub.wait(lambda: reporter._budget.dropped + len(ran()) >= 301, poll_s=0.05)
        answered = len(ran())
        assert 10 <= answered < 100  # the burst, plus what a second of refill allows
        assert reporter._budget.dropped == 301 - answered
        # a few of the dropped ones are refused (said, not run), on a budget of their own:
        # the flood is not answered by a flood of replies
        assert sub.wait(lambda: len(refused()) == reporter._refusals.taken, poll_s=0.05)
        assert 1 <= reporter._refusals.taken < 100  # as the runs: the burst, and a trickle
        assert all(json.loads(m.payload)["error"] == FLOOD_REFUSAL for m in refused())
    finally:
        sub.close()
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()


def test_a_test_alarm_chirps_the_device_and_reaches_every_consumer(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    rig = tripped_rig(tmp_path, mosquitto)
    reporter = rig.courier.reporter
    assert reporter is not None and reporter.wait_until(lambda s: s.ready, WAIT)
    rig.app.gpio.buzzer.stop()  # the trip's alarm: silenced, so the chirp can be heard
    # The courier stamps the test event with the loop's last reported state; the stepped loop
    # may not have handed the TRIPPED report over yet.
    assert pump_link_until(rig.app.link, lambda: rig.courier.state == "TRIPPED")
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/reply", f"retroguard/{DEVICE}/event"])
    try:
        sub.client.publish(f"retroguard/{DEVICE}/cmd/test_alarm", b'{"id":"t1","by":"Ann"}', 1)
        assert sub.wait(lambda: any(b'"test"' in m.payload for m in sub.on("/event")))
        reply = validate("reply", sub.on("/reply")[0].payload)
        assert reply["ok"] and reply["result"] == {"test_alarm": "sent", "by": "Ann"}
        test = next(
            validate("event", m.payload) for m in sub.on("/event") if b'"test"' in m.payload
        )
        assert "Ann" in test["reason"] and test["state"] == "TRIPPED"
    finally:
        sub.close()
    rig.run_for(0.05)  # the loop picks the chirp up from the link
    assert rig.app.gpio.buzzer.pattern == "chirp"
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()  # and arms nothing


def _silence_over_mqtt(
    rig: Rig, broker: Mosquitto, request_id: str, **named: str
) -> dict[str, Any]:
    """A caregiver's ``silence`` (``named``: ``event_id`` / ``incident``) through the real
    broker and courier to the loop's link; the loop takes it at its next iteration and its
    answer is the reply, which this returns."""
    link = rig.app.link
    sub = Subscriber(broker, [f"retroguard/{DEVICE}/reply"])
    try:
        payload = json.dumps({"id": request_id, **named})
        sub.client.publish(f"retroguard/{DEVICE}/cmd/silence", payload, qos=1)
        assert pump_link_until(link, lambda: link.silence_requests > 0)
        assert not sub.on("/reply")  # no reply before the loop has looked at the buzzer
        rig.run_for(0.02)  # the loop takes it and answers (through the courier)
        assert link.silence_requests == 0
        assert sub.wait(lambda: len(sub.on("/reply")) >= 1)
        reply = validate("reply", sub.on("/reply")[0].payload)
    finally:
        sub.close()
    assert reply["request_id"] == request_id
    return reply


def test_a_silence_is_replied_to_by_the_courier_that_replaces_the_one_that_took_it(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """The courier that took a caregiver's ``silence`` went away (a crash, a hang) before the
    loop answered: the loop still stopped the alarm, but its answer was dropped with that
    courier and no reply ever came. Now the next courier gets the loop's recent answers and
    publishes the reply, under the command's request id."""
    rig = tripped_rig(tmp_path, mosquitto)
    assert rig.app.gpio.buzzer.pattern == "alarm"
    assert rig.courier.reporter is not None
    assert rig.courier.reporter.wait_until(lambda s: s.ready, WAIT)
    link, supervisor = rig.app.link, rig.app.supervisor
    assert supervisor is not None and supervisor.current is not None
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/reply"])
    try:
        sub.client.publish(f"retroguard/{DEVICE}/cmd/silence", json.dumps({"id": "s1"}), qos=1)
        assert pump_link_until(link, lambda: link.silence_requests > 0)
        supervisor.current.kill()  # the courier that took it is gone before the loop answers
        rig.run_for(0.02)  # the loop takes it, stops the alarm and answers: no courier now
        assert link.silence_requests == 0 and rig.app.gpio.buzzer.pattern is None
        deadline = time.monotonic() + WAIT  # a bound against hangs, not a timing
        while not sub.on("/reply"):  # the loop runs on while the next courier starts
            assert time.monotonic() < deadline, "no reply to the silence"
            rig.run_for(0.02)
        reply = validate("reply", sub.on("/reply")[0].payload)
    finally:
        sub.close()
    assert supervisor.starts == 2  # from the courier that replaced it
    assert reply["request_id"] == "s1" and reply["ok"]
    assert reply["result"]["silence"] == "stopped" and reply["result"]["pattern"] == "alarm"
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()  # and arms nothing


def test_a_silence_with_no_alarm_sounding_leaves_the_walkers_cue_and_a_later_alarm(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A caregiver's ``silence`` is for an alarm. Sent while no alarm sounds but a guided
    session's cue does (here the session's first, "walk backward"; the same holds for "slow
    the belt and hold the rail before you turn"), it stopped the cue — and the runner does not
    play a stopped cue again, so a walker walking backward, who cannot see a screen, lost it.
    Now the cue plays out, and the silence is used up: the trip that follows sounds its alarm
    in full until a second silence, which stops it as before. Nothing arms."""
    rig = make_rig(tmp_path, detector=TripAt(8.0), mqtt=config_for(mosquitto))
    reporter = rig.courier.reporter
    assert reporter is not None and reporter.wait_until(lambda s: s.ready, WAIT)
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED"
    config = rig.app.config
    rig.app.config = dataclasses.replace(
        config, session=dataclasses.replace(config.session, balance_check=False)
    )
    heard = Heard()
    runner = attach_session(rig.app, _PLAN, record=False, speaker=heard)
    runner.request("start")
    rig.run_for(0.05)
    buzzer = rig.app.gpio.buzzer
    assert buzzer.pattern == "cue_backward" and [c.cue for c in runner.cues] == [Cue.BACKWARD]
    cue_ends = rig.clock.monotonic() - 0.05 + get_pattern("cue_backward").period

    reply = _silence_over_mqtt(rig, mosquitto, "s1")
    assert reply["ok"] and reply["result"] == {
        "silence": "cue_left_playing",
        "pattern": "cue_backward",
    }
    rig.run_for(0.03)  # no alarm sounds, the cue goes on
    assert buzzer.pattern == "cue_backward"
    assert rig.app.link.silence_requests == 0  # used up, not kept for a later alarm
    rig.run_for(cue_ends - rig.clock.monotonic() + 0.05)
    assert buzzer.pattern is None  # played out in full, once
    assert [c.cue for c in runner.cues] == [Cue.BACKWARD]
    assert rig.state == "ARMED" and runner.state is SessionState.RUNNING

    rig.run_for(8.0 - rig.clock.monotonic() + 1.0)  # the trip: its alarm is not pre-silenced
    assert rig.state == "TRIPPED" and buzzer.pattern == "alarm"
    rig.run_for(2.0)
    assert buzzer.pattern == "alarm"

    assert _silence_over_mqtt(rig, mosquitto, "s2")["result"]["silence"] == "stopped"
    assert buzzer.pattern is None  # a silence during an alarm stops it, as always
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    assert not rig.app.gpio.relay.holding
    detach_session(rig.app, runner)


def test_a_late_silence_for_an_old_alarm_leaves_a_newer_one_sounding(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A caregiver silences the alarm of a first trip, but the silence reaches the device late:
    meanwhile the walker re-armed at the machine and tripped again. It used to stop whatever
    sounded — the second trip's alarm, which no caregiver had seen, and the buzzer calling
    people nearby went quiet. Now a silence naming the first trip's event (or its incident)
    keeps the newer alarm sounding and the reply says so, naming the alarm kept; one naming
    the newer event stops it. Nothing arms."""
    rig = make_rig(tmp_path, detector=TripsAt(3.0, 6.0), mqtt=config_for(mosquitto))
    reporter = rig.courier.reporter
    assert reporter is not None and reporter.wait_until(lambda s: s.ready, WAIT)
    buzzer = rig.app.gpio.buzzer
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(3.0 - rig.clock.monotonic() + 0.5)
    assert rig.state == "TRIPPED" and buzzer.pattern == "alarm"
    (first,) = [e.event for e in rig.app.stored_events() if e.event.type is EventType.STUMBLE]
    rig.run_for(1.0)
    rig.press_reset()  # the walker is up and walks again: the first incident is over
    assert rig.state == "ARMED"
    rig.run_for(6.0 - rig.clock.monotonic() + 0.5)
    assert rig.state == "TRIPPED" and buzzer.pattern == "alarm"
    trips = [e.event for e in rig.app.stored_events() if e.event.type is EventType.STUMBLE]
    second = trips[-1]
    assert second.id != first.id and second.incident != first.incident

    for n, named in enumerate(({"event_id": first.id}, {"incident": first.incident or ""})):
        reply = _silence_over_mqtt(rig, mosquitto, f"late-{n}", **named)
        assert reply["ok"] and reply["result"] == {
            "silence": "not_that_alarm",
            "pattern": "alarm",
            "event_id": second.id,
            "incident": second.incident,
        }
        assert buzzer.pattern == "alarm"  # the newer alarm calls on
    rig.run_for(1.0)
    assert buzzer.pattern == "alarm"

    reply = _silence_over_mqtt(rig, mosquitto, "now", event_id=second.id)
    assert reply["ok"] and reply["result"] == {
        "silence": "stopped",
        "pattern": "alarm",
        "event_id": second.id,
        "incident": second.incident,
    }
    assert buzzer.pattern is None
    reply = _silence_over_mqtt(rig, mosquitto, "again", event_id=second.id)
    assert reply["result"] == {"silence": "nothing_sounding"}
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    assert not rig.app.gpio.relay.holding


def test_a_silence_naming_a_malformed_alarm_is_refused_naming_the_field(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A silence whose event id or incident cannot be read is refused with the field named,
    and the alarm sounds on (nothing reaches the loop)."""
    rig = tripped_rig(tmp_path, mosquitto)
    assert rig.courier.reporter is not None
    assert rig.courier.reporter.wait_until(lambda s: s.ready, WAIT)
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/reply"])
    bad = [
        b'{"id":"b1","event_id":12}',
        b'{"id":"b2","event_id":"latest"}',
        b'{"id":"b3","incident":"XYZ"}',
        b'{"id":"b4","alarm":"all"}',
    ]
    try:
        for payload in bad:
            sub.client.publish(f"retroguard/{DEVICE}/cmd/silence", payload, qos=1)
        assert sub.wait(lambda: len(sub.on("/reply")) >= len(bad))
        replies = {
            r["request_id"]: r for r in (validate("reply", m.payload) for m in sub.on("/reply"))
        }
    finally:
        sub.close()
    assert not any(r["ok"] for r in replies.values())
    assert replies["b1"]["error"].startswith("event_id")
    assert replies["b2"]["error"].startswith("event_id")
    assert replies["b3"]["error"].startswith("incident")
    assert "alarm" in replies["b4"]["error"]
    rig.run_for(0.05)
    assert rig.app.link.silence_requests == 0 and rig.app.gpio.buzzer.pattern == "alarm"
