"""An alert's time on a Pi without a battery-backed clock: after a power cut the monitor
stamps its events with the time of its last shutdown until NTP sets the clock. Each event
says whether the clock was synchronised as it was stamped (``wall_unsynced``), and the
caregiver service shows, for one that was not, when it received the event, said as such —
on the timeline, the event page and the phone notification — never the device's wrong time
as when it happened."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caregiver import feed, story
from caregiver.storage import SCHEMA_VERSION, Incident, Store, StoredEvent
from caregiver.story import CLOCK_NOT_SET
from core.clock import SimClock
from core.protocol.events import Event, EventType
from core.protocol.messages import EventMessage, IncidentMessage, StateMessage
from core.protocol.payloads import decode_as, event_payload
from core.wallclock import FakeWallClock, WallStamper
from tests.app_support import Rig, armed_rig, close_rigs, make_rig  # noqa: F401 - fixture
from tests.caregiver_db import store_at_schema
from tests.caregiver_support import (
    Http,
    Receiver,
    SimDevice,
    make_config,
    new_event,
    running_service,
)
from tests.ha_discovery import HomeAssistant
from tests.mqtt_helpers import config_for, subscriber, validate
from tests.test_caregiver_service import _fake_clock_service
from tools.broker import Mosquitto

pytestmark = pytest.mark.usefixtures("close_rigs")

FRIDAY = dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.UTC)
"""The last shutdown's time: what the monitor's clock says after the power cut."""
MONDAY_STEP = dt.timedelta(days=2, hours=15).total_seconds()
"""The step NTP makes when it finally reaches a time server."""
FRIDAY_WORDS = "27 Nov 2026"
"""How the caregiver's pages would write the wrong time (the service's zone is UTC)."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _help(rig: Rig) -> Event:
    """Three presses of the reset button (a call for help); the help event the loop stored."""
    before = {s.event.id for s in rig.app.stored_events()}
    now = rig.clock.monotonic()
    for k in range(3):
        rig.button.press_at(now + 0.35 * k, now + 0.35 * k + 0.15)
    rig.run_for(2.0)
    (event,) = [
        s.event
        for s in rig.app.stored_events()
        if s.event.type is EventType.HELP and s.event.id not in before
    ]
    return event


def _unsynced_rig(tmp_path: Path, **kwargs: Any) -> tuple[Rig, list[FakeWallClock]]:
    walls: list[FakeWallClock] = []

    def wall(clock: SimClock) -> FakeWallClock:
        walls.append(FakeWallClock(clock, FRIDAY, synced=False))
        return walls[-1]

    rig = armed_rig(tmp_path, wall=wall, **kwargs)
    rig.run_for(1.0)  # armed a while: the next presses are a pattern of their own
    return rig, walls


# ----------------------------------------------------------------- the device


def test_the_monitor_flags_events_stamped_before_ntp_set_its_clock(tmp_path: Path) -> None:
    rig, (wall,) = _unsynced_rig(tmp_path)
    stored = {s.event.type: s for s in rig.app.stored_events()}
    start = stored[EventType.START]
    assert start.event.wall_time.startswith("2026-11-27T18:00")  # the shutdown's time
    assert start.event.wall_unsynced and stored[EventType.RESET].event.wall_unsynced
    # as the courier stores and publishes it: the flag is in the /event message
    sent = json.loads(event_payload(start.event, start.seq))
    assert sent["wall_unsynced"] is True
    assert decode_as(EventMessage, event_payload(start.event, start.seq).encode()).wall_unsynced

    wall.step(MONDAY_STEP)  # NTP reaches a server: a step, so read again at once
    event = _help(rig)
    assert not event.wall_unsynced
    assert event.wall_time.startswith("2026-11-30")
    assert "wall_unsynced" not in json.loads(event_payload(event, 9))  # as every older release


def test_the_loop_reads_adjtimex_seldom_and_again_at_once_after_a_step() -> None:
    """Safety rule 3: a burst of events on the loop is not a system call each."""

    class Counting(FakeWallClock):
        reads = 0

        def synchronized(self) -> bool:
            Counting.reads += 1
            return super().synchronized()

    clock = SimClock()
    wall = Counting(clock, FRIDAY, synced=False)
    stamper = WallStamper(wall, clock.monotonic, valid_s=5.0)
    assert [stamper.stamp().synced for _ in range(50)] == [False] * 50
    assert Counting.reads == 1
    wall.synced = True  # slewed into sync without a step: seen within valid_s, not later
    clock.advance(4.9)
    assert not stamper.stamp().synced
    clock.advance(0.2)
    assert stamper.stamp().synced and Counting.reads == 2
    wall.step(-3600.0, synced=False)  # `date -s`: the kernel marks the clock unsynchronised
    assert not stamper.stamp().synced and Counting.reads == 3


def test_an_event_message_without_the_flag_decodes_as_synchronised() -> None:
    event = Event.now(EventType.FALL, "treadmill-1", 1.0, "TRIPPED", "impact")
    data = json.loads(event_payload(event, 1))
    data.pop("wall_unsynced", None)  # what every older release sends
    assert not decode_as(EventMessage, json.dumps(data).encode()).wall_unsynced
    assert not Event.from_dict(data).wall_unsynced
    flagged = Event.from_dict({**event.to_dict(), "wall_unsynced": True})
    assert flagged.wall_unsynced and Event.from_json(flagged.to_json()).wall_unsynced


# ----------------------------------------------------------- the caregiver


def test_a_call_for_help_from_a_monitor_with_its_clock_not_set_pages_the_time_received(
    tmp_path: Path, mosquitto: Mosquitto, receiver: Receiver
) -> None:
    """Device to phone over the broker: the page says when the service received the call for
    help, as received, not the Friday evening the monitor's clock says."""
    service, clock = _fake_clock_service(mosquitto, tmp_path / "caregiver", receiver)
    try:
        (tmp_path / "device").mkdir()
        rig, _ = _unsynced_rig(tmp_path / "device", mqtt=config_for(mosquitto))
        event = _help(rig)
        assert event.wall_unsynced
        assert service.ingestor.wait_for(lambda: service.store.event(event.id) is not None)
        stored = service.store.event(event.id)
        assert stored is not None and stored.wall_unsynced
        assert service.notifier.deliver_due() == 1
        body = receiver.messages[0]["message"]
        received = dt.datetime.fromtimestamp(clock.now, dt.UTC)  # the service's zone: UTC
        assert f"received {received:%a} {received.day} {received:%b %Y}, {received:%H:%M:%S}" in (
            body
        )
        assert f"({CLOCK_NOT_SET})" in body
        assert FRIDAY_WORDS not in body and " at " not in body.split(":")[0]
        # the reminder five minutes on says the same: the time received, as stored
        clock.advance(300)
        assert service.alerting.tick() == 1
        assert service.notifier.deliver_due() == 1
        reminder = receiver.messages[1]["message"]
        assert reminder.startswith("REMINDER") and f"received {received:%a} {received.day}" in (
            reminder
        )
        assert f"({CLOCK_NOT_SET})" in reminder and FRIDAY_WORDS not in reminder
    finally:
        service.stop()


def test_the_retained_incident_and_home_assistant_say_it_opened_with_the_clock_not_set(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """The retained ``incident`` takes its ``opened_wall`` from the opening event's time: the
    Friday evening of the last shutdown. It says so (``opened_unsynced``), and Home Assistant's
    Fall and Incident sensors carry ``clock_not_set`` beside their ``opened`` attribute, so a
    family member is not told the wrong opening time as fact."""
    with subscriber(mosquitto, ["retroguard/#", "homeassistant/#"]) as sub:
        rig, _ = _unsynced_rig(tmp_path, mqtt=config_for(mosquitto))
        event = _help(rig)
        assert event.wall_unsynced and event.incident is not None

        def shown() -> list[dict[str, Any]]:
            bodies = [json.loads(m.payload) for m in sub.on("/incident")]
            return [b for b in bodies if b.get("incident") == event.incident and b["open"]]

        assert sub.wait(lambda: bool(shown()) and bool(sub.on("/config")))
        body = validate("incident", sub.on("/incident")[-1].payload)
        assert body["opened_wall"] == event.wall_time and body["opened_unsynced"] is True
        ha = HomeAssistant()
        ha.receive_all((m.topic, m.payload, m.retain) for m in sub.messages)
        for key in ("_fall", "_incident"):
            attributes = ha.attributes[ha.component(key).key]
            assert attributes["opened"] == event.wall_time
            assert attributes["clock_not_set"] is True
    # an older device's message, without the flag: opened with the clock set
    older = json.dumps({k: v for k, v in body.items() if k != "opened_unsynced"}).encode()
    assert decode_as(IncidentMessage, older).opened_unsynced is False
    ha.receive(sub.on("/incident")[-1].topic, older, retain=True)
    assert ha.attributes[ha.component("_incident").key]["clock_not_set"] is False


def test_the_retained_state_and_home_assistant_say_its_time_was_stamped_with_the_clock_not_set(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Home Assistant shows the retained ``state``'s ``wall_time`` as ``since`` (Fault, Safety
    state): stamped by the loop before NTP set its clock, the message says so
    (``wall_unsynced``, the loop's stamp carried by the courier) and both sensors carry
    ``clock_not_set``."""
    with subscriber(mosquitto, ["retroguard/#", "homeassistant/#"]) as sub:
        _unsynced_rig(tmp_path, mqtt=config_for(mosquitto))

        def armed() -> bool:
            return any(json.loads(m.payload)["state"] == "ARMED" for m in sub.on("/state"))

        assert sub.wait(lambda: armed() and bool(sub.on("/config")))
        body = validate("state", sub.on("/state")[-1].payload)
        assert body["state"] == "ARMED" and body["wall_unsynced"] is True
        assert body["wall_time"].startswith("2026-11-27T18:0")  # the shutdown's time
        ha = HomeAssistant()
        ha.receive_all((m.topic, m.payload, m.retain) for m in sub.messages)
        for key in ("_fault", "_state"):
            attributes = ha.attributes[ha.component(key).key]
            assert attributes["since"] == body["wall_time"] and attributes["clock_not_set"] is True
    # an older device's message, without the flag: stamped with the clock set
    older = json.dumps({k: v for k, v in body.items() if k != "wall_unsynced"}).encode()
    assert decode_as(StateMessage, older).wall_unsynced is False
    ha.receive(sub.on("/state")[-1].topic, older, retain=True)
    assert ha.attributes[ha.component("_state").key]["clock_not_set"] is False


def _flagged_fall(device: SimDevice, **extra: Any) -> dict[str, Any]:
    device.set_state("TRIPPED", "fall")
    return device.event(
        "fall",
        severity="critical",
        state="TRIPPED",
        reason="impact 3.2 g then lying 83 deg",
        wall_time=FRIDAY.isoformat(timespec="milliseconds"),
        wall_unsynced=True,
        **extra,
    )


def test_the_timeline_and_the_event_page_say_received_for_a_clock_not_set(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = make_config(mosquitto, tmp_path)
    not_set = CLOCK_NOT_SET.replace("'", "&#39;")
    with running_service(config) as service:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        alone = _flagged_fall(device)  # a fall of no incident: its page says when alone
        incident = "1" * 32
        fall = _flagged_fall(device, incident=incident)
        reset = device.reset()  # the device's clock set meanwhile: its own time is shown
        device.event(
            "ok", severity="info", state="ARMED", reason="I'm OK", incident=incident, by="walker"
        )
        assert service.ingestor.wait_for(lambda: service.store.event(reset["id"]) is not None)
        stored = service.store.event(fall["id"])
        assert stored is not None and stored.wall_unsynced
        client = Http(service.port)
        assert client.login() == 303
        _, _, timeline = client.request("GET", "/devices/treadmill-1")
        row = _element(timeline, f'data-event="{fall["id"]}"', "</li>")
        assert "received <time" in row and not_set in row
        assert FRIDAY_WORDS not in row
        reset_row = _element(timeline, f'data-event="{reset["id"]}"', "</li>")
        assert "received" not in reset_row and not_set not in reset_row
        _, _, fleet = client.request("GET", "/")
        listed = _element(fleet, f'data-incident="{incident}"', "</li>")
        assert "received <time" in listed and not_set in listed and FRIDAY_WORDS not in listed
        _, _, page = client.request("GET", f"/events/{alone['id']}")
        when = _element(page, '<p class="when">', "</p>")
        assert "Received <time" in when and not_set in when and FRIDAY_WORDS not in page
        _, _, page = client.request("GET", f"/events/{fall['id']}")
        steps = _element(page, '<ol class="steps">', "</ol>").split("<li")
        (fall_step,) = [s for s in steps if "FALL" in s or "fall" in s.lower()]
        assert "received <time" in fall_step and not_set in fall_step
        assert FRIDAY_WORDS not in page
        device.close()


def _element(html: str, start: str, end: str) -> str:
    begin = html.index(start)
    return html[begin : html.index(end, begin)]


def test_the_live_feed_row_says_received_for_a_clock_not_set() -> None:
    event = StoredEvent(
        id="0" * 32,
        device_id="treadmill-1",
        seq=1,
        type="fall",
        severity="critical",
        state="TRIPPED",
        reason="impact",
        wall_time=FRIDAY.isoformat(),
        received_at=1_800_000_000.0,
        figures={},
        has_window=False,
        acked_by=None,
        acked_at=None,
        ack_confirmed=False,
        wall_unsynced=True,
    )
    assert feed.event_row(event, None).received == CLOCK_NOT_SET
    assert feed.event_row(dataclasses.replace(event, wall_unsynced=False), None).received is None
    incident = Incident(
        "1" * 32, "treadmill-1", "fall", "open", 1_800_000_000.0, FRIDAY.isoformat(), "0" * 32,
        1_800_000_000.0, None, None, None, None, opened_unsynced=True,
    )  # fmt: skip
    assert story.incident_stamped(incident).at == 1_800_000_000.0
    assert feed.incident_row(incident, "Dad's treadmill", None).received == CLOCK_NOT_SET
    synced = dataclasses.replace(incident, opened_unsynced=False)
    assert story.incident_stamped(synced).at == FRIDAY.isoformat()
    assert feed.incident_row(synced, "Dad's treadmill", None).received is None


@pytest.mark.empty_database  # the upgrade from that schema's rows
def test_the_caregiver_database_gains_the_flag_and_keeps_old_events_unflagged(
    caregiver_db: str,
) -> None:
    """Schema 18 adds each event's flag, and each incident's (of its opening event); those
    stored before are not flagged (their devices did not say), and flagged ones are stored and
    read back flagged."""
    with (
        store_at_schema(caregiver_db, 17) as old,
        old.transaction() as tx,
    ):  # the schema of the release before
        tx._db.execute(
            "INSERT INTO events (id, device_id, seq, type, severity, state, reason, "
            "wall_time, received_at) VALUES ('old', 'treadmill-1', 1, 'fall', 'critical', "
            "'TRIPPED', '', '2026-03-01T10:00:00+00:00', 1.0)"
        )
        tx._db.execute(
            "INSERT INTO incidents (id, device_id, severity, status, opened_at, opened_wall, "
            "first_event_id, last_event_at) VALUES (?, 'treadmill-1', 'fall', 'open', 1.0, "
            "'2026-03-01T10:00:00+00:00', 'old', 1.0)",
            ("i" * 32,),
        )
    store = Store(caregiver_db)
    try:
        assert (store.schema.before, store.schema.after) == (17, SCHEMA_VERSION)
        old_event = store.event("old")
        assert old_event is not None and not old_event.wall_unsynced
        with store.transaction() as tx:
            tx.record_event(new_event(2, wall_unsynced=True), 2.0)
        flagged = store.event(f"{2:032x}")
        assert flagged is not None and flagged.wall_unsynced and flagged.received_at == 2.0
        old_incident = store.incident("i" * 32)
        assert old_incident is not None and not old_incident.opened_unsynced
        with store.transaction() as tx:
            tx.open_incident(
                "j" * 32, "treadmill-1", "fall", f"{2:032x}", FRIDAY.isoformat(), 2.0,
                wall_unsynced=True,
            )  # fmt: skip
        flagged_incident = store.incident("j" * 32)
        assert flagged_incident is not None and flagged_incident.opened_unsynced
    finally:
        store.close()
