"""The caregiver service's presence says when it cannot store what it receives.

Before, a service whose database refused (damaged, a full disk, a lock, PostgreSQL down) stayed
``online`` while it stored nothing: every alert waited with the broker, never receipted and
never escalated (an alert is paged from its stored row), so nobody was paged for a fall, and
the treadmill's self-test said "the caregiver service is online since ...; N alerts wait for
it", Home Assistant showed it connected, and the walker was told nothing at arming. The
presence now carries ``storing: false`` and a few words why; the device counts it as nobody
paged, in the same places as a service that is offline.

A real fault on the service's real SQLite file: SQLite's authorizer refuses its COMMITs (as a
full disk or a lock refuses them), over a real Mosquitto.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from caregiver import ingest as ingest_module
from caregiver.ingest import STORING_REFUSED
from core.protocol.messages import CaregiverPresence, CaregiverStatusMessage, SchemaVersion
from core.protocol.payloads import caregiver_status_payload, decode_as, encode, event_payload
from core.protocol.topics import Topics
from firmware.mqtt import MqttReporter
from firmware.mqtt.caregiver import NOBODY_PAGED, CaregiverWatch, self_test_check
from firmware.session.plan import resolve_plan
from firmware.session.runner import attach_session, detach_session
from tests.app_support import Heard, close_rigs, make_rig, pump_link_until
from tests.caregiver_support import make_config as caregiver_config
from tests.caregiver_support import running_service
from tests.ha_discovery import HomeAssistant
from tests.mqtt_helpers import WAIT, Subscriber, config_for, fall, validate
from tests.test_caregiver_commit_failure import _commit_refused
from tests.test_caregiver_ingest_batch import _event
from tests.test_caregiver_presence import NO_CAREGIVER, PRESENCE, _presence
from tests.test_ha_mqtt import retained_now
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"
CAREGIVER_TOPIC = f"retroguard/{DEVICE}/caregiver"


def _storing(sub: Subscriber) -> bool | None:
    """What the service's newest presence says of storing (None: nothing heard yet)."""
    said = _presence(sub)
    return said[-1].storing if said else None


def _link(sub: Subscriber) -> dict[str, object] | None:
    """The device's newest ``caregiver`` message (checked against the docs' schema)."""
    seen = sub.on("/caregiver")
    return validate("caregiver", seen[-1].payload) if seen else None


def _home_assistant(mosquitto: Mosquitto) -> HomeAssistant:
    """A Home Assistant that starts now: what it shows from the retained messages alone."""
    ha = HomeAssistant()
    # the treadmill's discovery alone: the model holds one device, and the service announces
    # its own (tests/test_caregiver_health_topic.py)
    topics = [f"homeassistant/device/{DEVICE}/config", f"retroguard/{DEVICE}/#"]
    ha.receive_all((t, p, True) for t, p in retained_now(mosquitto, topics))
    return ha


def test_a_service_that_cannot_store_reads_as_nobody_paged_on_the_device_until_it_stores(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    device = MqttReporter(
        config_for(mosquitto), device_id=DEVICE, device_name="T", database=tmp_path / "d.db"
    )
    device.start()
    sub = Subscriber(mosquitto, [PRESENCE, CAREGIVER_TOPIC])
    config = caregiver_config(mosquitto, tmp_path / "care")
    try:
        assert device.wait_until(lambda s: s.ready, WAIT)
        with running_service(config, web=False) as service:
            assert device.wait_until(lambda s: s.caregiver.state == "online", WAIT)
            assert device.commands.handle("self_test", b"{}").result["checks"]["caregiver"]["ok"]
            assert sub.wait(lambda: _storing(sub) is True)
            with _commit_refused(service, config.server.database):
                device.sink.handle(fall(DEVICE))  # it reaches the service, which cannot store it
                assert sub.wait(lambda: _storing(sub) is False)
                said = _presence(sub)[-1]
                assert said.state == CaregiverPresence.ONLINE and said.fault == STORING_REFUSED
                validate("caregiver_status", sub.on("/caregiver/status")[-1].payload)
                # retained: a device that starts now reads it too
                ((_, retained),) = retained_now(mosquitto, [PRESENCE])
                assert decode_as(CaregiverStatusMessage, retained).fault == STORING_REFUSED
                assert device.wait_until(
                    lambda s: s.caregiver.fault is not None and s.caregiver.awaiting == 1, WAIT
                )
                result = device.commands.handle("self_test", b"{}").result
                assert not result["passed"]
                detail = result["checks"]["caregiver"]["detail"]
                assert detail.startswith(
                    "the caregiver service is online but cannot store alerts "
                    f"({STORING_REFUSED}) since "
                )
                assert f": {NOBODY_PAGED}; 1 alert wait for it" in detail
                # the device's retained caregiver topic, and Home Assistant reading it
                assert sub.wait(lambda: (_link(sub) or {}).get("storing") is False)
                link = _link(sub)
                assert link is not None and link["state"] == "online"
                assert link["fault"] == STORING_REFUSED and "fault_since" in link
                ha = _home_assistant(mosquitto)
                assert ha.state("_caregiver") == "off"
                attributes = ha.attributes[ha.component("_caregiver").key]
                assert attributes["cannot_store"] == STORING_REFUSED
                assert attributes["heard"] == "online"
            # it stores again: the held fall is stored at the next retry, and the presence,
            # the device's self-test, its topic and Home Assistant say so
            assert sub.wait(lambda: _storing(sub) is True)
            assert _presence(sub)[-1].fault is None
            assert device.wait_until(
                lambda s: s.caregiver.fault is None and s.caregiver.awaiting == 0, WAIT
            )
            check = device.commands.handle("self_test", b"{}").result["checks"]["caregiver"]
            assert check["ok"] and check["detail"].startswith("the caregiver service is online")
            assert sub.wait(lambda: (_link(sub) or {}).get("fault") is None)
            assert _link(sub) is not None and "storing" not in (_link(sub) or {})  # the default
            assert _home_assistant(mosquitto).state("_caregiver") == "on"
    finally:
        sub.close()
        device.close()


@pytest.mark.usefixtures(close_rigs.__name__)
def test_the_walker_hears_at_arming_that_caregivers_will_not_be_called_and_arms_anyway(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The service online but storing nothing pages nobody: the walker is told at arming, as
    for a service that is offline, and the arming is neither delayed nor refused."""
    rig = make_rig(tmp_path, mqtt=config_for(mosquitto))
    link = rig.app.link
    reporter = rig.courier.reporter
    assert reporter is not None and reporter.wait_until(lambda s: s.ready, WAIT)
    heard = Heard()
    runner = attach_session(rig.app, resolve_plan("alternate-2-2"), record=False, speaker=heard)
    sub = Subscriber(mosquitto, [PRESENCE])
    config = caregiver_config(mosquitto, tmp_path / "care")
    try:
        with running_service(config, web=False) as service:
            assert pump_link_until(link, lambda: not link.caregivers_away)  # heard online
            with _commit_refused(service, config.server.database):
                event = event_payload(fall(DEVICE), 1)  # another treadmill's fall
                sub.client.publish(Topics("retroguard", DEVICE).event, event, qos=1)
                assert pump_link_until(link, lambda: link.caregivers_away)
                rig.run_for(1.0)
                rig.press_reset()
                assert rig.state == "ARMED" and rig.hardware.contact_closed()
                rig.run_for(0.5)
                assert heard.said.count(NO_CAREGIVER) == 1
            assert pump_link_until(link, lambda: not link.caregivers_away)  # stored again
            assert _storing(sub) is True
    finally:
        sub.close()
        detach_session(rig.app, runner)


def test_a_flap_within_the_interval_is_not_said(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault that comes and goes (here within an interval as long as the test) does not
    flap every treadmill: what the presence last said is what holds when the interval ends,
    so nothing is said (the service's presence between its online and its offline: none)."""
    monkeypatch.setattr(ingest_module, "PRESENCE_EVERY_S", 3600.0)
    sub = Subscriber(mosquitto, [PRESENCE])
    config = caregiver_config(mosquitto, tmp_path)
    try:
        with running_service(config, web=False) as service:
            ingestor = service.ingestor
            assert sub.wait(lambda: _storing(sub) is True)
            for seq in (1, 2):
                with _commit_refused(service, config.server.database):
                    assert not ingestor.handle(*_event(seq, "fall"))
                assert ingestor.storage_fault is not None
                assert ingestor.handle(*_event(seq, "fall"))
                assert ingestor.storage_fault is None
        assert sub.wait(lambda: _presence(sub)[-1].state == CaregiverPresence.OFFLINE)
        assert [(p.state, p.storing) for p in _presence(sub)] == [
            (CaregiverPresence.ONLINE, True),
            (CaregiverPresence.OFFLINE, True),
        ]
    finally:
        sub.close()


def test_a_change_within_the_interval_is_said_at_its_end(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The latest state is never lost: a fault that began, went and began again within the
    interval after the online is said when it ends."""
    sub = Subscriber(mosquitto, [PRESENCE])
    config = caregiver_config(mosquitto, tmp_path)
    try:
        with running_service(config, web=False) as service:
            ingestor = service.ingestor
            assert sub.wait(lambda: _storing(sub) is True)
            with _commit_refused(service, config.server.database):
                assert not ingestor.handle(*_event(1, "fall"))
            assert ingestor.handle(*_event(1, "fall"))
            with _commit_refused(service, config.server.database):
                assert not ingestor.handle(*_event(2, "fall"))
                assert sub.wait(lambda: _storing(sub) is False)
            assert _presence(sub)[-1].fault == STORING_REFUSED
    finally:
        sub.close()


# ------------------------------------------------ the message, and a device from before


class _PresenceBefore(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The presence as a device from before ``storing`` decodes it (the type then)."""

    schema: SchemaVersion
    state: CaregiverPresence
    by: str
    wall_time: str | None = None


def test_a_device_from_before_reads_the_new_presence_and_the_new_one_reads_the_old() -> None:
    """msgspec ignores fields a type does not name unless it forbids them
    (``forbid_unknown_fields``, which the presence never had): a device from before reads
    ``online`` (it cannot know more). A presence from a service from before (no ``storing``)
    reads as storing."""
    new = caregiver_status_payload(
        CaregiverPresence.ONLINE, "caregiver", fault=STORING_REFUSED
    ).encode()
    assert json.loads(new)["storing"] is False
    before = msgspec.json.decode(new, type=_PresenceBefore)
    assert before.state == CaregiverPresence.ONLINE and before.by == "caregiver"
    old = encode(_PresenceBefore(schema=1, state=CaregiverPresence.ONLINE, by="caregiver"))
    assert "storing" not in old  # the normal case says nothing new either
    assert caregiver_status_payload(CaregiverPresence.ONLINE, "caregiver", stamped=False) == old
    said = decode_as(CaregiverStatusMessage, old.encode())
    assert said.storing and said.fault is None
    watch = CaregiverWatch(expected=True)
    assert watch.heard(old.encode())
    view = watch.view(0, None)
    assert view.state == "online" and view.fault is None and not view.away(0.0)


def test_the_device_keeps_when_it_stopped_storing_and_forgets_it_offline() -> None:
    watch = CaregiverWatch(expected=True)

    def said(fault: str | None, state: CaregiverPresence, wall: str) -> bytes:
        message = CaregiverStatusMessage(
            schema=1, state=state, by="c", wall_time=wall, storing=fault is None, fault=fault
        )
        return msgspec.json.encode(message)

    online = CaregiverPresence.ONLINE
    assert watch.heard(said(None, online, "2026-12-06T13:00:00+00:00"))
    assert watch.heard(said("database damaged", online, "2026-12-06T14:03:00+00:00"))
    assert watch.heard(said("database damaged", online, "2026-12-06T14:09:00+00:00"), True)
    view = watch.view(2, "2026-12-06T14:05:00+00:00")
    assert (view.fault, view.fault_since) == ("database damaged", "2026-12-06T14:03:00+00:00")
    assert view.since == "2026-12-06T13:00:00+00:00"  # online all along
    assert view.away(0.0) and not view.undecided(0.0)
    check = self_test_check(view, connected=True)
    assert not check.ok
    assert check.detail.startswith(
        "the caregiver service is online but cannot store alerts (database damaged) since "
    )
    assert check.detail.endswith("; 2 alerts wait for it, the oldest since " + check.detail[-5:])
    message = view.message(DEVICE)
    assert (message.storing, message.fault) == (False, "database damaged")
    assert watch.heard(said(None, CaregiverPresence.OFFLINE, "2026-12-06T14:10:00+00:00"))
    assert watch.view(0, None).fault is None  # offline says nothing of storing
    assert watch.heard(said(None, online, "2026-12-06T14:11:00+00:00"))
    back = watch.view(0, None)
    assert back.fault is None and not back.away(0.0) and self_test_check(back, True).ok
