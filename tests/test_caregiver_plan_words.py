"""A plan in words on the dashboard: the plan page ("in force", the stage, the last sessions,
the presets, the progressions' stages, what was sent) and the progress page (the stage, every
session row) say what each plan prescribes and the belt speed it expects, from one summary
(:func:`core.protocol.plan.plan_words`), through the real service, a real Mosquitto and a
simulated device (plain paho)."""

from __future__ import annotations

import datetime as dt
import html
import io
from pathlib import Path

import msgspec
from pypdf import PdfReader

from caregiver.progress import session_walks, walk_of
from core.plan_presets import PRESETS
from core.protocol.messages import PlanStored
from core.protocol.payloads import encode, reply_payload
from core.protocol.plan import TIMES, Interval, Plan, plan_walk
from tests.caregiver_support import (
    WAIT,
    Http,
    SimDevice,
    make_config,
    running_service,
    session_record,
    walked,
)
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
X = TIMES
TWO_TWO = f"2 min backward / 2 min forward {X} 7, 2 min forward; belt 0.5 mph"
WEEK_3 = f"2 min forward, 4 min backward / 2 min forward {X} 3; belt 0.5 mph"
WEEK_9 = "2 min forward, 10 min backward, 2 min forward; belt 0.5 mph"
ANNAS = Plan(
    "Anna, week 3",
    (Interval("forward", 2, "1 mph"), Interval("backward", 10, "0.6 mph"), Interval("rest", 1)),
)
"""A custom plan: its name says nothing of what it prescribes; its speeds differ."""
ANNAS_WORDS = "2 min forward (1 mph), 10 min backward (0.6 mph), 1 min rest"


def _plain(markup: str) -> str:
    """Tags dropped and entities read: the text as a person reads it."""
    while "<" in markup:
        head, _, tail = markup.partition("<")
        markup = head + tail.partition(">")[2]
    return html.unescape(markup)


def _text(page: str, paragraph_id: str) -> str:
    """The paragraph's text."""
    start = page.index(f'id="{paragraph_id}"')
    return _plain(page[page.index(">", start) + 1 : page.index("</p>", start)])


def _rows(page: str, table_id: str) -> str:
    """The table's text."""
    return _plain(page.split(f'id="{table_id}"')[1].split("</table>")[0])


def test_the_plan_and_progress_pages_say_what_each_plan_prescribes(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Anna walked the 2/2 plan, then a custom plan under her own name; Bob is on a
    progression at a preset's stage. The physio reads on Anna's plan page what her latest
    plan prescribes (with her week's sessions) and each session's plan, the presets and the
    progressions' stages in words, and what each plan sent prescribed; Bob's stage says its
    plan's words with its sessions a week on both pages. Before, every one of these said a
    name alone ("Anna, week 3"), and the belt speed was said on no page."""
    from tests.plan_walkers_support import ANNA, BOB, shared_treadmill
    from tests.stage_support import STAGE_EXAMPLE

    with running_service(make_config(mosquitto, tmp_path), background=False) as cg:
        device = SimDevice(mosquitto, DEVICE)
        web = Http(cg.port)
        assert web.login() == 303
        try:
            shared_treadmill(cg, device, web)  # Anna: 2/2 twice, 2 a week; Bob: week 3
            now = dt.datetime.now(dt.UTC)
            latest = msgspec.structs.replace(
                walked(session_record(DEVICE, now, backward_min=10, longest_min=10), ANNAS),
                walker=ANNA,
            )
            device.session(latest)
            stage = msgspec.structs.replace(
                STAGE_EXAMPLE, device_id=DEVICE, walker=BOB, stage_name="progression-week-3",
                sessions_per_week=4, wall_time=now.isoformat(timespec="milliseconds"),
            )  # fmt: skip
            device.publish("stage/bob", encode(stage), retain=True)
            assert cg.ingestor.wait_for(
                lambda: (
                    cg.ingestor.sessions_stored >= 4
                    and cg.store.walker_stage(DEVICE, "bob") is not None
                ),
                WAIT,
            )

            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=anna")
            in_force = _text(page, "in-force-plan")
            assert f"walked the plan Anna, week 3: {ANNAS_WORDS}; twice a week." in in_force
            rows = _rows(page, "in-force-sessions")
            assert rows.count(ANNAS_WORDS) == 1 and rows.count(TWO_TWO) == 2
            # the presets and each progression's stages, in words (the stage's sessions a week)
            assert f">alternate-2-2: {TWO_TWO}</option>" in html.unescape(page)
            stages = _plain(page.split('id="progression-stages"')[1].split("</details>")[0])
            assert f"progression-week-9: {WEEK_9}; 3 times a week" in stages
            assert f"alternate-2-2: {TWO_TWO}; 3 times a week (2 weeks)" in stages
            # what was sent: Anna's progression, from its first stage's plan in words
            answers = _rows(page, "plan-answers")
            assert (
                "progression schedule toward-10-minutes, from stage 1 of 9 "
                f"(alternate-2-2: {TWO_TWO}; 3 times a week), for Anna" in answers
            )

            # Bob: his stage's plan in words, and a plan sent to him says what it prescribes
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=bob")
            assert f"(progression-week-3: {WEEK_3}; 4 times a week)" in _text(
                page, "in-force-progression"
            )
            token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            status, _, _ = web.request(
                "POST",
                f"/devices/{DEVICE}/plan",
                [("csrf", token), ("preset", "progression-week-9"), ("walker", "bob")],
            )
            assert status == 303
            command = device.wait_command("plan")
            stored = PlanStored(
                plan="progression-week-9", revision=2, intervals=3, minutes=14.0,
                backward_minutes=10.0, applies="at the next session start", walker="bob",
            )  # fmt: skip
            device.publish(
                "reply",
                reply_payload(DEVICE, "plan", command["id"], True, msgspec.structs.asdict(stored)),
            )
            assert cg.ingestor.wait_for(
                lambda: sum(c.status == "accepted" for c in cg.store.sent_commands(DEVICE)) == 2,
                WAIT,
            )
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=bob")
            assert f"plan progression-week-9: {WEEK_9} (14 min in all), for Bob" in _rows(
                page, "plan-answers"
            )

            # the progress pages: every session row, and the stage
            _, _, page = web.request("GET", f"/devices/{DEVICE}/progress?walker=anna")
            rows = _rows(page, "sessions")
            assert rows.count(ANNAS_WORDS) == 1 and rows.count(TWO_TWO) == 2
            _, _, page = web.request("GET", f"/devices/{DEVICE}/progress?walker=bob")
            assert WEEK_3 in _rows(page, "sessions")
            assert f"(progression-week-3: {WEEK_3}; 4 times a week)" in _text(page, "walker-stage")

            # the PDF report, for the patient's file: the plans walked, newest first, in words
            status, _, pdf = web.download("GET", f"/devices/{DEVICE}/report.pdf?walker=anna")
            assert status == 200
            (only,) = PdfReader(io.BytesIO(pdf)).pages  # still one page
            text = " ".join(only.extract_text().split())
            said = text.split("Plans walked (newest first): ")[1]
            assert said.startswith(f"Anna, week 3 (1 session): {ANNAS_WORDS}. ")
            assert f"alternate-2-2 (2 sessions): {TWO_TWO}." in said

            # a stage whose plan this service cannot know is named, never guessed at
            unknown = msgspec.structs.replace(
                stage, stage_name="Bob, custom", wall_time=dt.datetime.now(dt.UTC).isoformat()
            )
            device.publish("stage/bob", encode(unknown), retain=True)
            assert cg.ingestor.wait_for(
                lambda: (
                    (s := cg.store.walker_stage(DEVICE, "bob")) is not None
                    and s.stage_name == "Bob, custom"
                ),
                WAIT,
            )
            _, _, page = web.request("GET", f"/devices/{DEVICE}/progress?walker=bob")
            assert "(Bob, custom, 4 a week)" in _text(page, "walker-stage")
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=bob")
            assert "(Bob, custom), " in _text(page, "in-force-progression")
        finally:
            device.close()


def test_a_stored_summary_gives_its_plan_and_an_unreadable_one_none() -> None:
    """The caregiver keeps a session's plan by name; its words come from the stored summary's
    intervals, read loosely: one without them (an older or foreign summary) has none, and its
    row says the name alone."""
    record = walked(
        session_record(DEVICE, dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), backward_min=14,
                       longest_min=2), PRESETS["alternate-2-2"],
    )  # fmt: skip
    payload = msgspec.json.encode(record).decode()
    assert walk_of(payload) == (record.id, plan_walk(PRESETS["alternate-2-2"]))

    def one(interval: object) -> str:
        return msgspec.json.encode({"id": "b" * 32, "intervals": [interval]}).decode()

    assert walk_of(one({"direction": "forward", "planned_s": 60, "speed": ""})) == (
        "b" * 32, (("forward", 60.0, ""),)
    )  # fmt: skip
    for unreadable in (
        "not json",
        "[1]",
        '{"id": "' + "b" * 32 + '"}',  # an older summary: no intervals
        '{"id": "' + "b" * 32 + '", "intervals": "no"}',
        one({"direction": "sideways", "planned_s": 60, "speed": ""}),
        one({"direction": "forward", "planned_s": -1, "speed": ""}),
        one({"direction": "forward", "planned_s": 60}),
        one("no"),
    ):
        assert walk_of(unreadable) is None, unreadable
    walks = session_walks([payload, "not json", one({"direction": "up"})])
    assert walks == {record.id: plan_walk(PRESETS["alternate-2-2"])}


def test_the_report_says_the_newest_plans_once_per_name_and_walk() -> None:
    """At most :data:`caregiver.report.REPORT_PLANS`, newest first, each with its sessions;
    a plan changed under its name is two; a session without intervals is in none."""
    from caregiver.progress import parse_summary
    from caregiver.report import REPORT_PLANS, plans_walked

    monday = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    plans = [
        Plan("Anna, week 3", (Interval("backward", 10, "0.5 mph"),)),
        Plan("Anna, week 3", (Interval("backward", 12, "0.5 mph"),)),
        PRESETS["alternate-2-2"],
        PRESETS["progression-week-9"],
    ]
    records = [
        walked(session_record(DEVICE, monday - dt.timedelta(days=d), backward_min=10,
                              longest_min=10), plan)
        for d, plan in enumerate([plans[0], plans[0], plans[1], plans[2], plans[3]])
    ]  # fmt: skip
    bare = msgspec.structs.replace(
        session_record(DEVICE, monday + dt.timedelta(days=1), backward_min=1, longest_min=1),
        intervals=[],
    )
    payloads = [msgspec.json.encode(r).decode() for r in (*records, bare)]
    rows = [parse_summary(msgspec.json.decode(p), DEVICE)[0] for p in payloads]
    said = plans_walked([r for r in rows if r is not None], session_walks(payloads))
    assert len(said) == REPORT_PLANS == 3
    assert [(p.name, p.sessions) for p in said] == [
        ("Anna, week 3", 2), ("Anna, week 3", 1), ("alternate-2-2", 1)
    ]  # fmt: skip
    assert said[0].words == "10 min backward; belt 0.5 mph"
    assert said[1].words == "12 min backward; belt 0.5 mph"
