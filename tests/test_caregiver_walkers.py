"""Walker profiles in the caregiver service: each session stored with its walker (over a real
Mosquitto), the progress page with a walker selector, and one walker's CSV and PDF report."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import msgspec
from pypdf import PdfReader

from caregiver.progress import parse_summary
from core.protocol.messages import SessionRecord
from core.protocol.walker import DEFAULT_WALKER, Walker
from tests.caregiver_support import (
    WAIT,
    Http,
    SimDevice,
    make_config,
    received,
    running_service,
    session_record,
)
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
ANNA = Walker("anna", "Anna")


def _of(record: SessionRecord, walker: Walker) -> SessionRecord:
    return msgspec.structs.replace(record, walker=walker)


def test_a_summary_is_stored_with_its_walker_and_an_old_one_is_the_default_s() -> None:
    now = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    anna = _of(session_record(DEVICE, now, backward_min=10, longest_min=10), ANNA)
    row, _ = parse_summary(received(anna), DEVICE)
    assert row is not None and (row.walker, row.walker_name) == ("anna", "Anna")
    old = received(session_record(DEVICE, now, backward_min=10, longest_min=10))
    assert "walker" not in old  # as a release before profiles sends it
    row, _ = parse_summary(old, DEVICE)
    assert row is not None and (row.walker, row.walker_name) == (
        DEFAULT_WALKER.id,
        DEFAULT_WALKER.name,
    )
    assert parse_summary({**received(anna), "walker": {"id": "A B", "name": "x"}}, DEVICE)[1]


def _weeks(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_progress_page_and_the_reports_are_one_walker_s(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    with running_service(make_config(mosquitto, tmp_path), background=False) as cg:
        device = SimDevice(mosquitto, DEVICE)
        try:
            for days in (2, 1):
                device.session(session_record(DEVICE, now - dt.timedelta(days=days, hours=1),
                                              backward_min=4, longest_min=2))  # fmt: skip
            for minutes in (3 * 24 * 60, 10):  # Anna walks last: ten minutes ago, and now
                started = now - dt.timedelta(minutes=minutes)
                record = session_record(DEVICE, started, backward_min=10, longest_min=10)
                device.session(_of(record, ANNA))
            device.incident_fall(walker="anna")  # during Anna's session under way
            assert cg.ingestor.wait_for(lambda: cg.ingestor.sessions_stored >= 4, WAIT)
            assert cg.ingestor.wait_for(lambda: len(cg.store.incidents_for(DEVICE, 10)) == 1)
        finally:
            device.close()
        store = cg.store
        assert store.walkers(DEVICE) == [("anna", "Anna"), ("default", "Default walker")]
        assert len(store.walk_sessions(DEVICE, walker="anna")) == 2
        assert len(store.walk_sessions(DEVICE, walker="default")) == 2
        assert len(store.walk_sessions(DEVICE)) == 4

        web = Http(cg.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/progress")
        assert status == 200
        assert '<option value="anna" selected>Anna</option>' in page  # who walked last
        assert '<option value="default">Default walker</option>' in page
        assert f'href="/devices/{DEVICE}/report.csv?walker=anna"' in page
        assert f'data-plot="/api/devices/{DEVICE}/progress?walker=anna"' in page
        _, _, page = web.request("GET", f"/devices/{DEVICE}/progress?walker=default")
        assert '<option value="default" selected>Default walker</option>' in page
        # A walker the device does not have: 404 saying so, never the last walker's figures
        status, _, body = web.request("GET", f"/devices/{DEVICE}/progress?walker=nobody")
        assert status == 404 and "<h1>No such walker</h1>" in body  # the page, a way back
        assert f'href="/devices/{DEVICE}/progress">&larr; Walking progress</a>' in body
        for path in (
            f"/devices/{DEVICE}/report.csv?walker=nobody",
            f"/devices/{DEVICE}/report.pdf?walker=nobody",
        ):
            status, _, body = web.request("GET", path)
            assert (status, body) == (404, f"no walker 'nobody' on {DEVICE}"), path
        for api in ("progress", "trends"):
            status, _, body = web.request(
                "GET", f"/api/devices/{DEVICE}/{api}?walker=nobody", headers={"accept": "*/*"}
            )
            assert status == 404 and json.loads(body) == {
                "error": f"no walker 'nobody' on {DEVICE}"
            }, api
        status, _, page = web.request("GET", f"/devices/{DEVICE}/progress?walker=")
        assert status == 200 and '<option value="anna" selected>' in page  # none asked: last

        charts = {}
        for walker in ("anna", "default"):
            status, _, body = web.request(
                "GET", f"/api/devices/{DEVICE}/progress?walker={walker}", headers={"accept": "*/*"}
            )
            assert status == 200
            charts[walker] = json.loads(body)
        assert charts["anna"] != charts["default"]

        status, headers, anna_csv = web.request("GET", f"/devices/{DEVICE}/report.csv?walker=anna")
        assert status == 200 and f"retroguard-{DEVICE}-anna-" in headers["content-disposition"]
        anna_weeks = _weeks(anna_csv)
        assert sum(int(w["sessions"]) for w in anna_weeks) == 2
        assert sum(int(w["incidents"]) for w in anna_weeks) == 1
        _, headers, default_csv = web.request("GET", f"/devices/{DEVICE}/report.csv?walker=default")
        # On a shared treadmill the default walker is one of its walkers: the file says so
        # (before: "retroguard-<device>-<date>.csv", the whole treadmill's report by its name).
        assert f'filename="retroguard-{DEVICE}-default-2' in headers["content-disposition"]
        default_weeks = _weeks(default_csv)
        assert sum(int(w["sessions"]) for w in default_weeks) == 2
        assert sum(int(w["incidents"]) for w in default_weeks) == 0  # not during theirs

        status, _, pdf = web.download("GET", f"/devices/{DEVICE}/report.pdf?walker=anna")
        assert status == 200
        text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        assert "RetroGuard walking report: Anna" in text
        assert "walker profile anna" in text
        status, headers, pdf = web.download("GET", f"/devices/{DEVICE}/report.pdf?walker=default")
        assert status == 200
        assert f'filename="retroguard-{DEVICE}-default-2' in headers["content-disposition"]
        text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        # before: "RetroGuard walking report: Dad's treadmill", no profile: read as the
        # treadmill's report, it held only the sessions walked with no profile chosen
        assert "RetroGuard walking report: Default walker" in text
        assert "walker profile default" in text


def test_the_plan_page_names_the_default_walker_of_a_shared_treadmill(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """On a treadmill Anna shares, the latest session was walked with no profile chosen: the
    plan page says whose it was and to whom the week's sessions are prescribed — "Default
    walker", as the progress page and the reports name them. Before: "The latest session
    walked the plan ... prescribed to the walker", and a physio prescribing for one of several
    walkers could not tell whose figures those were. With one walker it says "the walker"."""
    now = dt.datetime.now(dt.UTC)
    with running_service(make_config(mosquitto, tmp_path), background=False) as cg:
        device = SimDevice(mosquitto, DEVICE)
        try:
            record = session_record(DEVICE, now - dt.timedelta(hours=2), backward_min=4,
                                    longest_min=2)  # fmt: skip
            device.session(record)
            assert cg.ingestor.wait_for(lambda: cg.ingestor.sessions_stored >= 1, WAIT)
            web = Http(cg.port)
            assert web.login() == 303
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
            assert "The walker's latest session (" in page  # one walker
            # no progression schedule known here: the treadmill's count, not a stage's
            assert (
                "prescribed to the walker (as the treadmill last counted the walker's week" in page
            )
            record = session_record(DEVICE, now - dt.timedelta(hours=3), backward_min=4,
                                    longest_min=2)  # fmt: skip
            device.session(_of(record, ANNA))  # Anna walked before: the treadmill is shared
            later = session_record(DEVICE, now - dt.timedelta(hours=1), backward_min=4,
                                   longest_min=2)  # fmt: skip
            device.session(later)
            assert cg.ingestor.wait_for(lambda: cg.ingestor.sessions_stored >= 3, WAIT)
        finally:
            device.close()
        _, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
        assert "Default walker's latest session (" in page
        assert (
            "prescribed to Default walker (as the treadmill last counted Default walker's week"
            in page
        )


def test_a_physio_sends_a_plan_for_one_walker_from_the_plan_page(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The plan form names the walker (a field: the walker the page shows): the ``plan``
    command carries it; a walker id that cannot be one is refused naming the field, nothing sent."""
    import re

    from tests.mqtt_helpers import Subscriber

    with running_service(make_config(mosquitto, tmp_path), background=False) as cg:
        device = SimDevice(mosquitto, DEVICE)
        try:
            record = session_record(DEVICE, dt.datetime.now(dt.UTC), backward_min=4, longest_min=2)
            device.session(_of(record, ANNA))
            assert cg.ingestor.wait_for(lambda: cg.ingestor.sessions_stored >= 1, WAIT)
        finally:
            device.close()
        sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/cmd/#"])
        try:
            web = Http(cg.port)
            assert web.login() == 303
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
            # without ?walker= the page is about the walker who walked last (progressions are
            # per walker: no "the treadmill's"); the treadmill's only one, named, not offered
            assert 'Walker: <strong>Anna</strong> <span class="hint">(the treadmill\'s only' in page
            assert '<select id="walker"' not in page
            assert "For <strong>Anna</strong>, the walker named at the top of the page." in page
            assert "Anna's latest session (" in page
            assert "prescribed to Anna (as the treadmill last counted Anna's week" in page
            assert "treadmill's progression" not in page
            token = re.search(r'name="csrf" value="([^"]+)"', page)
            assert token
            form = [("csrf", token[1]), ("preset", "alternate-2-2")]
            status, _, refused = web.request(
                "POST", f"/devices/{DEVICE}/plan", [*form, ("walker", "Anna B")]
            )
            assert status == 400 and "walker: &#39;Anna B&#39; is not a walker id" in refused
            status, _, _ = web.request(
                "POST", f"/devices/{DEVICE}/plan", [*form, ("walker", "anna")]
            )
            assert status == 303
            url = f"/devices/{DEVICE}/progression"
            status, _, _ = web.request(
                "POST", url, [("csrf", token[1]), ("action", "hold"), ("walker", "anna")]
            )
            assert status == 303
            assert sub.wait(lambda: len(sub.on("/cmd/plan")) + len(sub.on("/cmd/progression")) >= 2)
            (plan,) = [json.loads(m.payload) for m in sub.on("/cmd/plan")]
            (hold,) = [json.loads(m.payload) for m in sub.on("/cmd/progression")]
            assert plan["walker"] == "anna" and plan["plan"]["name"] == "alternate-2-2"
            assert (hold["action"], hold["walker"]) == ("hold", "anna")
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
            assert "for Anna" in page  # the sent commands list says whose, by name
        finally:
            sub.close()


def test_each_walker_s_prescription_is_kept_from_the_retained_progress(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The device's retained progress is the chosen walker's week: the sessions it prescribes
    are kept per walker, so one walker's progression does not set another's adherence."""
    from core.protocol.messages import SCHEMA_VERSION, ProgressMessage
    from core.protocol.payloads import encode

    def progress(walker: Walker | None, prescribed: int) -> str:
        return encode(
            ProgressMessage(
                schema=SCHEMA_VERSION, device_id=DEVICE, wall_time="2026-03-02T09:00:00+00:00",
                session="none", week="2026-W10", week_sessions=0, week_at_goal=0,
                week_backward_s=0.0, week_longest_backward_s=0.0, goal_sessions=3,
                goal_backward_s=600.0, week_prescribed=prescribed, walker=walker,
            )
        )  # fmt: skip

    with running_service(make_config(mosquitto, tmp_path), web=False, background=False) as cg:
        device = SimDevice(mosquitto, DEVICE)
        try:
            device.publish("progress", progress(ANNA, 2))
            assert cg.ingestor.wait_for(
                lambda: cg.store.prescribed_weeks(DEVICE, "anna") == {"2026-W10": 2}, WAIT
            )
            device.publish("progress", progress(None, 4))  # a release before profiles
            assert cg.ingestor.wait_for(
                lambda: cg.store.prescribed_weeks(DEVICE) == {"2026-W10": 4}, WAIT
            )
            assert cg.store.prescribed_weeks(DEVICE, "anna") == {"2026-W10": 2}
        finally:
            device.close()


def test_a_roster_walker_who_has_not_walked_is_offered_with_no_sessions_yet(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Ben is on the treadmill's roster and has a progression (2 sessions this week) but has
    not walked: the progress page, its chart JSON and both reports offer him by name and show
    his week as 0 of 2 with "no sessions yet", not the last walker's figures nor nothing. A
    caregiver limited to another treadmill still finds none of it."""
    from core.progress import week_of
    from core.protocol.messages import SCHEMA_VERSION, ProgressMessage, WalkersMessage
    from core.protocol.payloads import encode

    ben = Walker("ben", "Ben")
    now = dt.datetime.now(dt.UTC)
    week = week_of(now, dt.UTC)  # the service's zone is UTC (make_config)
    with running_service(make_config(mosquitto, tmp_path), background=False) as cg:
        device = SimDevice(mosquitto, DEVICE)
        try:
            record = session_record(DEVICE, now - dt.timedelta(hours=1), backward_min=10,
                                    longest_min=10)  # fmt: skip
            device.session(_of(record, ANNA))
            roster = [DEFAULT_WALKER, ANNA, ben]
            device.publish("walkers", encode(WalkersMessage(
                schema=SCHEMA_VERSION, device_id=DEVICE, wall_time=now.isoformat(),
                walkers=roster)))  # fmt: skip
            device.publish("progress", encode(ProgressMessage(
                schema=SCHEMA_VERSION, device_id=DEVICE, wall_time=now.isoformat(),
                session="none", week=week, week_sessions=0, week_at_goal=0,
                week_backward_s=0.0, week_longest_backward_s=0.0, goal_sessions=3,
                goal_backward_s=600.0, week_prescribed=2, walker=ben)))  # fmt: skip
            assert cg.ingestor.wait_for(
                lambda: (
                    cg.ingestor.sessions_stored >= 1
                    and len(cg.store.device_walkers(DEVICE)) == 3
                    and cg.store.prescribed_weeks(DEVICE, "ben") == {week: 2}
                ),
                WAIT,
            )
        finally:
            device.close()
        assert cg.store.walkers(DEVICE) == [("anna", "Anna")]  # only Anna has walked

        web = Http(cg.port)
        assert web.login() == 303
        _, _, page = web.request("GET", f"/devices/{DEVICE}/progress")
        assert '<option value="anna" selected>Anna</option>' in page  # who walked last
        assert '<option value="ben">Ben</option>' in page
        assert '<option value="default">Default walker</option>' in page
        assert 'id="walker-no-sessions"' not in page

        status, _, page = web.request("GET", f"/devices/{DEVICE}/progress?walker=ben")
        assert status == 200
        assert '<option value="ben" selected>Ben</option>' in page
        assert "Ben: no sessions yet." in page and 'id="no-sessions"' in page
        assert "<strong>0 of 2</strong> prescribed sessions done" in page
        assert f'href="/devices/{DEVICE}/report.csv?walker=ben"' in page
        assert f'data-plot="/api/devices/{DEVICE}/progress?walker=ben"' in page

        status, _, body = web.request(
            "GET", f"/api/devices/{DEVICE}/progress?walker=ben", headers={"accept": "*/*"}
        )
        assert status == 200
        chart = json.loads(body)
        assert chart["prescribed"] == 2 and chart["done"] == [0] * len(chart["labels"])
        assert chart["backward_min"] == [0.0] * len(chart["labels"])  # not Anna's ten minutes

        status, headers, text = web.request("GET", f"/devices/{DEVICE}/report.csv?walker=ben")
        assert status == 200 and f"retroguard-{DEVICE}-ben-" in headers["content-disposition"]
        (row,) = _weeks(text)  # this week: prescribed, none done
        assert (row["week"], row["sessions"], row["sessions_done"]) == (week, "0", "0")
        assert row["sessions_prescribed"] == "2"

        status, _, pdf = web.download("GET", f"/devices/{DEVICE}/report.pdf?walker=ben")
        assert status == 200
        text = " ".join(PdfReader(io.BytesIO(pdf)).pages[0].extract_text().split())
        assert "RetroGuard walking report: Ben" in text and "walker profile ben" in text
        assert "Weeks no sessions yet" in text
        assert "No guided session recorded yet: this week 0 of 2 prescribed sessions done" in text

        cg.accounts.add_user("bob", "another good password")
        assert cg.accounts.limit("bob", ["treadmill-2"])
        bob = Http(cg.port)
        assert bob.login("bob", "another good password") == 303
        for path in (
            f"/devices/{DEVICE}/progress?walker=ben",
            f"/api/devices/{DEVICE}/progress?walker=ben",
            f"/devices/{DEVICE}/report.csv?walker=ben",
            f"/devices/{DEVICE}/report.pdf?walker=ben",
        ):
            status, _, body = bob.request("GET", path, headers={"accept": "*/*"})
            assert status == 404 and "Ben" not in body, path


def test_a_walker_with_over_500_sessions_keeps_their_first_weeks(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The weeks at goal, the progress page and the reports count every session of the walker,
    not the newest 500: a walker whose first week was at goal (3 sessions of 10 minutes) and who
    then walked 500 shorter sessions has 1 week at goal, and the report starts at that first
    week with its 3 sessions. The reads stopped at the newest 500 sessions (about three years
    at three a week), so the milestone silently lost the oldest weeks at goal and the patient's
    file its first weeks, while ``retroguard sessions`` on the device still counted them."""
    from caregiver.storage import Store
    from firmware.session.record import session_payload

    now = dt.datetime.now(dt.UTC)
    ago = (now - dt.timedelta(weeks=90)).date()
    # a Monday noon UTC: its first three days are one week in any zone
    first = dt.datetime.combine(ago - dt.timedelta(days=ago.weekday()), dt.time(12), dt.UTC)
    records = [
        session_record(DEVICE, first + dt.timedelta(days=d), backward_min=10, longest_min=10)
        for d in (0, 1, 2)
    ] + [
        session_record(
            DEVICE,
            first + dt.timedelta(weeks=2 + n // 6, days=n % 6),
            backward_min=4,
            longest_min=2,
        )
        for n in range(499)
    ]
    config = make_config(mosquitto, tmp_path)
    store = Store(config.server.database)
    with store.transaction() as tx:
        for record in records:
            row, problem = parse_summary(received(record), DEVICE)
            assert row is not None, problem
            tx.record_walk_session(row, session_payload(record), now.timestamp())
    store.close()
    with running_service(config, background=False) as cg:
        device = SimDevice(mosquitto, DEVICE)
        try:  # the 503rd session, as the device sends it (the device becomes known)
            device.session(session_record(DEVICE, now - dt.timedelta(hours=1), backward_min=4,
                                          longest_min=2))  # fmt: skip
            assert cg.ingestor.wait_for(lambda: cg.ingestor.sessions_stored >= 1, WAIT)
        finally:
            device.close()
        web = Http(cg.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/progress")
        assert status == 200
        milestone = page[page.index('id="milestone"') :]
        assert "<strong>1 of 4</strong>" in milestone[: milestone.index("</div>")]
        status, _, text = web.request("GET", f"/devices/{DEVICE}/report.csv")
        assert status == 200
        weeks = _weeks(text)
        assert weeks[0]["sessions"] == "3"
        assert weeks[0]["week_at_goal (3 sessions at goal)"] == "yes"
        assert sum(int(w["sessions"]) for w in weeks) == 503


def test_the_plan_page_shows_the_chosen_walker_s_plan_stage_and_sessions(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A physio prescribing for Anna on a treadmill Bob walked last: ``?walker=anna`` (the
    page's walker select, a plain GET form) shows Anna's latest plan, her prescription, her
    progression as the treadmill answered it and her sessions, and the forms send for her.
    Before, "in force" was always the last session's walker's: Bob's plan and four sessions a
    week, whoever the physio was prescribing for. Showing sends nothing to the treadmill."""
    from tests.mqtt_helpers import Subscriber
    from tests.plan_walkers_support import shared_treadmill

    with running_service(make_config(mosquitto, tmp_path), background=False) as cg:
        device = SimDevice(mosquitto, DEVICE)
        web = Http(cg.port)
        assert web.login() == 303
        try:
            shared_treadmill(cg, device, web)
        finally:
            device.close()
        sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/cmd/#"])
        try:
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=anna")
            assert "<h2>In force for Anna</h2>" in page
            assert "Anna's latest session (" in page and "<strong>alternate-2-2</strong>" in page
            assert "<strong>2</strong> sessions are prescribed to Anna" in page
            assert (
                "<strong>Progression schedule toward-10-minutes: assigned, stage 1 of 9.</strong>"
                in page
            )
            rows = page.split('id="in-force-sessions"')[1].split("</table>")[0]
            assert rows.count("<tr data-session=") == 2 and "progression-week-3" not in rows
            # one walker picker, Anna chosen; every form is for her, and says so
            assert page.count('<option value="anna" selected>Anna</option>') == 1
            assert page.count('<input type="hidden" name="walker" value="anna">') == 4
            assert page.count('<select name="walker"') == 0  # no form picks another walker
            assert "Send the plan to the treadmill for Anna</button>" in page
            assert "Assign the progression schedule for Anna</button>" in page
            assert "Assign this schedule for Anna</button>" in page  # the physio's own
            assert "Anna's progression schedule:</span>" in page
            assert 'href="/devices/treadmill-1/progress?walker=anna"' in page
            # no choice: the walker who walked last, Bob, and no progression of his answered
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
            assert "<h2>In force for Bob</h2>" in page
            assert "<strong>progression-week-3</strong>" in page
            assert "<strong>4</strong> sessions are prescribed to Bob" in page
            assert "No progression schedule is known here for Bob: none sent from this page" in page
            assert page.count('<option value="bob" selected>Bob</option>') == 1
            assert page.count('<input type="hidden" name="walker" value="bob">') == 4
            # the default walker of a shared treadmill is someone, with no sessions yet
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=default")
            assert "Default walker: no sessions yet." in page
            assert "<strong>3</strong> sessions are prescribed to Default walker" in page
            status, _, said = web.request("GET", f"/devices/{DEVICE}/plan?walker=zed")
            assert status == 404 and "<h1>No such walker</h1>" in said
            assert "has no walker <strong>zed</strong>" in said
            # a caregiver reads the same, read-only
            cg.accounts.add_user("bob-carer", "another good password")
            carer = Http(cg.port)
            assert carer.login("bob-carer", "another good password") == 303
            _, _, page = carer.request("GET", f"/devices/{DEVICE}/plan?walker=anna")
            assert "<h2>In force for Anna</h2>" in page and 'id="plan-form"' not in page
            # a marker published after the pages: the only command that reached the treadmill's
            # topics is it (the pages sent nothing; rule 2: a plan never reaches the relay)
            sub.client.publish(f"retroguard/{DEVICE}/cmd/marker", b"{}", qos=1)
            assert sub.wait(lambda: len(sub.on("/cmd/marker")) == 1)
            assert [m.topic for m in sub.messages] == [f"retroguard/{DEVICE}/cmd/marker"]
        finally:
            sub.close()
