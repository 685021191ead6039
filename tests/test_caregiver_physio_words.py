"""What a physio reads on a walker's pages, in plain words: how each session ended (never the
protocol's enum), a session the monitor's restart closed (``interrupted``), and the plan page's
"sent" note without leading with an internal request id. Real service, real database."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
import uuid
from pathlib import Path

import pytest
from msgspec.structs import replace
from pypdf import PdfReader

from caregiver.progress import parse_summary
from caregiver.storage import SCHEMA_VERSION, Store
from caregiver.storage.records import WALK_FIELDS
from core.protocol.messages import SCHEMA_VERSION as WIRE
from core.protocol.messages import WalkersMessage
from core.protocol.payloads import encode
from core.protocol.walker import DEFAULT_WALKER, Walker
from tests.caregiver_db import store_at_schema
from tests.caregiver_support import (
    WAIT,
    Http,
    SimDevice,
    make_config,
    received,
    running_service,
    session_record,
    wait_all_handled,
)
from tests.stage_support import STAGE_EXAMPLE
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
RESTARTED = "the treadmill restarted before the end was recorded"


def test_the_progress_page_says_how_each_session_ended_and_when_a_restart_closed_it(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """The device marks ``interrupted`` a session its next start closed (docs/sessions.md): the
    page showed only "completed"/"stopped", raw, as if the walker had ended it. An older
    device's summary (no flag) reads as not interrupted."""
    now = dt.datetime.now(dt.UTC)

    def at(hours: int) -> dt.datetime:
        return now - dt.timedelta(hours=hours)

    plain = session_record(DEVICE, at(5), backward_min=10, longest_min=10)
    stopped = replace(session_record(DEVICE, at(4), backward_min=3, longest_min=2),
                      status="stopped")  # fmt: skip
    abandoned = replace(session_record(DEVICE, at(3), backward_min=3, longest_min=2),
                        status="abandoned")  # fmt: skip
    cut_done = replace(session_record(DEVICE, at(2), backward_min=10, longest_min=10),
                       interrupted=True)  # fmt: skip
    cut_short = replace(session_record(DEVICE, at(1), backward_min=3, longest_min=2),
                        status="stopped", interrupted=True)  # fmt: skip
    older = {k: v for k, v in received(cut_done).items() if k != "interrupted"}
    row, problem = parse_summary(older, DEVICE)
    assert row is not None and row.interrupted == 0, problem
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        for record in (plain, stopped, abandoned, cut_done, cut_short):
            device.session(record)
        ingestor = service.ingestor
        assert ingestor.wait_for(lambda: ingestor.sessions_stored >= 5, WAIT)
        stored = {s.id: s.interrupted for s in service.store.walk_sessions(DEVICE, 10)}
        assert stored == {plain.id: 0, stopped.id: 0, abandoned.id: 0, cut_done.id: 1,
                          cut_short.id: 1}  # fmt: skip
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/progress")
        assert status == 200
        cells = {
            m[1]: m[2].strip()
            for m in re.finditer(
                r'<tr data-session="(\w+)".*?<td data-label="Status"[^>]*>(.*?)</td>', page, re.S
            )
        }
        assert cells == {
            plain.id: "Completed",
            stopped.id: "Stopped before the end",
            abandoned.id: "Ended after a long pause",
            cut_done.id: f"Completed \u2014 {RESTARTED}",
            cut_short.id: f"Stopped before the end \u2014 {RESTARTED}",
        }
        device.close()


def test_the_plan_page_says_sent_in_words_with_the_request_id_as_small_print(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """After sending a plan the page led with "Sent (request cg-...)": an internal id a physio
    cannot use. It says what happened; the id stays, for support, as small print."""
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        device.session(session_record(DEVICE, dt.datetime.now(dt.UTC), backward_min=3,
                                      longest_min=2))  # fmt: skip
        assert service.ingestor.wait_for(lambda: service.ingestor.sessions_stored >= 1, WAIT)
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/plan?sent=cg-0123abcd")
        assert status == 200
        note = re.search(r'<p id="plan-status"[^>]*>(.*?)</p>', page, re.S)
        assert note is not None
        assert note[1].startswith("Sent to the treadmill. Its answer appears below")
        assert "(request" not in note[1]
        assert re.search(r'<small class="request-ref"[^>]*>Reference for support: '
                         r"<code>cg-0123abcd</code></small>", note[1])  # fmt: skip
        device.close()


@pytest.mark.empty_database  # the upgrade from that schema's rows
def test_sessions_stored_before_the_restart_flag_read_as_not_interrupted(caregiver_db: str) -> None:
    """Both engines: a database at schema 18 (before ``walk_sessions.interrupted``) holds a
    session; upgraded, it is kept and reads as not interrupted, and a new summary's flag is
    stored."""
    record = session_record(DEVICE, dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), backward_min=10,
                            longest_min=10)  # fmt: skip
    row, problem = parse_summary(received(record), DEVICE)
    assert row is not None, problem
    before = [f for f in WALK_FIELDS if f != "interrupted"]
    with store_at_schema(caregiver_db, 18) as old, old.transaction() as tx:
        tx._db.execute("INSERT INTO devices (device_id, last_seen) VALUES (?, 1.0)", (DEVICE,))
        tx._db.execute(
            f"INSERT INTO walk_sessions ({', '.join(before)}, received_at, payload) "
            f"VALUES ({', '.join('?' * (len(before) + 2))})",
            (*(getattr(row, f) for f in before), 1.0, "{}"),
        )
    store = Store(caregiver_db)
    try:
        assert (store.schema.before, store.schema.after) == (18, SCHEMA_VERSION)
        (kept,) = store.walk_sessions(DEVICE, 10)
        assert kept == row and kept.interrupted == 0
        cut = replace(session_record(DEVICE, dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC),
                                     backward_min=3, longest_min=2), interrupted=True)  # fmt: skip
        new, problem = parse_summary(received(cut), DEVICE)
        assert new is not None, problem
        with store.transaction() as tx:
            assert tx.record_walk_session(new, "{}", 2.0) == "new"
        assert [s.interrupted for s in store.walk_sessions(DEVICE, 10)] == [1, 0]
    finally:
        store.close()


def _details(page: str) -> list[tuple[str, str]]:
    """The event page's "Details for the physiotherapist", as (label, value) pairs read."""
    found = re.search(r'<details class="details">(.*?)</details>', page, re.S)
    assert found is not None
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", found[1], re.S)
    return [(html.unescape(k), " ".join(html.unescape(re.sub(r"<[^>]+>", "", v)).split()))
            for k, v in pairs]  # fmt: skip


def test_the_event_page_details_say_each_figure_and_the_monitors_words_for_a_physio(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """The details showed the detector's keys less their unit ("vz", "pre tilt", "accel",
    "freefall"), the state in capitals beside the belt's words ("(TRIPPED)"), the monitor's
    "deg" and "g s", and an arming press as "armed by local reset from TRIPPED". The figures
    stay, with their units; the stored event keeps the keys and the monitor's own reason."""
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        device.online()
        incident = uuid.uuid4().hex
        # as the demo's monitor sends them (`retroguard demo`: firmware/detection/retro.py)
        trip = device.event(
            "stumble", severity="warning", state="TRIPPED", incident=incident,
            reason="trunk rotated 12 deg in 0.3 s to 17 deg",
            figures={"tilt_deg": 16.8, "tilt_rate_dps": 94.5, "vz_mps": -0.758,
                     "accel_g": 0.615, "freefall_s": 0.0},
        )  # fmt: skip
        device.event(
            "fall", severity="critical", state="TRIPPED", incident=incident,
            reason="impact 5.1 g (0.30 g s), lying 83 deg",
            figures={"tilt_deg": 83.4, "tilt_rate_dps": 0.2, "vz_mps": 0.114, "accel_g": 1.002,
                     "freefall_s": 0.0, "impact_g": 5.07, "impulse_gs": 0.299,
                     "descent_mps": 1.85, "turn_dps": 165.0, "pre_tilt_deg": 1.1},
        )  # fmt: skip
        device.event(
            "no_recovery", severity="critical", state="TRIPPED", incident=incident,
            reason="lying still 10 s after a fall",
            figures={"tilt_deg": 84.1, "still_s": 10.0},
        )  # fmt: skip
        device.event("reset", severity="info", state="ARMED", incident=incident,
                     reason="armed by local reset from TRIPPED")  # fmt: skip
        wait_all_handled(service, device)
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/events/{trip['id']}")
        assert status == 200
        details = _details(page)
        labels = [k for k, _ in details]
        values = dict(details)
        for label in labels:
            assert "_" not in label and label[0].isupper(), label
        for raw in ("vz", "accel", "freefall", "pre tilt", "turn", "impulse", "still", "Event"):
            assert raw not in labels, raw
        assert "TRIPPED" not in page and "ARMED" not in page.replace("data-", "")
        stumble = details[: labels.index("Reference for support") + 1]
        assert stumble == [
            ("Monitor said", "trunk rotated 12° in 0.3 s to 17°"),
            ("Treadmill", "Belt stopped, waiting for a reset at the machine"),
            ("Trunk tilt from upright", "16.8°"),
            ("How fast the trunk was tilting", "94.5°/s"),
            ("Up-down speed (minus: going down)", "-0.758 m/s"),
            ("Acceleration (standing still is 1 g)", "0.615 g"),
            ("Time in free fall", "0.0 s"),
            ("Reference for support", trip["id"]),
        ]
        said = [v for k, v in details if k == "Monitor said"]
        assert said == [
            "trunk rotated 12° in 0.3 s to 17°",
            "impact 5.1 g (0.30 g·s), lying 83°",
            "lying still 10 s after a fall",
            "re-armed at the machine after the belt was stopped",
        ]
        for label, value in (
            ("Impact at its peak", "5.07 g"),
            ("Impact over its duration (impulse)", "0.299 g·s"),
            ("Fastest drop before the impact", "1.85 m/s"),
            ("Fastest tilting away from upright before the impact", "165.0°/s"),
            ("Trunk tilt just before the impact", "1.1°"),
            ("Lying still for", "10.0 s"),
        ):
            assert values[label] == value
        # the fall's figures as a physio reads them: the impact first, not the JSON's order
        fall = labels[labels.index("Reference for support") + 1 :]
        assert fall[2:7] == [
            "Impact at its peak",
            "Impact over its duration (impulse)",
            "Fastest drop before the impact",
            "Fastest tilting away from upright before the impact",
            "Trunk tilt just before the impact",
        ]
        assert f"The alert's reference for support: <code>{incident}</code>" in page
        # the stored event (its JSON, CSV and MQTT) keeps the monitor's words and keys
        stored = service.store.event(trip["id"])
        assert stored is not None and stored.reason == "trunk rotated 12 deg in 0.3 s to 17 deg"
        assert "vz_mps" in stored.figures
        device.close()


def _read(page: str) -> str:
    """What a person reads of a page: its text, without scripts, tags or attributes."""
    main = page.split("<main", 1)[-1]
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", main, flags=re.S)
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())
    return re.sub(r"\( ", "(", re.sub(r" ([,.:;)])", r"\1", words))


def test_the_longest_backward_stretch_and_the_progression_schedule_have_names_of_their_own(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """ "Progression" named two things a physio read as one: the progress page's box with the
    week's longest backward stretch against the 10-minute goal, and the plan page's schedule of
    plans in stages. The box is the longest backward stretch (as Home Assistant's sensor and
    the PDF say it); the schedule is a progression schedule wherever a page names it."""
    bob = Walker("bob", "Bob")
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        now = dt.datetime.now(dt.UTC)
        record = replace(session_record(DEVICE, now, backward_min=6, longest_min=4), walker=bob)
        device.session(record)
        device.publish("walkers", encode(WalkersMessage(
            schema=WIRE, device_id=DEVICE, wall_time=now.isoformat(),
            walkers=[DEFAULT_WALKER, bob])), retain=True)  # fmt: skip
        said = replace(STAGE_EXAMPLE, device_id=DEVICE,
                       wall_time=now.isoformat(timespec="milliseconds"))  # fmt: skip
        device.publish("stage/bob", encode(said), retain=True)
        store = service.store
        assert service.ingestor.wait_for(
            lambda: (
                service.ingestor.sessions_stored >= 1
                and store.walker_stage(DEVICE, "bob") is not None
                and len(store.device_walkers(DEVICE)) == 2
            ),
            WAIT,
        )
        web = Http(service.port)
        assert web.login() == 303
        status, _, progress = web.request("GET", f"/devices/{DEVICE}/progress?walker=bob")
        assert status == 200
        box = re.search(r'<div class="panel stat [\w-]+" id="longest-stretch">(.*?)</div>',
                        progress, re.S)  # fmt: skip
        assert box is not None
        # the session's plan holds 6 straight minutes at most: its stretch is not measured
        # against the 10 (core.progress.stretch_value)
        assert _read(box[1]) == (
            "Longest backward stretch this week 4.0 min (the 10-minute goal comes with later "
            "plans) The longest continuous backward walking in one session, toward the "
            "10-minute goal."
        )
        read = _read(progress)
        assert "Progression schedule two: stage 1 of 2" in read
        status, _, plan = web.request("GET", f"/devices/{DEVICE}/plan?walker=bob")
        assert status == 200
        read_plan = _read(plan)
        assert "Progression schedule two, as the treadmill keeps it for Bob" in read_plan
        assert "Assign the progression schedule for Bob" in read_plan
        for text in (read, read_plan):
            # a preset's own name ("progression-week-2") is a name, not the word
            bare = re.findall(r"\b[Pp]rogression\b(?! schedule)(?!-)", text)
            assert bare == [], text
        status, _, pdf = web.download("GET", f"/devices/{DEVICE}/report.pdf?walker=bob")
        assert status == 200
        words = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
        assert "Longest backward stretch" in words
        assert not re.search(r"\b[Pp]rogression\b(?! schedule)(?!-)", words)
        device.close()


def test_the_plan_page_speaks_to_a_physio_not_to_a_developer(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """The plan page showed a physio a command line ("Walkers are added at the treadmill
    (retroguard walker add)") and the walkers' ids, explained a missing schedule by how the
    service keeps answers ("one assigned at the treadmill, or before its answers were kept per
    walker, is not shown"), and refused a caregiver's form with "(retroguard caregiver
    set-role)". Adding a walker and giving a role are not done from a browser: the page says
    who to ask."""
    from tests.plan_walkers_support import shared_treadmill

    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        web = Http(service.port)
        assert web.login() == 303
        shared_treadmill(service, device, web)  # Anna has a progression schedule, Bob none
        reads: dict[str, str] = {}
        for walker in ("anna", "bob"):
            status, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker={walker}")
            assert status == 200
            read = reads[walker] = _read(page)
            for developer in ("retroguard ", "kept per walker", "(anna)", "(bob)", "(default)",
                              "3 without one"):  # fmt: skip
                assert developer not in read, (walker, developer)
            assert "<code>" not in page.split('id="plan-walkers"', 1)[1].split("</p>", 1)[0]
            assert (
                "Walkers of this treadmill: Default walker, Anna, Bob. A new walker cannot be "
                "added from this page: ask the technician to add them at the treadmill."
            ) in read
        assert (
            # Bob has no schedule known here: the line under it says so, and this one no
            # longer says a stage of one sets his week (persona40)
            "This week 4 sessions are prescribed to Bob (as the treadmill last counted Bob's "
            "week; 3 a week until it has)."
        ) in read
        assert (
            "prescribed to Anna (as the stage of Anna's progression schedule sets it)."
            in (reads["anna"])
        )
        assert (
            "No progression schedule is known here for Bob: none sent from this page has been "
            "confirmed by the treadmill. If one was set up at the treadmill itself, an older "
            "treadmill does not report it to this page: ask the technician."
        ) in read
        service.accounts.add_user("cara", "cara-password-1")  # a caregiver: the default role
        cara = Http(service.port)
        assert cara.login("cara", "cara-password-1") == 303
        _, _, page = cara.request("GET", f"/devices/{DEVICE}")
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        status, _, body = cara.request(
            "POST", f"/devices/{DEVICE}/plan", [("csrf", token[1]), ("preset", "alternate-2-2")]
        )
        assert (status, body) == (
            403,
            "Only a physio sets plans and progression schedules. Ask whoever runs this "
            "dashboard to give your account the physio role.",
        )
        device.close()
