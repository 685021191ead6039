"""``/api/alarms``: the critical events a dashboard page whose live feed broke must still alarm for.

A page is rendered with the newest critical event of each open (unacknowledged) incident it
shows (``data-alarmed``) and adds those its feed brings; once a broken feed is back it asks
for the open incidents with a critical event, each with its newest critical event, and
alarms for those it does not know (``static/app.js``). No times: the instances' clocks and
the page's need not agree. The answer is the caregiver's devices' only, as every other page
and endpoint is. Both engines. The browser's side: tests/test_caregiver_browser.py.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from caregiver.changes import EventStored, encode
from caregiver.config import PolicyConfig
from caregiver.localtime import iso_of
from caregiver.service import CaregiverService
from caregiver.storage import SCHEMA_VERSION, StorageFault, Store
from tests.caregiver_db import store_at_schema
from tests.caregiver_support import (
    WAIT,
    FakeClock,
    Http,
    SimDevice,
    make_config,
    running_service,
)
from tools.broker import Mosquitto
from tools.pgcluster import PostgresCluster

JSON = {"accept": "application/json"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str, clock: FakeClock
) -> Iterator[CaregiverService]:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False, clock=clock) as s:
        yield s


def _alarms(client: Http) -> list[dict[str, Any]]:
    status, _, body = client.request("GET", "/api/alarms", headers=JSON)
    assert status == 200, body
    alarms: list[dict[str, Any]] = json.loads(body)["alarms"]
    return alarms


def _sounded(client: Http) -> list[dict[str, Any]]:
    """What a page whose feed broke alarms for: the urgent ones (a fault, an offline monitor
    is listed too, amber, as still open, and sounds nothing)."""
    return [a for a in _alarms(client) if a["urgent"]]


def _alarmed(client: Http) -> list[str]:
    """What a page rendered now knows of (its ``data-alarmed``)."""
    ids: list[str] = json.loads(
        html.unescape(_on_the_fleet_page(client, r'data-alarmed="([^"]*)"'))
    )
    return ids


def _stored(service: CaregiverService, event: dict[str, Any]) -> None:
    assert service.ingestor.wait_for(lambda: service.store.event(event["id"]) is not None)


def test_open_critical_incidents_of_the_caregiver_s_devices_only_newest_first(
    service: CaregiverService, mosquitto: Mosquitto, clock: FakeClock
) -> None:
    service.accounts.add_user("bob", "another good password")
    assert service.accounts.limit("bob", ["treadmill-2"])
    dad, mine, third = (SimDevice(mosquitto, f"treadmill-{n}") for n in (1, 2, 3))
    try:
        for device in (dad, mine, third):
            device.online()
        shown = dad.incident_fall()
        _stored(service, shown["window"])
        ann, bob = Http(service.port), Http(service.port)
        assert ann.login() == 303 and bob.login("bob", "another good password") == 303
        rendered = _alarmed(ann)
        assert rendered == [shown["fall"]["id"]]
        # the clock steps back (NTP; or another instance's is behind): it does not matter
        clock.advance(-600)
        missed = dad.incident_fall()
        _stored(service, missed["window"])
        clock.advance(1)
        theirs = mine.incident_fall()
        _stored(service, theirs["window"])
        clock.advance(1)
        again = dad.event(  # the shown incident's second critical event
            "no_recovery",
            severity="critical",
            state="TRIPPED",
            reason="still lying",
            incident=shown["incident"],
        )
        _stored(service, again)
        stumble = third.stumble()  # open, but not critical
        _stored(service, stumble)
        acknowledged = third.incident_fall()
        _stored(service, acknowledged["window"])
        page = f"/events/{acknowledged['fall']['id']}"
        status, _, _ = ann.acknowledge(page, f"{page}/ack")
        assert status in (200, 303)

        def alarm(
            device: str, name: str, ids: dict[str, Any], event: str, text: str = "FALL"
        ) -> dict[str, Any]:
            return {
                "device_id": device,
                "device_name": name,
                "incident": ids["incident"],
                "text": f"{text} on {name}",  # as the live feed words the event's alarm
                "link": f"/events/{ids['trip']['id']}",
                "event": event,
                "urgent": True,
                "paging": True,
                "pages_in": None,
                "pages_at": None,
            }

        found = _alarms(ann)
        held = found.pop()  # the stumble, listed last: held for the walker's reset
        assert (held["device_id"], held["event"], held["urgent"], held["paging"]) == (
            "treadmill-3",
            stumble["id"],
            False,
            False,
        )
        assert found == [
            alarm(
                "treadmill-1", "Dad's treadmill", shown, again["id"], "NOT GETTING UP after a fall"
            ),
            alarm("treadmill-2", "treadmill-2", theirs, theirs["fall"]["id"]),
            alarm("treadmill-1", "Dad's treadmill", missed, missed["fall"]["id"]),
        ]
        # what the page alarms for: those it was not rendered with
        assert [a["event"] for a in found if a["event"] not in rendered] == [
            again["id"],
            theirs["fall"]["id"],
            missed["fall"]["id"],
        ]
        assert _alarmed(ann) == [a["event"] for a in found]  # a page rendered now: none
        assert [a["device_id"] for a in _alarms(bob)] == ["treadmill-2"]  # his devices only
        assert _alarmed(bob) == [theirs["fall"]["id"]]

        anybody = Http(service.port)
        status, _, _ = anybody.request("GET", "/api/alarms", headers=JSON)
        assert status == 401
    finally:
        for device in (dad, mine, third):
            device.close()


def test_an_alert_that_pages_without_a_fall_is_listed_too_at_its_urgency(
    service: CaregiverService, mosquitto: Mosquitto, clock: FakeClock
) -> None:
    """Dad's treadmill called for help; Mum's monitor went offline while armed, which pages
    the contacts too. The page's "Still open" (after acknowledging something else) is the
    service's list: it said "HELP requested on Dad's treadmill" alone, and a caregiver
    thought Mum's treadmill quiet. Each is named in its own words, the call for help urgent
    (red, beeping), the monitor gone offline not (amber). A stumble held for the walker's
    "I'm OK" pages nobody yet: it was listed nowhere, though its card was amber and it pages
    unanswered; it is listed last, never urgent, saying it waits for the walker's reset and
    when it will page (the service's zone), and named as any once its grace runs out.
    Acknowledging the offline alert ends it."""
    dad, mum, third = (SimDevice(mosquitto, f"treadmill-{n}") for n in (1, 2, 3))
    try:
        for device in (dad, mum, third):
            device.online()
        helped = dad.event("help", severity="critical", state="ARMED", reason="help button")
        _stored(service, helped)
        stumble = third.stumble()  # held for the walker's reset: paging nobody yet
        _stored(service, stumble)
        mum.offline()

        def offline_alert() -> list[Any]:
            return [a for a in service.store.alerts("treadmill-2") if a.status == "paging"]

        assert service.ingestor.wait_for(offline_alert, WAIT)
        (alert,) = offline_alert()
        ann = Http(service.port)
        assert ann.login() == 303
        (held,) = service.store.alerts("treadmill-3")
        assert held.status == "held" and held.next_at is not None
        pages_at = datetime.fromtimestamp(held.next_at, UTC).strftime("%H:%M:%S\u00a0UTC")
        found = _alarms(ann)
        assert [(a["device_id"], a["text"], a["urgent"], a["paging"]) for a in found] == [
            ("treadmill-1", "HELP requested on Dad's treadmill", True, True),
            ("treadmill-2", "Monitor went offline while armed on treadmill-2", False, True),
            (
                "treadmill-3",
                "Stumble on treadmill-3 — waiting for the walker to reset; "
                f"caregivers are alerted at {pages_at} if not",
                False,
                False,
            ),
        ]
        assert found[2]["link"] == f"/events/{stumble['id']}"
        # when it pages, by the service's clock: the page asks again then (app.js)
        pages_in = held.next_at - clock()
        assert found[2]["pages_in"] == pages_in and found[1]["pages_in"] is None
        # and the moment it pages, for the page to say in the reader's zone (time.js)
        iso = iso_of(datetime.fromtimestamp(held.next_at, UTC))
        assert found[2]["pages_at"] == {"iso": iso, "text": pages_at, "format": "time"}
        assert found[1]["pages_at"] is None
        offline = found[1]
        assert offline["incident"] == ""  # an alert outside incidents
        assert offline["link"] == "/devices/treadmill-2"
        assert offline["event"] == f"alert-{alert.id}"  # what the page remembers it by
        status, _, _ = ann.request("GET", offline["link"])
        assert status == 200
        # a page's first render alarms (beeps) for the call for help only, as before
        assert _alarmed(ann) == [helped["id"]]

        status, headers, body = ann.acknowledge("/", "/devices/treadmill-2/ack")
        assert status in (200, 303), body
        assert [a["device_id"] for a in _alarms(ann)] == ["treadmill-1", "treadmill-3"]
        # the page a plain form post is sent back to lists it too, in amber
        _, _, page = ann.request("GET", headers["location"])
        assert (
            f'<a href="/events/{stumble["id"]}" class="still-open-link still-open-warn"'
            f' data-pages-in="{pages_in}">'
            'Stumble on treadmill<span class="nowrap">-3</span> — waiting for the walker to '
            "reset; "
            # the service's zone, named, until the browser says it in its own
            f'caregivers are alerted at <time datetime="{iso}" data-format="time">'
            f"{pages_at}</time> if not</a>"
        ) in page
        clock.advance(held.next_at - clock() + 1)
        # its time gone by, still held (the escalation has not acted yet): what happened,
        # not a promise of a time past
        assert [(a["text"], a["paging"], a["pages_in"]) for a in _alarms(ann)][1:] == [
            (
                f"Stumble on treadmill-3 — not reset by {pages_at}, "
                "when caregivers were to be alerted",
                False,
                None,
            )
        ]
        assert service.alerting.tick() == 1  # the grace ran out: it pages now
        assert [(a["text"], a["urgent"], a["paging"]) for a in _alarms(ann)][1:] == [
            ("Stumble not reset on treadmill-3", False, True)
        ]
    finally:
        for device in (dad, mum, third):
            device.close()


def test_a_stumble_paging_at_once_is_listed_as_what_happened_not_as_not_reset(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """Under ``policy.stumble = "page"`` nobody waits for the walker's reset: the "Still
    open" notice said "Stumble not reset on treadmill-3" of a stumble a second old."""
    config = make_config(
        mosquitto, tmp_path, database=caregiver_db, policy=PolicyConfig(stumble="page")
    )
    with running_service(config, background=False, clock=FakeClock()) as service:
        third = SimDevice(mosquitto, "treadmill-3")
        try:
            third.online()
            _stored(service, third.stumble())
            assert service.ingestor.wait_for(
                lambda: [a.status for a in service.store.alerts("treadmill-3")] == ["paging"]
            )
            ann = Http(service.port)
            assert ann.login() == 303
            assert [(a["text"], a["urgent"], a["paging"]) for a in _alarms(ann)] == [
                ("Stumble — belt stopped on treadmill-3", False, True)
            ]
        finally:
            third.close()


def test_a_held_stumble_at_its_time_to_page_is_said_due_with_no_seconds_left(
    service: CaregiverService, mosquitto: Mosquitto, clock: FakeClock
) -> None:
    """At the very second a held stumble is due to page (the escalation pages an alert whose
    time is not after now), the list says what happened, "not reset by", and gives the
    page no seconds to wait (``pages_in`` None): before it, it says when, and how long. Said
    "alerted at ... if not" with 0 seconds left, it is a promise of a time that has come,
    which the escalation's tick takes as due."""
    third = SimDevice(mosquitto, "treadmill-3")
    try:
        third.online()
        _stored(service, third.stumble())
        (held,) = service.store.alerts("treadmill-3")
        assert held.status == "held" and held.next_at is not None
        pages_at = datetime.fromtimestamp(held.next_at, UTC).strftime("%H:%M:%S\u00a0UTC")
        ann = Http(service.port)
        assert ann.login() == 303
        clock.now = held.next_at - 0.5
        ((text, pages_in),) = [(a["text"], a["pages_in"]) for a in _alarms(ann)]
        assert text.endswith(f"caregivers are alerted at {pages_at} if not")
        assert pages_in == 0.5
        # the page with the stumble's amber card renders the notice the same, by that clock
        _, _, page = ann.request("GET", "/", headers={"accept": "text/html"})
        assert 'data-pages-in="0.5">' in page
        clock.now = held.next_at
        assert [(a["text"], a["pages_in"]) for a in _alarms(ann)] == [
            (
                f"Stumble on treadmill-3 — not reset by {pages_at}, "
                "when caregivers were to be alerted",
                None,
            )
        ]
        assert service.alerting.tick() == 1  # due now: it pages
    finally:
        third.close()


def test_an_incident_with_many_critical_events_does_not_hide_another_device_s_fall(
    service: CaregiverService, mosquitto: Mosquitto, clock: FakeClock
) -> None:
    """A device flapping (one open incident, many critical events) is one alarm; a fall on
    another device is still there (before: the answer counted events, oldest first, and a
    hundred of one incident's hid the fall)."""
    flapping, other = SimDevice(mosquitto, "treadmill-1"), SimDevice(mosquitto, "treadmill-2")
    try:
        flapping.online()
        other.online()
        first = flapping.incident_fall()
        last: dict[str, Any] = {}
        for _ in range(120):
            last = flapping.event(
                "no_recovery",
                severity="critical",
                state="TRIPPED",
                reason="still lying",
                incident=first["incident"],
            )
        _stored(service, last)
        clock.advance(1)
        fall = other.incident_fall()
        _stored(service, fall["window"])
        ann = Http(service.port)
        assert ann.login() == 303
        assert [(a["incident"], a["event"]) for a in _alarms(ann)] == [
            (fall["incident"], fall["fall"]["id"]),
            (first["incident"], last["id"]),
        ]
    finally:
        flapping.close()
        other.close()


def _on_the_fleet_page(client: Http, pattern: str) -> str:
    """What ``pattern``'s group finds in the fleet page as ``client``'s browser gets it."""
    status, _, page = client.request("GET", "/", headers={"accept": "text/html"})
    assert status == 200
    found = re.search(pattern, page)
    assert found
    return found[1]


class _Stream:
    """A logged-in page's ``/stream``."""

    def __init__(self, port: int, client: Http) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        self.conn.request(
            "GET", "/stream", headers={"accept": "text/event-stream", "cookie": cookie}
        )
        self.response = self.conn.getresponse()
        assert self.response.status == 200

    def hello(self) -> str:
        """The marker of the stream's first message."""
        while True:
            line = self.response.readline().decode()
            assert line, "the stream ended"
            if line.startswith("data: "):
                message = json.loads(line[6:])
                assert message["kind"] == "hello"
                return str(message["changes"])

    def ends(self) -> bool:
        """The stream ends (keepalives are read past; a stream left open times out: a
        failure): its response's body ends, as the browser's EventSource sees it. Read
        through the response (its chunks decoded), not the socket under it, which stayed open
        after the body's last chunk until uvicorn closed the idle connection (its keep-alive
        timeout, 5 s): each of the tests below waited for that."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if not self.response.readline():
                return True
        return False

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _marker(client: Http) -> str:
    return _on_the_fleet_page(client, r'data-changes="([^"]*)"')


def test_a_take_the_feed_cannot_read_ends_every_stream_so_the_pages_catch_up(
    service: CaregiverService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another instance's event reaches this one's feed without its row: the feed reads it.
    When that read fails, the change cannot reach the pages: every stream ends, so each
    page reconnects, its hello differs from its render's marker, and it fetches itself and
    asks for the alarms it missed (before: the take was dropped with no stream ending, and
    the fall never alarmed)."""
    ann = Http(service.port)
    assert ann.login() == 303
    rendered = _marker(ann)
    with _Stream(service.port, ann) as stream:
        assert stream.hello() == rendered

        def unreadable(ids: object) -> object:
            raise StorageFault("the database went away")

        monkeypatch.setattr(service.store, "events_by_id", unreadable)
        service._heard(encode(EventStored("treadmill-1", "a-fall-on-b"), "instance-b"))
        assert stream.ends()
    monkeypatch.undo()
    with _Stream(service.port, ann) as again:
        assert again.hello() != rendered


def test_listening_again_after_a_loss_ends_every_stream_so_the_pages_catch_up(
    mosquitto: Mosquitto, tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """The connection that hears the other instances dropped: what they announced meanwhile
    was not heard. Once it listens again every stream ends and the marker moves on, so each
    page fetches itself and asks for the alarms it missed."""
    import psycopg

    url = postgres_cluster.new_database()
    with running_service(make_config(mosquitto, tmp_path, database=url), background=False) as s:
        assert s.listener is not None and s.listener.listening.wait(WAIT)
        ann = Http(s.port)
        assert ann.login() == 303
        rendered = _marker(ann)
        with _Stream(s.port, ann) as stream:
            assert stream.hello() == rendered
            with psycopg.connect(url, autocommit=True) as db:
                killed = db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
                ).fetchall()
            assert killed == [(True,)]
            assert stream.ends()
        with _Stream(s.port, ann) as again:
            assert again.hello() != rendered


def test_a_limited_caregiver_s_page_marker_moves_only_with_their_devices(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    """``data-changes`` and the stream's hello say nothing of devices the caregiver may not
    see: another device's fall leaves Bob's marker as it was, Ann's moves on."""
    service.accounts.add_user("bob", "another good password")
    assert service.accounts.limit("bob", ["treadmill-2"])
    ann, bob = Http(service.port), Http(service.port)
    assert ann.login() == 303 and bob.login("bob", "another good password") == 303
    dad = SimDevice(mosquitto, "treadmill-1")
    try:
        dad.online()
        assert service.ingestor.wait_for(lambda: service.store.device("treadmill-1") is not None)
        theirs, mine = _marker(bob), _marker(ann)
        fall = dad.incident_fall()
        _stored(service, fall["window"])
        assert _marker(bob) == theirs and _marker(ann) != mine
        with _Stream(service.port, bob) as stream:
            assert stream.hello() == theirs
    finally:
        dad.close()


def _a_fall_missed(service: CaregiverService, dad: SimDevice) -> tuple[dict[str, Any], Http]:
    """``dad`` comes online and falls; ann logs in and /api/alarms names the fall. The fall's
    events by name, and ann's client."""
    dad.online()
    ids = dad.incident_fall()
    _stored(service, ids["window"])
    ann = Http(service.port)
    assert ann.login() == 303
    assert [a["event"] for a in _alarms(ann)] == [ids["fall"]["id"]]
    return ids, ann


def test_an_acknowledged_fall_reopened_by_a_fault_is_not_missed_again(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    """A caregiver closed the fall; then a fault reopens its incident (a warning, not
    critical): the reopened incident has no unacknowledged critical event, so a page that
    reconnects does not sound 'FALL' for the fall already acknowledged (before: it named
    the acknowledged fall)."""
    dad = SimDevice(mosquitto, "treadmill-1")
    try:
        ids, ann = _a_fall_missed(service, dad)
        page = f"/events/{ids['fall']['id']}"
        status, _, _ = ann.acknowledge(page, f"{page}/ack")
        assert status in (200, 303)
        fault = dad.event(
            "fault", severity="warning", state="FAULT", reason="IMU lost", incident=ids["incident"]
        )
        _stored(service, fault)
        incident = service.store.incident(ids["incident"])
        assert incident is not None and incident.open  # reopened by the fault
        assert _sounded(ann) == []
        # the fault pages: still open, in its own words, amber
        assert [(a["text"], a["urgent"]) for a in _alarms(ann)] == [
            ("Monitor fault on Dad's treadmill", False)
        ]
    finally:
        dad.close()


@pytest.mark.parametrize("closed_by", ["walker", "home-assistant", "no-recovery link"])
def test_a_fall_closed_without_the_dashboard_and_reopened_by_a_fault_is_not_missed_again(
    service: CaregiverService, mosquitto: Mosquitto, closed_by: str
) -> None:
    """The walker's I'm OK, Home Assistant (relayed by the device) or a notification's link
    for the incident's no-recovery closed the fall: none of them marks the fall itself
    acknowledged. A fault then reopens the incident: its critical events were all closed,
    so neither a page rendered now nor a page that reconnects alarms for them (before: the
    reopened incident's fall was named again, as if nobody had answered). A critical event
    after the close is news, and is named."""
    dad = SimDevice(mosquitto, "treadmill-1")
    try:
        ids, ann = _a_fall_missed(service, dad)
        incident = ids["incident"]
        if closed_by == "walker":
            closing = dad.event(
                "ok",
                severity="info",
                state="TRIPPED",
                reason="I'm OK",
                incident=incident,
                by="walker",
            )
            _stored(service, closing)
        elif closed_by == "home-assistant":
            closing = dad.event(
                "closed",
                severity="info",
                state="TRIPPED",
                reason="acknowledged",
                incident=incident,
                by="home-assistant",
                via="home-assistant",
            )
            _stored(service, closing)
        else:
            lying = dad.event(
                "no_recovery",
                severity="critical",
                state="TRIPPED",
                reason="still lying",
                incident=incident,
            )
            _stored(service, lying)
            assert [a["event"] for a in _alarms(ann)] == [lying["id"]]
            service.acknowledge("treadmill-1", lying["id"], "ann", via="notification")
        closed = service.store.incident(incident)
        assert closed is not None and not closed.open
        assert _alarms(ann) == [] and _alarmed(ann) == []
        fault = dad.event(
            "fault", severity="warning", state="FAULT", reason="IMU lost", incident=incident
        )
        _stored(service, fault)
        reopened = service.store.incident(incident)
        assert reopened is not None and reopened.open  # reopened by the fault
        assert _sounded(ann) == [] and _alarmed(ann) == []
        news = dad.event(  # after the close: the caregivers have not heard of this one
            "help", severity="critical", state="FAULT", reason="help pressed", incident=incident
        )
        _stored(service, news)
        assert [a["event"] for a in _alarms(ann)] == [news["id"]]
        assert _alarmed(ann) == [news["id"]]
    finally:
        dad.close()


@pytest.mark.empty_database  # the upgrade from that schema's rows
def test_incidents_closed_before_the_upgrade_keep_their_answered_fall_across_a_reopen(
    caregiver_db: str,
) -> None:
    """Schema 12 keeps each incident's newest critical event when it was closed. The upgrade
    gives every closed incident its own (the newest by the device's sequence, not by arrival),
    so one reopened after the upgrade does not alarm for its fall; one closed with no critical
    event has none, and a fall that reopens it alarms."""
    with (
        store_at_schema(caregiver_db, 11) as old,
        old.transaction() as tx,
    ):  # the schema of the release before
        for incident, severity in (("fell", "fall"), ("tripped", "stumble")):
            tx._db.execute(
                "INSERT INTO incidents (id, device_id, severity, status, opened_at, "
                "opened_wall, first_event_id, last_event_at, closed_at, closed_by, "
                "closed_via, closed_severity) VALUES (?, 'treadmill-1', ?, 'closed', 1.0, "
                "'2026-03-01T10:00:00+00:00', ?, 2.0, 3.0, 'walker', 'walker', ?)",
                (incident, severity, f"{incident}-1", severity),
            )
        for event, incident, seq, kind, severity, received in (
            ("fell-1", "fell", 1, "stumble", "warning", 1.0),
            ("fell-2", "fell", 2, "fall", "critical", 1.5),
            ("fell-3", "fell", 3, "no_recovery", "critical", 1.2),  # came first, is newer
            ("tripped-1", "tripped", 4, "stumble", "warning", 1.0),
        ):
            tx._db.execute(
                "INSERT INTO events (id, device_id, seq, type, severity, state, reason, "
                "wall_time, received_at, incident) VALUES (?, 'treadmill-1', ?, ?, ?, "
                "'TRIPPED', '', '2026-03-01T10:00:00+00:00', ?, ?)",
                (event, seq, kind, severity, received, incident),
            )
    store = Store(caregiver_db)
    try:
        assert (store.schema.before, store.schema.after) == (11, SCHEMA_VERSION)
        with store.transaction() as tx:  # faults reopen both
            tx.reopen_incident("fell", "fall", 4.0)
            tx.reopen_incident("tripped", "stumble", 4.0)
        assert store.open_critical(None, 50) == []
        with store.transaction() as tx:
            tx._db.execute(
                "INSERT INTO events (id, device_id, seq, type, severity, state, reason, "
                "wall_time, received_at, incident) VALUES ('tripped-2', 'treadmill-1', 5, "
                "'fall', 'critical', 'TRIPPED', '', '2026-03-01T10:01:00+00:00', 5.0, 'tripped')"
            )
        assert [(i.id, event) for i, event in store.open_critical(None, 50)] == [
            ("tripped", "tripped-2")
        ]
        with store.transaction() as tx:  # closed again, and reopened: answered now
            assert tx.close_incident("tripped", "ann", "dashboard", 6.0)
            tx.reopen_incident("tripped", "fall", 7.0)
        assert store.open_critical(None, 50) == []
    finally:
        store.close()


@pytest.mark.empty_database  # the upgrade from that schema's rows
def test_incidents_reopened_before_the_upgrade_learn_what_their_close_answered(
    caregiver_db: str,
) -> None:
    """Schema 13 fills in the critical event an incident reopened before schema 12 was closed
    with: the newest numbered below its last closing event (the walker's I'm OK), else the
    one its answered alert was about (a close with no closing event stored). A fall answered
    before the upgrade is then not alarmed again; a call for help after the OK is, and so is
    a fall nobody answered (before: every incident reopened before the upgrade alarmed)."""
    with store_at_schema(caregiver_db, 12) as old:  # the schema of the release before
        with old.transaction() as tx:
            for incident, closed in (
                ("helped", "fall"),  # fall, I'm OK, fault (reopened), help
                ("quiet", "fall"),  # fall, I'm OK, fault (reopened)
                ("acked", "fall"),  # fall acknowledged, its closing event not stored; fault
                ("unanswered", None),  # a fall, never closed
            ):
                tx._db.execute(
                    "INSERT INTO incidents (id, device_id, severity, status, opened_at, "
                    "opened_wall, first_event_id, last_event_at, closed_severity) VALUES "
                    "(?, 'treadmill-1', 'fall', 'open', 1.0, '2026-03-01T10:00:00+00:00', ?, "
                    "2.0, ?)",
                    (incident, f"{incident}-1", closed),
                )
            for event, incident, seq, kind, severity, received in (
                ("helped-1", "helped", 1, "fall", "critical", 1.0),
                ("helped-2", "helped", 2, "ok", "info", 2.0),
                ("helped-3", "helped", 3, "fault", "warning", 3.0),
                ("helped-4", "helped", 4, "help", "critical", 4.0),
                ("quiet-1", "quiet", 5, "fall", "critical", 5.0),
                ("quiet-2", "quiet", 6, "ok", "info", 6.0),
                ("quiet-3", "quiet", 7, "fault", "warning", 7.0),
                ("acked-1", "acked", 8, "fall", "critical", 8.0),
                ("acked-2", "acked", 9, "fault", "warning", 9.0),
                ("unanswered-1", "unanswered", 10, "fall", "critical", 10.0),
            ):
                tx._db.execute(
                    "INSERT INTO events (id, device_id, seq, type, severity, state, reason, "
                    "wall_time, received_at, incident) VALUES (?, 'treadmill-1', ?, ?, ?, "
                    "'TRIPPED', '', '2026-03-01T10:00:00+00:00', ?, ?)",
                    (event, seq, kind, severity, received, incident),
                )
            for kind, event, status, incident in (
                ("fall", "acked-1", "acknowledged", "acked"),
                ("fault", "acked-2", "paging", "acked"),  # the reopening's own
            ):
                tx._db.execute(
                    "INSERT INTO alerts (kind, device_id, event_id, status, created_at, "
                    "incident) VALUES (?, 'treadmill-1', ?, ?, 1.0, ?)",
                    (kind, event, status, incident),
                )
        assert [i.id for i, _ in old.open_critical(None, 50)] == [
            "unanswered",
            "acked",
            "quiet",
            "helped",
        ]
    store = Store(caregiver_db)
    try:
        assert (store.schema.before, store.schema.after) == (12, SCHEMA_VERSION)
        assert [(i.id, event) for i, event in store.open_critical(None, 50)] == [
            ("unanswered", "unanswered-1"),
            ("helped", "helped-4"),
        ]
    finally:
        store.close()


def test_a_card_tells_a_fall_answered_before_a_fault_reopened_it_from_a_new_fall(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    """The walker's I'm OK answered the fall; a fault reopens the incident: the card and the
    fleet's list of incidents say a new alert waits (amber), not 'FALL — not acknowledged'.
    A call for help after that is news again: red, and named as it is."""
    dad = SimDevice(mosquitto, "treadmill-1")
    try:
        dad.online()
        ids = dad.incident_fall()
        incident = ids["incident"]
        ok = dad.event("ok", severity="info", state="TRIPPED", reason="I'm OK", incident=incident)
        _stored(service, ok)
        fault = dad.event(
            "fault", severity="warning", state="FAULT", reason="IMU lost", incident=incident
        )
        _stored(service, fault)
        card = service.store.device("treadmill-1")
        assert card is not None and card["incident"] is not None
        assert card["incident"]["status"] == "open" and card["incident"]["answered"]
        (listed,) = service.store.recent_incidents()
        assert listed.open and listed.answered
        ann = Http(service.port)
        assert ann.login() == 303
        page = _on_the_fleet_page(ann, r'(<article class="card[^>]*>)')
        assert 'data-level="warn"' in page
        headline = "New alert after the fall was answered — not acknowledged"
        assert headline in ann.request("GET", "/", headers={"accept": "text/html"})[2]

        help_ = dad.event(
            "help", severity="critical", state="FAULT", reason="help pressed", incident=incident
        )
        _stored(service, help_)
        card = service.store.device("treadmill-1")
        assert card is not None and card["incident"] is not None
        assert not card["incident"]["answered"]
        assert 'data-level="danger"' in _on_the_fleet_page(ann, r'(<article class="card[^>]*>)')
    finally:
        dad.close()
