"""The caregiver service's presence, end to end over a real Mosquitto.

Before, nothing told anyone the caregiver service was down: the device kept its alerts, but
the walker, Home Assistant and the self-test all looked healthy while a fall would page
nobody. The service now announces itself (retained ``online``, ``offline`` on a clean stop and
as its MQTT 5 Last Will); the device hears it, says so on its retained ``caregiver`` topic, and
its self-test fails in words while a service is expected and not online.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.protocol.messages import CaregiverPresence, CaregiverStatusMessage, ReceiptMessage
from core.protocol.payloads import caregiver_status_payload, decode_as, event_payload
from core.protocol.topics import Topics, caregiver_status_topic
from firmware.config import ConfigError, MqttConfig, parse_config
from firmware.mqtt import MqttReporter, caregiver
from firmware.mqtt.caregiver import (
    NOBODY_PAGED,
    RETAINED_SETTLE_S,
    UNHEARD_GRACE_S,
    CaregiverWatch,
    self_test_check,
)
from firmware.session.plan import resolve_plan
from firmware.session.runner import attach_session, detach_session
from tests.app_support import Heard, Rig, TripAt, close_rigs, make_rig, pump_link_until
from tests.caregiver_support import make_config as caregiver_config
from tests.caregiver_support import running_service
from tests.mqtt_helpers import WAIT, Subscriber, config_for, fall, validate
from tools.broker import Mosquitto, free_port, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"
PRESENCE = caregiver_status_topic("retroguard")


def _crash(service_ingestor: object) -> None:
    """What a crash or a pulled network cable does to the service's link: the connection ends
    with no DISCONNECT (paho's thread stopped first, so nothing more is sent)."""
    ingestor = service_ingestor
    client = ingestor.client  # type: ignore[attr-defined]
    client.loop_stop()
    client.socket().shutdown(socket.SHUT_RDWR)
    ingestor.client = None  # type: ignore[attr-defined]  # stop() has nothing left to close
    ingestor.connected.clear()  # type: ignore[attr-defined]


def _presence(sub: Subscriber) -> list[CaregiverStatusMessage]:
    return [decode_as(CaregiverStatusMessage, m.payload) for m in sub.on("/caregiver/status")]


def test_the_service_says_online_when_subscribed_and_offline_when_it_stops(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sub = Subscriber(mosquitto, [PRESENCE])
    config = caregiver_config(mosquitto, tmp_path)
    with running_service(config, web=False):
        assert sub.wait(lambda: bool(_presence(sub)))
        online = _presence(sub)[-1]
        assert online.state == CaregiverPresence.ONLINE and online.by == "caregiver-test"
        validate("caregiver_status", sub.on("/caregiver/status")[-1].payload)
    assert sub.wait(lambda: _presence(sub)[-1].state == CaregiverPresence.OFFLINE)
    assert _presence(sub)[-1].wall_time is not None  # a clean stop says when
    sub.close()
    late = Subscriber(mosquitto, [PRESENCE])  # retained: a device that starts later knows
    assert late.wait(lambda: bool(late.on("/caregiver/status")))
    assert late.on("/caregiver/status")[-1].retain
    assert _presence(late)[-1].state == CaregiverPresence.OFFLINE
    late.close()


def test_with_two_instances_one_crashing_leaves_the_other_saying_online(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Instances share the one presence topic: the Last Will of one that crashed said
    "offline" while the other still received every alert. The one still there says "online"
    again; its own stop then reads offline."""
    sub = Subscriber(mosquitto, [PRESENCE])
    first = caregiver_config(mosquitto, tmp_path / "a", client_id="caregiver-a")
    second = caregiver_config(mosquitto, tmp_path / "b", client_id="caregiver-b")
    with running_service(second, web=False), running_service(first, web=False) as crashing:
        assert sub.wait(lambda: any(p.by == "caregiver-a" for p in _presence(sub)))
        _crash(crashing.ingestor)
        assert sub.wait(
            lambda: (
                _after_will(_presence(sub), "caregiver-a")
                == [(CaregiverPresence.ONLINE, "caregiver-b")]
            )
        )
    assert sub.wait(lambda: _presence(sub)[-1].state == CaregiverPresence.OFFLINE)
    assert _presence(sub)[-1].by == "caregiver-b"
    sub.close()


def test_on_the_documented_broker_the_presence_names_the_account_the_broker_knows_it_by(
    tmp_path: Path,
) -> None:
    """With ``use_username_as_clientid`` the broker gives an instance its user name as client id,
    whatever its ``client_id``: the presence said the configured id (``retroguard-caregiver``,
    the default) while the broker and the device's log knew ``caregiver``. And instances on
    accounts of their own that kept the one default ``client_id`` each took the other's Last
    Will for their own: the one still there left it unanswered, and every treadmill read
    "nobody is paged" while it received every alert. The presence names the account, and so
    do the receipts: they said the configured ``client_id`` (a device refuses a receipt whose
    name is longer than 64 characters, which the config now refuses for both names)."""
    acl_path = Path(__file__).resolve().parent.parent / "docs" / "mqtt" / "mosquitto.acl"
    acl = acl_path.read_text()
    rules = acl.split("\nuser caregiver\n", 1)[1].split("\n\n", 1)[0]
    instances = "".join(f"\nuser {name}\n{rules}\n" for name in ("caregiver-a", "caregiver-b"))
    users = {"caregiver-a": "pw-a", "caregiver-b": "pw-b", DEVICE: "pw-d"}
    broker = Mosquitto(users=users, acl=acl + instances).start()
    receipts = Topics("retroguard", DEVICE).receipt
    sub = Subscriber(broker, [PRESENCE, receipts], username=DEVICE, password="pw-d")
    try:
        configs = []
        for name in ("caregiver-a", "caregiver-b"):
            config = caregiver_config(broker, tmp_path / name, client_id="retroguard-caregiver")
            mqtt = dataclasses.replace(config.mqtt, username=name, password=users[name])
            configs.append(dataclasses.replace(config, mqtt=mqtt))
        with running_service(configs[1], web=False), running_service(configs[0], web=False) as a:
            assert sub.wait(lambda: any(p.by == "caregiver-a" for p in _presence(sub)))
            assert "retroguard-caregiver" not in {p.by for p in _presence(sub)}
            assert "New client connected" in broker.log() and " as caregiver-a " in broker.log()
            event = fall(DEVICE)
            sub.client.publish(Topics("retroguard", DEVICE).event, event_payload(event, 1), qos=1)
            assert sub.wait(lambda: len(sub.on("/receipt")) >= 2)  # each instance stores it
            signed = [decode_as(ReceiptMessage, m.payload) for m in sub.on("/receipt")]
            assert {r.by for r in signed} == {"caregiver-a", "caregiver-b"}
            assert all(r.ids == [event.id] for r in signed)
            _crash(a.ingestor)
            assert sub.wait(
                lambda: (
                    _after_will(_presence(sub), "caregiver-a")
                    == [(CaregiverPresence.ONLINE, "caregiver-b")]
                )
            )
        assert sub.wait(lambda: _presence(sub)[-1].state == CaregiverPresence.OFFLINE)
        assert _presence(sub)[-1].by == "caregiver-b"
    finally:
        sub.close()
        broker.cleanup()


def _after_will(said: list[CaregiverStatusMessage], crashed: str) -> list[tuple[str, str]]:
    """What was said after ``crashed``'s Last Will (offline, unstamped), or [] before it."""
    wills = [i for i, p in enumerate(said) if p.by == crashed and p.wall_time is None]
    return [(p.state, p.by) for p in said[wills[0] + 1 :]] if wills else []


def test_a_device_hears_the_service_and_its_last_will_and_its_self_test_says_so(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    device = MqttReporter(
        config_for(mosquitto), device_id=DEVICE, device_name="T", database=tmp_path / "d.db"
    )
    device.start()
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/caregiver"])
    try:
        assert device.wait_until(lambda s: s.ready, WAIT)
        assert device.status.caregiver.expected  # alert receipts on: a service is expected
        check = device.commands.handle("self_test", b"{}").result["checks"]["caregiver"]
        assert not check["ok"] and "no caregiver service has announced itself" in check["detail"]
        with running_service(caregiver_config(mosquitto, tmp_path), web=False) as service:
            assert device.wait_until(lambda s: s.caregiver.state == "online", WAIT)
            result = device.commands.handle("self_test", b"{}").result
            assert result["checks"]["caregiver"]["ok"]
            assert result["checks"]["caregiver"]["detail"].startswith(
                "the caregiver service is online since "
            )
            device.sink.handle(fall(DEVICE))  # received: nothing left waiting
            # received, on fresh figures (a wait on the status's depth 0 could see the figures
            # from before the fall: the crash then beat its receipt, awaiting 2 below)
            assert device.wait_received(WAIT)
            _crash(service.ingestor)
            # the broker publishes the Last Will: the device reads offline
            assert device.wait_until(lambda s: s.caregiver.state == "offline", WAIT)
            device.sink.handle(fall(DEVICE, 2.0))  # now nobody receipts it
            assert device.wait_until(lambda s: s.caregiver.awaiting == 1, WAIT)
            result = device.commands.handle("self_test", b"{}").result
            assert not result["passed"]
            detail = result["checks"]["caregiver"]["detail"]
            assert detail.startswith("the caregiver service is offline since ")
            assert f": {NOBODY_PAGED}" in detail and "1 alert wait for it" in detail

        # what the device says on its retained caregiver topic (Home Assistant reads it)
        def last() -> dict[str, Any]:
            return validate("caregiver", sub.on("/caregiver")[-1].payload)

        # the newest one: "offline" is said first with nothing waiting, then again once the
        # second alert waits for it (the broker took it); while online, the first alert
        # waited a moment too
        def offline_one_waiting() -> bool:
            if not sub.on("/caregiver"):
                return False
            said = last()  # once: a newer message may come between two reads of it
            return (said["state"], said.get("awaiting")) == ("offline", 1)

        assert sub.wait(offline_one_waiting)
        assert last()["expected"] is True and "oldest_awaiting" in last()
    finally:
        sub.close()
        device.close()


def test_without_a_caregiver_service_expected_the_self_test_does_not_ask(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Home Assistant alone (no receipts): a service that is not there is no failure."""
    device = MqttReporter(
        config_for(mosquitto, alert_receipts=False),
        device_id=DEVICE,
        device_name="T",
        database=tmp_path / "d.db",
    )
    device.start()
    try:
        assert device.wait_until(lambda s: s.ready, WAIT)
        result = device.commands.handle("self_test", b"{}").result
        assert "caregiver" not in result["checks"] and result["passed"]
    finally:
        device.close()


def test_caregiver_expected_is_derived_and_refused_without_a_broker() -> None:
    assert parse_config({"mqtt": {"host": "b"}}).mqtt.expects_caregiver()
    assert not parse_config(
        {"mqtt": {"host": "b", "alert_receipts": False}}
    ).mqtt.expects_caregiver()
    assert parse_config(
        {"mqtt": {"host": "b", "alert_receipts": False, "caregiver_expected": True}}
    ).mqtt.expects_caregiver()
    assert not parse_config({}).mqtt.expects_caregiver()  # no broker: nothing to expect
    with pytest.raises(
        ConfigError, match=r"mqtt\.caregiver_expected: true, but mqtt\.host is empty"
    ):
        parse_config({"mqtt": {"caregiver_expected": True}})
    with pytest.raises(ConfigError, match="caregiver_expected"):
        parse_config({"mqtt": {"host": "b", "caregiver_expected": "yes"}})


ACL = (Path(__file__).resolve().parent.parent / "docs" / "mqtt" / "mosquitto.acl").read_text()


def test_the_documented_acl_carries_the_presence_to_the_device_and_home_assistant(
    tmp_path: Path,
) -> None:
    """Under the documented ACL each account may do its part: the caregiver account says it,
    a device account hears it and says what it hears, Home Assistant's account reads that;
    a clean stop reads offline too."""
    users = {DEVICE: "dev1-pw", "caregiver": "carer-pw", "homeassistant": "ha-pw"}
    broker = Mosquitto(users=users, acl=ACL).start()
    try:
        device = MqttReporter(
            dataclasses.replace(config_for(broker), username=DEVICE, password="dev1-pw"),
            device_id=DEVICE,
            device_name="T",
            database=tmp_path / "d.db",
        )
        device.start()
        ha = Subscriber(
            broker, [f"retroguard/{DEVICE}/caregiver"], username="homeassistant", password="ha-pw"
        )
        config = caregiver_config(broker, tmp_path / "care")
        config = dataclasses.replace(
            config,
            mqtt=dataclasses.replace(config.mqtt, username="caregiver", password="carer-pw"),
        )
        with running_service(config, web=False):
            assert device.wait_until(lambda s: s.caregiver.state == "online", WAIT)
            assert ha.wait(lambda: _heard(ha) == "online")
        assert device.wait_until(lambda s: s.caregiver.state == "offline", WAIT)
        assert ha.wait(lambda: _heard(ha) == "offline")
        ha.close()
        device.close()
    finally:
        broker.cleanup()


def _heard(sub: Subscriber) -> str | None:
    seen = sub.on("/caregiver")
    return str(json.loads(seen[-1].payload)["state"]) if seen else None


NO_CAREGIVER = (
    "The belt is armed, but caregivers will not be called: the alert service is offline or "
    "cannot store alerts."
)


def test_the_walker_hears_at_arming_that_caregivers_will_not_be_called_and_arms_anyway(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Nothing told the walker that a fall would page nobody. Now, at each arming while a
    caregiver service is expected and not online, the words are queued — and the arming is
    neither delayed nor refused: the relay closes as before."""
    rig = make_rig(tmp_path, detector=TripAt(6.0), mqtt=config_for(mosquitto))
    link = rig.app.link
    reporter = rig.courier.reporter
    assert reporter is not None and reporter.wait_until(lambda s: s.ready, WAIT)
    heard = Heard()
    runner = attach_session(rig.app, resolve_plan("alternate-2-2"), record=False, speaker=heard)
    assert pump_link_until(link, lambda: link.caregivers_away)  # none has announced itself
    with running_service(caregiver_config(mosquitto, tmp_path / "care"), web=False) as service:
        assert pump_link_until(link, lambda: not link.caregivers_away)  # heard online
        rig.run_for(1.0)
        rig.press_reset()
        assert rig.state == "ARMED" and rig.hardware.contact_closed()
        rig.run_for(0.5)
        assert NO_CAREGIVER not in heard.said  # online: nothing to say
        _crash(service.ingestor)  # its Last Will: offline
        assert pump_link_until(link, lambda: link.caregivers_away)
        rig.run_for(6.0 - rig.clock.monotonic() + 0.5)  # the trip opens the relay
        assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
        rig.press_reset()  # the walker re-arms: at once, as always
        assert rig.state == "ARMED" and rig.hardware.contact_closed()
        rig.run_for(0.5)
        assert heard.said.count(NO_CAREGIVER) == 1
    detach_session(rig.app, runner)


def test_a_last_will_found_retained_says_no_time_it_does_not_know() -> None:
    """A Last Will carries no time. Heard live it is "since now"; found retained when the
    device subscribes it happened some time before, and the words do not invent a time (they
    said the device's own start). The same state heard again keeps its time; what is not a
    presence message changes nothing."""
    will = caregiver_status_payload(CaregiverPresence.OFFLINE, "cg", stamped=False).encode()
    found = CaregiverWatch(expected=True)
    assert found.heard(will, retained=True)
    view = found.view(0, None)
    assert view.state == "offline" and view.since is None
    detail = self_test_check(view, connected=True).detail
    assert detail == f"the caregiver service is offline: {NOBODY_PAGED}"
    live = CaregiverWatch(expected=True)
    assert live.heard(will) and live.view(0, None).since is not None
    since = live.view(0, None).since
    live.unreachable()  # the device's own link dropped: it cannot tell
    assert live.view(0, None).state == "unknown"
    assert live.heard(will, retained=True)  # heard again at the next subscribe
    assert live.view(0, None).since == since
    for garbage in (b"", b"{", b'{"schema":1,"state":"maybe","by":"cg"}'):
        assert not live.heard(garbage)
    assert live.view(0, None).state == "offline"


def test_nothing_heard_yet_just_after_start_is_not_said_as_nobody_there() -> None:
    """The walker who arms as soon as the monitor starts was told "caregivers will not be
    called" while the service was online: the device had simply not heard its retained
    presence yet (state unknown counted as away). Now unknown counts only once settled: 2 s
    after our subscription took (the retained presence comes right behind it), or 10 s
    into a connection that has not answered; offline counts at once, online never. Until
    then it is undecided (the runner looks again)."""
    now = [100.0]
    watch = CaregiverWatch(expected=True, clock=lambda: now[0])
    view = watch.view(0, None)
    assert not view.away(now[0]) and view.undecided(now[0])  # the first attempt under way
    watch.connected()
    watch.subscribed()
    now[0] += 1.0
    assert not watch.view(0, None).away(now[0])  # its retained presence may be on its way
    now[0] += 1.0
    view = watch.view(0, None)
    assert view.away(now[0]) and not view.undecided(now[0])  # subscribed 2 s, nobody there
    online = caregiver_status_payload(CaregiverPresence.ONLINE, "care-1").encode()
    assert watch.heard(online, retained=True)
    view = watch.view(0, None)
    assert not view.away(now[0]) and not view.undecided(now[0])
    assert watch.heard(caregiver_status_payload(CaregiverPresence.OFFLINE, "care-1").encode())
    assert watch.view(0, None).away(now[0])  # offline: at once
    assert not CaregiverWatch(expected=False).view(0, None).away(now[0])  # none expected


def test_a_broker_out_of_reach_is_nobody_there_at_once_and_a_connect_brings_the_grace_back() -> (
    None
):
    """With the broker out of reach at the start (refused, a name that does not resolve),
    an arming in the first 10 s was not told: nothing heard counted as "not yet". But a
    failed attempt (or a dropped link) is known: nobody can be paged until the device
    connects again, so it is away at once. A connection made brings the grace back (its
    retained presence is on its way), and an attempt under way that has not failed is not
    away (a healthy broker answers it in a moment)."""
    now = [100.0]
    watch = CaregiverWatch(expected=True, clock=lambda: now[0])
    watch.unreachable()  # the first attempt failed, at once
    view = watch.view(0, None)
    assert view.state == "unknown" and view.away(now[0]) and not view.undecided(now[0])
    now[0] += 30.0  # retries under way: still out of reach until one connects
    assert watch.view(0, None).away(now[0])
    watch.connected()
    view = watch.view(0, None)
    assert not view.away(now[0]) and view.undecided(now[0])  # connected: its presence may come
    watch.subscribed()
    now[0] += RETAINED_SETTLE_S - 0.5
    assert not watch.view(0, None).away(now[0])
    assert watch.heard(caregiver_status_payload(CaregiverPresence.ONLINE, "care-1").encode())
    assert not watch.view(0, None).away(now[0])
    watch.unreachable()  # the link dropped: away at once, not 10 s later
    assert watch.view(0, None).away(now[0])
    watch.connected()  # connected again, nothing heard yet, not subscribed
    now[0] += UNHEARD_GRACE_S - 0.5
    assert watch.view(0, None).undecided(now[0])
    now[0] += 1.0  # connected 10 s and no subscription took: nobody there
    assert watch.view(0, None).away(now[0])
    quiet = CaregiverWatch(expected=False, clock=lambda: now[0])
    quiet.unreachable()  # none expected: nothing to say, nothing undecided
    assert not quiet.view(0, None).away(now[0]) and not quiet.view(0, None).undecided(now[0])


def _run_until(rig: Rig, done: Callable[[], bool]) -> bool:
    """Run the loop on its simulated clock until ``done()`` (the courier answers over a real
    socket, polled every iteration); real time bounds it, as a net against hangs."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        rig.run_for(0.05)
        if done():
            return True
    return False


@pytest.mark.usefixtures(close_rigs.__name__)
def test_an_arming_with_the_broker_out_of_reach_is_told_without_waiting_for_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the broker out of reach at the start (nothing listens on its port), an arming in
    the first 10 s was told nothing: "nothing heard yet" waited out the grace meant for a
    device whose retained presence is on its way. A refused connection is known: nobody can be
    paged, alerts wait in the outbox. The grace is made endless here, so only that can say so;
    the arming itself is neither delayed nor refused."""
    monkeypatch.setattr(caregiver, "UNHEARD_GRACE_S", 1e9)
    mqtt = MqttConfig(
        host="127.0.0.1",
        port=free_port(),  # nothing listens there
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
        telemetry_interval_s=0.0,
    )
    rig = make_rig(tmp_path, mqtt=mqtt)
    heard = Heard()
    runner = attach_session(rig.app, resolve_plan("alternate-2-2"), record=False, speaker=heard)
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()  # at once, as always
    assert _run_until(rig, lambda: NO_CAREGIVER in heard.said)
    assert heard.said.count(NO_CAREGIVER) == 1  # once an arming
    reporter = rig.courier.reporter
    assert reporter is not None
    status = reporter.status
    assert status.connects == 0 and status.caregiver.state == "unknown"
    # the self-test says the same (in words), and nothing goes out for Home Assistant
    check = self_test_check(status.caregiver, status.connected)
    assert not check.ok and "not connected to the broker" in check.detail
    detach_session(rig.app, runner)


def _armed_while_connecting(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Rig, Heard]:
    """A monitor started while its broker does not answer yet (paused: the connection is
    accepted, its CONNACK not sent), armed at once: its first connection attempt is under way,
    neither answered nor failed, so the link cannot say yet. The graces are made endless: only
    what the device hears once the broker answers decides, however loaded the machine."""
    monkeypatch.setattr(caregiver, "UNHEARD_GRACE_S", 1e9)
    monkeypatch.setattr(caregiver, "RETAINED_SETTLE_S", 1e9)
    mosquitto.pause()
    try:
        rig = make_rig(tmp_path, mqtt=config_for(mosquitto))
        heard = Heard()
        attach_session(rig.app, resolve_plan("alternate-2-2"), record=False, speaker=heard)
        rig.run_for(1.0)  # the monitor's start-up (simulated time: a moment of real time)
        rig.press_reset()  # the walker arms as soon as it is ready
        assert rig.state == "ARMED" and rig.hardware.contact_closed()  # never delayed
        rig.run_for(0.5)
        assert rig.app.link.caregivers_undecided and not rig.app.link.caregivers_away
        assert NO_CAREGIVER not in heard.said  # not yet: nothing could be heard
    finally:
        mosquitto.resume()
    return rig, heard


def test_an_arming_during_a_normal_start_with_the_service_online_is_not_told(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The false warning the grace is for: the service is online, the monitor starts and the
    walker arms while the device is still connecting. The runner looks again until the
    device can say, and says nothing: the service is heard online."""
    sub = Subscriber(mosquitto, [PRESENCE])
    with running_service(caregiver_config(mosquitto, tmp_path / "care"), web=False):
        assert sub.wait(lambda: bool(_presence(sub)))  # its retained "online" is on the broker
        rig, heard = _armed_while_connecting(mosquitto, tmp_path, monkeypatch)
        link = rig.app.link
        assert _run_until(rig, lambda: not link.caregivers_undecided)
        rig.run_for(0.5)  # the ticks after it was decided
        assert not link.caregivers_away
        reporter = rig.courier.reporter
        assert reporter is not None and reporter.status.caregiver.state == "online"
        assert NO_CAREGIVER not in heard.said
    sub.close()


def test_an_arming_while_connecting_is_told_once_the_service_is_heard_offline(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an arming during the first connection attempt hears: nothing then (it may well
    succeed, and the service be online), and the words as soon as the device can say that
    nobody would be paged — here the service's retained "offline" (it stopped cleanly before
    the monitor started), heard once the broker answers. Once, during that same arming."""
    with running_service(caregiver_config(mosquitto, tmp_path / "care"), web=False):
        pass  # its clean stop leaves "offline" retained
    rig, heard = _armed_while_connecting(mosquitto, tmp_path, monkeypatch)
    assert _run_until(rig, lambda: NO_CAREGIVER in heard.said)
    assert rig.state == "ARMED"  # the same arming
    rig.run_for(1.0)
    assert heard.said.count(NO_CAREGIVER) == 1


def test_a_device_whose_broker_drops_hears_nobody_there_at_once_and_online_again_after(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker going away (a restart, a pulled cable on its side) is known at once: nothing
    reaches the service until the device connects again. Back, the retained presence is heard
    again and the device reads online (the grace is endless here: only those can decide)."""
    monkeypatch.setattr(caregiver, "UNHEARD_GRACE_S", 1e9)
    device = MqttReporter(
        config_for(mosquitto), device_id=DEVICE, device_name="T", database=tmp_path / "d.db"
    )
    device.start()
    try:
        with running_service(caregiver_config(mosquitto, tmp_path / "care"), web=False):
            assert device.wait_until(lambda s: s.caregiver.state == "online", WAIT)
            mosquitto.stop()
            assert device.wait_until(
                lambda s: not s.connected and s.caregiver.away(time.monotonic()), WAIT
            )
            assert not device.status.caregiver.undecided(time.monotonic())
            mosquitto.start()
            assert device.wait_until(lambda s: s.caregiver.state == "online", WAIT)
            assert not device.status.caregiver.away(time.monotonic())
    finally:
        device.close()


def test_a_dropped_link_reads_nobody_there_at_once_not_only_when_a_retry_fails(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service heard online, then the broker goes away: the drop itself tells the device
    that nothing reaches the service, so it stops reading "online" at once — not only when a
    later attempt to reconnect fails (the first retry here waits a minute, past this test).
    The presence is a retained "online" with no Last Will behind it: nothing but the drop can
    change what the device reads."""
    monkeypatch.setattr(caregiver, "UNHEARD_GRACE_S", 1e9)
    announcer = Subscriber(mosquitto, [PRESENCE])
    online = caregiver_status_payload(CaregiverPresence.ONLINE, "care-1")
    announcer.client.publish(PRESENCE, online, qos=1, retain=True).wait_for_publish(WAIT)
    announcer.close()
    slow_retry = config_for(mosquitto, reconnect_min_s=60.0, reconnect_max_s=60.0)
    device = MqttReporter(slow_retry, device_id=DEVICE, device_name="T", database=tmp_path / "d.db")
    device.start()
    try:
        assert device.wait_until(lambda s: s.caregiver.state == "online", WAIT)
        mosquitto.stop()
        assert device.wait_until(lambda s: s.caregiver.away(time.monotonic()), WAIT)
        assert device.status.caregiver.state == "unknown" and not device.status.connected
        assert device.status.connects == 1  # no retry has been made
    finally:
        device.close()


def test_a_broker_found_after_failed_attempts_brings_the_grace_back(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attempts to reach the broker failed (it was not running yet): nobody there at once.
    The broker comes up and the device connects: until the service's retained presence could
    have arrived, it cannot say (undecided, not away: its presence is on its way). The graces
    are made endless, so only the connection itself can bring the device out of "away"."""
    monkeypatch.setattr(caregiver, "UNHEARD_GRACE_S", 1e9)
    monkeypatch.setattr(caregiver, "RETAINED_SETTLE_S", 1e9)
    mosquitto.stop()
    device = MqttReporter(
        config_for(mosquitto), device_id=DEVICE, device_name="T", database=tmp_path / "d.db"
    )
    device.start()
    try:
        assert device.wait_until(lambda s: s.caregiver.away(time.monotonic()), WAIT)
        assert device.status.connects == 0
        mosquitto.start()
        assert device.wait_until(
            lambda s: s.connects == 1 and s.caregiver.undecided(time.monotonic()), WAIT
        )
        assert not device.status.caregiver.away(time.monotonic())
    finally:
        device.close()


def test_with_no_service_expected_nothing_is_ever_undecided() -> None:
    """Undecided is "a service is expected and whether it is there cannot be said yet": with
    none expected there is nothing to decide, from the start (the first attempt under way)
    as after a connect, so the session runner has nothing to look at again."""
    now = [100.0]
    watch = CaregiverWatch(expected=False, clock=lambda: now[0])
    assert not watch.view(0, None).undecided(now[0])  # just started
    watch.connected()
    watch.subscribed()
    assert not watch.view(0, None).undecided(now[0])


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_monitor_with_no_broker_is_not_undecided_once_its_courier_speaks(
    tmp_path: Path,
) -> None:
    """With no broker configured there is no caregiver service to wait for: once its courier
    has spoken, the link says neither away nor undecided (only before that, when nothing is
    known yet)."""
    rig = make_rig(tmp_path)
    link = rig.app.link
    assert pump_link_until(link, lambda: not link.caregivers_undecided)
    assert not link.caregivers_away


def test_a_broker_that_refuses_our_credentials_is_nobody_there_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker answers, and refuses our CONNECT (a wrong password): nothing reaches the
    service until that is fixed, so the device says so at once, not after the grace (made
    endless here)."""
    monkeypatch.setattr(caregiver, "UNHEARD_GRACE_S", 1e9)
    broker = Mosquitto(users={DEVICE: "right"}).start()
    try:
        wrong = config_for(broker, username=DEVICE, password="wrong", caregiver_expected=True)
        device = MqttReporter(wrong, device_id=DEVICE, device_name="T", database=tmp_path / "d.db")
        device.start()
        try:
            assert device.wait_until(lambda s: s.caregiver.away(time.monotonic()), WAIT)
            status = device.status
            assert status.connects == 0 and "refused" in (status.last_error or "")
        finally:
            device.close()
    finally:
        broker.cleanup()


def test_home_assistant_starting_while_the_service_stops_leaves_it_offline(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A clean stop says ``offline`` (retained), then disconnects, which drops the Last Will:
    the retained presence must end ``offline``. Home Assistant's birth message heard between
    the two (paho's thread still running, the link still up) said ``online`` again after it,
    and a service that was gone read as there for ever: the treadmills told their walkers
    that a fall pages someone."""
    config = caregiver_config(mosquitto, tmp_path)
    mine = config.mqtt.identity
    heard = threading.Event()
    marker = "retroguard/test/marker"
    sub = Subscriber(mosquitto, [PRESENCE, marker])
    with running_service(config, web=False) as service:
        ingestor = service.ingestor
        assert sub.wait(lambda: bool(_presence(sub)))
        answer = ingestor._home_assistant_heard

        def home_assistant_heard(client: Any, message: Any) -> None:
            answer(client, message)
            heard.set()

        ingestor._home_assistant_heard = home_assistant_heard  # type: ignore[method-assign]
        say_offline = ingestor._say_offline

        def offline_then_home_assistant_starts(client: Any) -> None:
            say_offline(client)  # retained offline, before the DISCONNECT
            assert sub.wait(lambda: _presence(sub)[-1].state == CaregiverPresence.OFFLINE)
            sub.client.publish("homeassistant/status", "online", qos=1)  # its birth message
            assert heard.wait(WAIT), "the service did not hear Home Assistant's birth"
            # what it said then (nothing, or online) reaches the broker before the DISCONNECT:
            # on its one connection, before this
            client.publish(marker, "", qos=1).wait_for_publish(WAIT)
            assert sub.wait(lambda: bool(sub.on(marker)))

        ingestor._say_offline = offline_then_home_assistant_starts  # type: ignore[method-assign]
    sub.close()
    late = Subscriber(mosquitto, [PRESENCE])
    try:
        assert late.wait(lambda: bool(_presence(late)))
        last = _presence(late)[-1]
        assert (last.state, last.by) == (CaregiverPresence.OFFLINE, mine)
    finally:
        late.close()
