"""A shared treadmill's alarm says who fell (docs/incidents.md, "Who"): the card, the event
page, the alarm the page catches up on and the notification name the walker of the incident,
by the name the dashboard knows them by; a treadmill's one walker keeps today's words.

Before, all of them said "FALL on treadmill-1" whoever of its five walkers had fallen."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from caregiver import story
from caregiver.config import Contact
from caregiver.service import CaregiverService
from caregiver.walkers import named
from core.protocol.messages import SCHEMA_VERSION, WalkersMessage
from core.protocol.payloads import encode
from core.protocol.walker import DEFAULT_WALKER, Walker
from tests.caregiver_support import (
    Http,
    Receiver,
    SimDevice,
    make_config,
    running_service,
)
from tests.test_caregiver_service import _fake_clock_service
from tests.test_caregiver_story import NOW, _device, _incident
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
ANNA = Walker("anna", "Anna B.")
SHARED = [(DEFAULT_WALKER.id, DEFAULT_WALKER.name), (ANNA.id, ANNA.name)]


def test_whom_an_incident_names() -> None:
    alone = [(DEFAULT_WALKER.id, DEFAULT_WALKER.name)]
    assert named("default", alone) is None  # one walker: today's words, no "default"
    assert named("default", []) is None  # a device never heard: its one walker
    assert named(None, SHARED) is None  # from before incidents named their walker
    assert named("anna", SHARED) == "Anna B."  # the roster's name, not the id
    assert named("default", SHARED) == "Default walker"  # shared: whoever walked unchosen
    assert named("ben", alone) == "ben"  # the roster not heard yet: the id, not nothing


def test_the_words_name_the_walker_only_when_given() -> None:
    fall = _device("TRIPPED", incident=_incident("fall"), open_alerts=1)
    s = story.card(fall, NOW, "Anna B.")
    assert s.headline is not None and s.headline.text == "FALL — Anna B. — not acknowledged"
    s = story.card(fall, NOW)
    assert s.headline is not None and s.headline.text == "FALL — not acknowledged"
    closed = _incident(
        "fall", "closed", closed_at=NOW - 60, closed_by="ann", closed_via="dashboard"
    )
    assert (
        story.headline(closed, "/events/trip", "Anna B.").text
        == "Fall — Anna B. — acknowledged by ann on the dashboard"
    )
    answered = _incident("fault", answered=True)
    assert (
        story.headline(answered, "/events/trip", "Anna B.").text
        == "New alert after the incident was answered — Anna B. — not acknowledged"
    )
    # the event page names the treadmill in the line, once, next to what happened: appended
    # after it, a closed one read "... acknowledged by ann on the dashboard on treadmill-1"
    assert (
        story.headline(closed, "/events/trip", None, DEVICE).text
        == "Fall on treadmill-1 — acknowledged by ann on the dashboard"
    )
    assert (
        story.headline(closed, "/events/trip", "Anna B.", DEVICE).text
        == "Fall — Anna B., on treadmill-1 — acknowledged by ann on the dashboard"
    )
    opened = _incident("no_recovery")
    assert (
        story.headline(opened, "/events/trip", None, DEVICE).text
        == "FALL — not getting up on treadmill-1 — not acknowledged"
    )
    assert (
        story.headline(answered, "/events/trip", None, DEVICE).text
        == "New alert on treadmill-1 after the incident was answered — not acknowledged"
    )
    assert (
        story.headline(answered, "/events/trip", "Anna B.", DEVICE).text
        == "New alert after the incident was answered — Anna B., on treadmill-1 — not acknowledged"
    )
    assert story.alarm("fall", DEVICE, "Anna B.") == "FALL — Anna B., on treadmill-1"
    assert story.alarm("fall", DEVICE) == "FALL on treadmill-1"
    assert story.alarm("help", DEVICE, None) == "HELP requested on treadmill-1"


def test_a_named_walker_s_fall_names_them_on_every_page_and_in_the_notification(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    receiver = Receiver()
    contacts = (Contact(name="Ann", urls=(receiver.url("ann"),)),)
    config = make_config(mosquitto, tmp_path, contacts=contacts)
    try:
        with running_service(config, background=True) as cg:
            device = SimDevice(mosquitto, DEVICE)
            alone = SimDevice(mosquitto, "treadmill-2")
            try:
                device.online()
                device.publish("walkers", encode(WalkersMessage(
                    schema=SCHEMA_VERSION, device_id=DEVICE,
                    wall_time=dt.datetime.now(dt.UTC).isoformat(),
                    walkers=[DEFAULT_WALKER, ANNA])))  # fmt: skip
                assert cg.ingestor.wait_for(lambda: len(cg.store.device_walkers(DEVICE)) == 2)
                ids = device.incident_fall(walker="anna")
                receiver.wait(1)
                alone.online()  # a treadmill with one walker: absent on the wire, as before
                theirs = alone.incident_fall()
                messages = receiver.wait(2)
            finally:
                device.close()
                alone.close()
            message, other = sorted(messages, key=lambda m: "treadmill-2" in m["message"])
            assert message["title"] == "RetroGuard: FALL - Anna B., Dad's treadmill"
            assert "FALL — Anna B., on Dad's treadmill (treadmill-1) at " in message["message"]
            assert other["title"] == "RetroGuard: FALL - treadmill-2"  # today's words
            assert "FALL on treadmill-2 at " in other["message"]

            web = Http(cg.port)
            assert web.login() == 303
            _, _, page = web.request("GET", "/")
            assert page.count("FALL — Anna B. — not acknowledged") == 2  # card, incidents
            _, _, page = web.request("GET", f"/devices/{DEVICE}")
            assert "FALL — Anna B. — not acknowledged" in page
            _, _, page = web.request("GET", f"/events/{ids['trip']['id']}")
            assert "<h1>FALL — Anna B., on Dad&#39;s treadmill — not acknowledged</h1>" in page
            _, _, body = web.request("GET", "/api/alarms", headers={"accept": "*/*"})
            alarms = {a["device_id"]: a["text"] for a in json.loads(body)["alarms"]}
            assert alarms == {
                DEVICE: "FALL — Anna B., on Dad's treadmill",
                "treadmill-2": "FALL on treadmill-2",
            }
            _, _, page = web.request("GET", f"/events/{theirs['trip']['id']}")
            assert "<h1>FALL on treadmill-2 — not acknowledged</h1>" in page
            assert "Default walker" not in page
    finally:
        receiver.close()


def _roster(device: SimDevice) -> None:
    device.publish("walkers", encode(WalkersMessage(
        schema=SCHEMA_VERSION, device_id=device.device_id,
        wall_time=dt.datetime.now(dt.UTC).isoformat(),
        walkers=[DEFAULT_WALKER, ANNA])))  # fmt: skip


def _ok(device: SimDevice, ids: dict[str, Any]) -> dict[str, Any]:
    """The walker's "I'm OK" press closing the incident of ``ids``."""
    return device.event(
        "ok", severity="info", state="TRIPPED", reason="I'm OK", incident=ids["incident"]
    )


def _delivered_before_the_close(service: CaregiverService, ids: dict[str, Any]) -> None:
    """The fall's page sent, as the notifier does at once: one still queued when the walker's
    I'm OK closes the alert is not sent (tests/test_caregiver_escalation.py)."""
    assert service.ingestor.wait_for(lambda: service.store.event(ids["window"]["id"]) is not None)
    assert service.notifier.deliver_due() == 1


def test_the_follow_ups_name_the_walker_the_page_named(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """Before, the page said "FALL - Anna B., Dad's treadmill" and its follow-ups "I'm OK -
    Dad's treadmill" and "acknowledged - Dad's treadmill": of a shared treadmill, which
    walker was OK, whose fall was answered, the caregiver could not tell."""
    receiver = Receiver()
    service, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    device = SimDevice(mosquitto, DEVICE)
    alone = SimDevice(mosquitto, "treadmill-2")
    try:
        device.online()
        _roster(device)
        assert service.ingestor.wait_for(lambda: len(service.store.device_walkers(DEVICE)) == 2)
        ids = device.incident_fall(walker="anna")
        _delivered_before_the_close(service, ids)
        ok = _ok(device, ids)
        assert service.ingestor.wait_for(lambda: service.store.event(ok["id"]) is not None)
        assert service.notifier.deliver_due() == 1  # the page, then the walker is OK
        page, fine = receiver.messages
        assert page["title"] == "RetroGuard: FALL - Anna B., Dad's treadmill"
        assert fine["title"] == "RetroGuard: I'm OK - Anna B., Dad's treadmill"
        assert fine["message"].startswith(
            "Anna B. pressed I'm OK on Dad's treadmill: the alert 'Fall' is closed. "
        )

        ids = device.incident_fall(walker="anna")
        _delivered_before_the_close(service, ids)
        service.acknowledge(DEVICE, ids["fall"]["id"], "Ann")
        assert service.notifier.deliver_due() == 1
        answered = receiver.messages[-1]
        assert answered["title"] == "RetroGuard: acknowledged - Anna B., Dad's treadmill"
        assert answered["message"] == (
            "Acknowledged by Ann on the dashboard: the alert 'Fall' of Anna B. on Dad's "
            "treadmill is closed. No further reminders."
        )

        alone.online()  # a treadmill's one walker: today's words
        ids = alone.incident_fall()
        _delivered_before_the_close(service, ids)
        ok = _ok(alone, ids)
        assert service.ingestor.wait_for(lambda: service.store.event(ok["id"]) is not None)
        assert service.notifier.deliver_due() == 1
        fine = receiver.messages[-1]
        assert fine["title"] == "RetroGuard: I'm OK - treadmill-2"
        assert fine["message"].startswith("The walker pressed I'm OK on treadmill-2: ")
    finally:
        device.close()
        alone.close()
        service.stop()
        receiver.close()
