"""An incident names its walker: the device puts the walker its incident record chose on the
event payload (absent for the default walker), the caregiver stores it with the incident, and
a walker's report counts their incidents from it, not from when their sessions were."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import msgspec
import pytest

from caregiver.progress import parse_summary
from caregiver.report import incidents_during, walker_incidents
from caregiver.storage.records import Incident
from core.plan_presets import PRESETS
from core.protocol.payloads import event_payload
from firmware.session.record import session_payload
from firmware.session.runner import attach_session, detach_session
from firmware.storage.sessions import load_sessions
from firmware.storage.walkers import roster
from tests.app_support import TripAt, close_rigs, make_rig, pump_link_until
from tests.caregiver_support import Http, running_service, session_record
from tests.caregiver_support import make_config as caregiver_config
from tests.mqtt_helpers import WAIT, Subscriber, config_for, validate
from tests.test_walkers import ANNA, BEN, Heard, _double_press, _registered, _until_chosen
from tools.broker import Mosquitto

DEVICE = "treadmill-1"

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)


def _incidents_in_report(web: Http, walker: str) -> int:
    import csv
    import io

    status, _, text = web.request("GET", f"/devices/{DEVICE}/report.csv?walker={walker}")
    assert status == 200
    return sum(int(week["incidents"]) for week in csv.DictReader(io.StringIO(text)))


def _walkers_of_the_incident(sub: Subscriber) -> set[object]:
    """The walkers the incident's events name on the wire, once the trip (a stumble) and the
    recording around it (a window event) are both out."""

    def published() -> list[dict[str, object]]:
        return [validate("event", m.payload) for m in sub.on("/event")]

    assert sub.wait(lambda: {"stumble", "window"} <= {e["type"] for e in published()})
    of_incident = [e for e in published() if e.get("incident") is not None]
    assert {e["type"] for e in of_incident} >= {"stumble", "window"}
    return {e.get("walker") for e in of_incident}


def test_an_incident_opened_while_ben_is_chosen_is_ben_s_on_the_caregiver(
    tmp_path: Path, mosquitto: Mosquitto, caregiver_db: str
) -> None:
    """Real Mosquitto, the monitor on simulated hardware, the caregiver service (SQLite and
    PostgreSQL): Ben chosen with the button, a trip opens an incident; every event of it names
    Ben on the wire, the caregiver stores Ben with it, and Ben's report counts it, Anna's does
    not — although it opened while Anna's session was under way, which the guess from session
    times would have given her."""
    (tmp_path / "cg").mkdir()
    config = caregiver_config(mosquitto, tmp_path / "cg", database=caregiver_db)
    with running_service(config, background=False) as cg:
        now = dt.datetime.now(dt.UTC)
        # Anna's 30-minute session began 10 minutes ago (her walking now); Ben's, two days ago
        for walker, started in (
            (ANNA, now - dt.timedelta(minutes=10)),
            (BEN, now - dt.timedelta(days=2)),
        ):
            record = msgspec.structs.replace(
                session_record(DEVICE, started, backward_min=10, longest_min=10), walker=walker
            )
            row, problem = parse_summary(json.loads(session_payload(record)), DEVICE)
            assert row is not None, problem
            cg.store.record_walk_session(row, session_payload(record), now.timestamp())
        assert sorted(cg.store.walkers(DEVICE)) == [("anna", "Anna"), ("ben", "Ben")]

        _registered(tmp_path)
        rig = make_rig(tmp_path, detector=TripAt(8.0), mqtt=config_for(mosquitto))
        sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/event"])
        try:
            heard = Heard()
            runner = attach_session(rig.app, PRESETS["alternate-2-2"], speaker=heard)
            assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
            rig.run_for(1.0)
            for count, expected in ((1, ANNA), (2, BEN)):
                _double_press(rig)
                _until_chosen(rig, runner, count)
                assert runner.walker == expected
                rig.run_for(1.0)
            # the courier has stored the choice the incident record reads
            assert pump_link_until(
                rig.app.link, lambda: rig.courier.db.read(roster).selected == BEN
            )
            rig.press_reset()
            assert rig.state == "ARMED"
            rig.run_for(4.0)
            assert rig.state == "TRIPPED"
            rig.run_for(10.0)  # the recording around the trip follows as a window event
            assert _walkers_of_the_incident(sub) == {"ben"}
            detach_session(rig.app, runner)
        finally:
            sub.close()

        assert cg.ingestor.wait_for(lambda: len(cg.store.incidents_for(DEVICE, 10)) == 1, WAIT)
        (incident,) = cg.store.incidents_for(DEVICE, 10)
        assert incident.walker == "ben"
        sessions = cg.store.walk_sessions(DEVICE, walker="anna")
        assert incidents_during([incident], sessions) == [incident]  # what the guess would say

        web = Http(cg.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/progress?walker=ben")
        assert status == 200 and f'href="/devices/{DEVICE}/report.csv?walker=ben"' in page
        assert _incidents_in_report(web, "ben") == 1
        assert _incidents_in_report(web, "anna") == 0


def test_a_single_walker_device_s_event_payloads_have_no_walker_key(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A device nobody added a walker to sends, for an incident's events and the retained
    incident, the bytes it sent before profiles: no ``walker`` key (absent is the default
    walker)."""
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/event", f"retroguard/{DEVICE}/incident"])
    try:
        rig = make_rig(tmp_path, detector=TripAt(3.0), mqtt=config_for(mosquitto))
        rig.run_for(1.0)
        rig.press_reset()
        rig.run_for(12.0)
        assert rig.state == "TRIPPED"
        assert sub.wait(lambda: any(b'"window"' in m.payload for m in sub.on("/event")))
        stored = {s.event.id: s for s in rig.app.stored_events()}
        seen = 0
        for message in sub.on("/event"):
            body = json.loads(message.payload)
            assert "walker" not in body
            seen += body.get("incident") is not None
            kept = stored[body["id"]]
            assert message.payload.decode() == event_payload(kept.event, kept.seq)
        assert seen >= 2  # the stumble and its window, at least
        assert sub.wait(lambda: any(b'"incident":' in m.payload for m in sub.on("/incident")))
        for message in sub.on("/incident"):
            assert "walker" not in validate("incident", message.payload)
    finally:
        sub.close()


def _incident(incident_id: str, opened_at: float, walker: str | None) -> Incident:
    return Incident(
        incident_id, DEVICE, "stumble", "closed", opened_at, "", incident_id, opened_at,
        None, None, None, None, walker,
    )  # fmt: skip


def test_a_walker_s_incidents_are_those_naming_them_and_unknown_ones_by_their_sessions() -> None:
    """Incidents from before they named their walker (NULL) count, on a device with several
    walkers, for the walker whose session they opened during (up to 5 min after its end);
    with one walker, for them. A named incident counts only for its walker."""
    started = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    anna_session = msgspec.structs.replace(
        session_record(DEVICE, started, backward_min=10, longest_min=10), walker=ANNA
    )
    row, _ = parse_summary(json.loads(session_payload(anna_session)), DEVICE)
    assert row is not None
    t0 = started.timestamp()
    named_ben = _incident("a" * 32, t0 + 60, "ben")  # during Anna's session, but Ben's
    named_anna = _incident("b" * 32, t0 - 86400, "anna")  # outside any session, but Anna's
    unknown_during = _incident("c" * 32, t0 + 120, None)
    unknown_outside = _incident("d" * 32, t0 - 7200, None)
    every = [named_ben, named_anna, unknown_during, unknown_outside]
    assert walker_incidents(every, "anna", [row], several=True) == [named_anna, unknown_during]
    assert walker_incidents(every, "ben", [], several=True) == [named_ben]
    assert walker_incidents(every, "anna", [row], several=False) == [
        named_anna,
        unknown_during,
        unknown_outside,
    ]


def _progress_of(sub: Subscriber) -> list[tuple[object, object]]:
    """(walker id, session) of each retained progress received, oldest first."""
    messages = [validate("progress", m.payload) for m in sub.on("/progress")]
    return [(p["walker"]["id"], p["session"]) for p in messages]


def test_a_walker_chosen_with_the_cli_mid_session_walks_next_and_the_incident_stays_the_session_s(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anna's session is under way when Ben is chosen with ``retroguard walker select``: the
    CLI says the session stays Anna's, the relay is not touched, a trip then opens an incident
    that is Anna's on the device and on the wire (every event of it), and the next session is
    Ben's. Before: the incident took the walker selected when it opened — Ben."""
    from launcher.cli import main

    db = str(tmp_path / "events.db")
    _registered(tmp_path)
    assert main(["walker", "--db", db, "select", "anna"]) == 0
    trip = TripAt(1e9)  # armed below, once the session is under way
    rig = make_rig(tmp_path, detector=trip, mqtt=config_for(mosquitto))
    kinds = ("event", "incident", "progress")
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/{kind}" for kind in kinds])
    try:
        runner = attach_session(rig.app, PRESETS["alternate-2-2"], speaker=Heard())
        assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
        rig.run_for(1.0)  # to STANDBY: a press made before it began is not a reset
        assert runner.walker == ANNA and rig.state == "STANDBY"
        rig.press_reset()
        assert rig.state == "ARMED"
        runner.request("start")
        rig.run_for(0.5)
        assert runner.session is not None and runner.session.walker == ANNA
        # the courier has stored the session's start (the CLI reads it from the database)
        assert pump_link_until(rig.app.link, lambda: len(load_sessions(db)) == 1)
        # and the retained progress says so: one computed before (her session not yet stored)
        # may still be on its way, and would be counted below as published since
        assert sub.wait(lambda: _progress_of(sub)[-1:] == [("anna", "running")])
        relay_before = list(rig.hardware.history)
        capsys.readouterr()
        progress_before = len(sub.on("/progress"))

        assert main(["walker", "--db", db, "select", "ben"]) == 0
        out = capsys.readouterr().out
        assert "chosen for the next session" in out and "Nothing was armed or started" in out
        assert "stays Anna's; Ben walks from the next one" in out
        assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
        rig.run_for(0.2)
        assert runner.walker == BEN and runner.session.walker == ANNA
        assert rig.state == "ARMED" and rig.hardware.history == relay_before

        trip.t = rig.clock.monotonic() + 0.2
        rig.run_for(1.0)
        assert rig.state == "TRIPPED"
        rig.run_for(10.0)  # the recording around the trip follows as a window event
        assert _walkers_of_the_incident(sub) == {"anna"}
        # the retained progress stayed the session's (her week, her session running): the
        # trip's pause changed it, and it was published again with her name
        assert sub.wait(lambda: len(sub.on("/progress")) > progress_before)
        since = [validate("progress", m.payload) for m in sub.on("/progress")[progress_before:]]
        assert {(p["walker"]["id"], p["session"]) for p in since} == {("anna", "running")}
        walkers = rig.courier.db.read(
            lambda conn: conn.execute("SELECT walker FROM incidents").fetchall()
        )
        assert walkers == [("anna",)]
        # the retained incident (and so Home Assistant's attributes) names her too
        assert sub.wait(lambda: any(b'"open":true' in m.payload for m in sub.on("/incident")))
        retained = [validate("incident", m.payload) for m in sub.on("/incident")]
        assert {r.get("walker") for r in retained if r.get("incident")} == {"anna"}

        runner.request("stop")
        rig.run_for(0.5)
        rig.press_reset()  # "I'm OK": the belt may run again
        assert rig.state == "ARMED"
        runner.request("start")
        rig.run_for(0.5)
        assert runner.session is not None and runner.session.walker == BEN
        runner.request("stop")
        rig.run_for(0.5)
        detach_session(rig.app, runner)
    finally:
        sub.close()
    assert [s.record.walker for s in load_sessions(db)] == [ANNA, BEN]


def test_the_courier_s_own_events_mid_session_name_the_session_s_walker(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Anna's session is under way and Ben is chosen for the next one: the test alarm the
    courier raises itself (a caregiver's ``test_alarm`` command) and a storage fault it raises
    name Anna on the device and on the wire, as the loop's events do, and the caregiver books
    the fault's incident to her. Before, they named no walker at all (no incident to take one
    from; the caregiver booked the fault to the default walker). The relay is never touched
    by either. Once her session ended, the next test alarm names Ben, the treadmill's current
    walker (chosen for the next session), and with the default walker chosen, nobody (the
    wire leaves the default walker out)."""
    from launcher.cli import main

    db = str(tmp_path / "events.db")
    _registered(tmp_path)
    assert main(["walker", "--db", db, "select", "anna"]) == 0
    (tmp_path / "cg").mkdir()
    caregiver = caregiver_config(mosquitto, tmp_path / "cg")
    with running_service(caregiver, web=False, background=False) as cg:
        rig = make_rig(tmp_path, mqtt=config_for(mosquitto))
        sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/event"])

        def published(kind: str) -> list[dict[str, object]]:
            events = [validate("event", m.payload) for m in sub.on("/event")]
            return [e for e in events if e["type"] == kind]

        def test_alarm(request: str) -> dict[str, object]:
            before = len(published("test"))
            command = f'{{"id":"{request}","by":"Ann"}}'.encode()
            sub.client.publish(f"retroguard/{DEVICE}/cmd/test_alarm", command, 1)
            assert sub.wait(lambda: len(published("test")) > before)
            return published("test")[-1]

        try:
            reporter = rig.courier.reporter
            assert reporter is not None and reporter.wait_until(lambda s: s.ready, WAIT)
            runner = attach_session(rig.app, PRESETS["alternate-2-2"], speaker=Heard())
            assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
            rig.run_for(0.2)
            rig.press_reset()
            runner.request("start")
            rig.run_for(0.5)
            assert runner.session is not None and runner.session.walker == ANNA
            assert pump_link_until(rig.app.link, lambda: rig.courier.session_walker == "anna")
            assert main(["walker", "--db", db, "select", "ben"]) == 0
            assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
            rig.run_for(0.2)
            assert runner.walker == BEN and runner.session.walker == ANNA
            relay_before = list(rig.hardware.history)

            assert test_alarm("t1").get("walker") == "anna"
            rig.courier.storage_lost("disk I/O error")  # what the database's listener calls
            assert sub.wait(lambda: bool(published("fault")))
            (fault,) = published("fault")
            assert "storage fault" in str(fault["reason"]) and fault.get("walker") == "anna"
            assert fault.get("incident") is None  # no incident of its own on the device
            assert cg.ingestor.wait_for(
                lambda: [i.walker for i in cg.store.incidents_for(DEVICE, 10)] == ["anna"], WAIT
            )  # the caregiver's incident of that fault is Anna's: her report counts it
            rig.run_for(0.2)
            assert rig.hardware.history == relay_before

            runner.request("stop")
            rig.run_for(0.5)
            assert pump_link_until(rig.app.link, lambda: rig.courier.session_walker is None)
            # no session under way: the treadmill's current walker, the one chosen for the
            # next session (before: none named, and the caregiver booked it to the default)
            assert test_alarm("t2").get("walker") == "ben"
            detach_session(rig.app, runner)
            assert main(["walker", "--db", db, "select", "default"]) == 0
            # at once: the selection is read in the event's own transaction (before: from a
            # copy the roster's heartbeat refreshed a second later, so Ben's)
            assert "walker" not in test_alarm("t3")  # the default walker goes unnamed
        finally:
            sub.close()
    stored = rig.courier.db.read(
        lambda conn: conn.execute("SELECT type, walker FROM events WHERE type = 'test'").fetchall()
    )
    assert stored == [("test", "anna"), ("test", "ben"), ("test", "default")]
