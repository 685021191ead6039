"""The card's line on the walker's plan (:func:`caregiver.progress.card_plan`), from a real
store: which plan it says, in which words, and whose. The browser test
(tests/test_caregiver_browser.py) shows it on the fleet's card and the device page, live."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest

from caregiver.progress import card_plan, parse_summary
from caregiver.storage import Part, Store, Table, Use
from core.plan_presets import PRESETS
from core.protocol import payloads
from core.protocol.messages import StageMessage
from core.protocol.plan import plan_words
from firmware.session.record import session_payload
from tests.caregiver_db import execute
from tests.caregiver_support import (
    WAIT,
    Http,
    SimDevice,
    make_config,
    received,
    running_service,
    session_record,
)
from tests.stage_support import BOB, DEVICE, STAGE_EXAMPLE
from tests.test_caregiver_accounts import Stream
from tools.broker import Mosquitto, mosquitto_available

NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC)


def _walked(store: Store, hours_ago: float, plan: str, walker: object = None) -> str:
    """A session stored as received; what it walked, in words."""
    record = session_record(DEVICE, NOW - dt.timedelta(hours=hours_ago), backward_min=14,
                            longest_min=2, plan=plan)  # fmt: skip
    if walker is not None:
        record = msgspec.structs.replace(record, walker=walker)
    row, problem = parse_summary(received(record), DEVICE)
    assert row is not None, problem
    store.record_walk_session(row, session_payload(record), NOW.timestamp())
    return plan_words([(i.direction, i.planned_s, i.speed) for i in record.intervals])


def _payload(stage: StageMessage) -> bytes:
    return payloads.encode(stage).encode()


def test_the_card_says_the_plan_of_the_walker_who_walked_last(caregiver_db: str) -> None:
    store = Store(caregiver_db)
    try:
        assert card_plan(store, DEVICE) == ""  # no session: no line
        mine = _walked(store, 3, "Anna, week 3")
        assert card_plan(store, DEVICE) == f"Plan: {mine}"  # the one walker: not named
        # Bob walked last on a shared treadmill: his plan, by his name; on a stage that moves
        # on by itself, the stage's plan (what his next session walks), with its prescription
        _walked(store, 1, "alternate-2-2", BOB)
        store.set_walker_stage(DEVICE, STAGE_EXAMPLE, _payload(STAGE_EXAMPLE), NOW.timestamp())
        stage = plan_words(PRESETS["alternate-2-2"], STAGE_EXAMPLE.sessions_per_week)
        assert card_plan(store, DEVICE) == f"Bob's plan: {stage}"
        # held (maybe by a plan set by hand): the plan his latest session walked
        held = msgspec.structs.replace(
            STAGE_EXAMPLE, status="held", held=True, change="held",
            wall_time="2026-03-03T11:00:00.000+00:00",
        )  # fmt: skip
        assert store.set_walker_stage(DEVICE, held, _payload(held), NOW.timestamp())
        assert card_plan(store, DEVICE).startswith("Bob's plan: 8 min forward, 2 min backward")
    finally:
        store.close()


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_a_store_that_cannot_read_the_plan_costs_the_card_its_plan_line_only(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """The plan line is information: a plan the store cannot read (a damaged table, a lock
    or a statement that times out; here the walkers' stages) leaves it out, and the fleet
    page, the device page and the live feed's red card of a fall come as ever. Before, the
    fleet and device pages answered 500 and the feed dropped the card (its thread logged and
    went on), so an open dashboard's card stayed green under the fall's alarm."""
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        try:
            device.online()
            record = session_record(DEVICE, NOW, backward_min=14, longest_min=2, plan="mine")
            device.session(record)
            store = service.store
            assert service.ingestor.wait_for(lambda: card_plan(store, DEVICE) != "")
            execute(caregiver_db, "ALTER TABLE walker_stages RENAME TO walker_stages_damaged")
            client = Http(service.port)
            assert client.login() == 303
            for path in ("/", f"/devices/{DEVICE}"):
                status, _, page = client.request("GET", path)
                assert status == 200, path
                assert f'id="card-{DEVICE}"' in page and "Plan:" not in page, path
            feed = Stream(service.port, client.cookies)
            try:
                device.fall()
                with feed.cond:  # the fall's red card, without its plan line
                    assert feed.cond.wait_for(
                        lambda: any(
                            m["kind"] == "device" and m["card"]["level"] == "danger"
                            for m in feed.messages
                        ),
                        WAIT,
                    ), feed.messages
                    red = [m["card"] for m in feed.messages if m["kind"] == "device"][-1]
                assert red["plan"] == "" and red["headline"]["open"]
            finally:
                feed.close()
        finally:
            device.close()


def test_a_session_with_neither_a_plan_name_nor_intervals_gives_no_line(
    caregiver_db: str,
) -> None:
    """A summary from an older or foreign monitor may name no plan (the protocol allows "")
    and carry no intervals: the card says no plan line, not "Plan: " with nothing after it."""
    store = Store(caregiver_db)
    try:
        record = session_record(DEVICE, NOW, backward_min=14, longest_min=2, plan="")
        record = msgspec.structs.replace(record, intervals=[])
        row, problem = parse_summary(received(record), DEVICE)
        assert row is not None, problem
        store.record_walk_session(row, session_payload(record), NOW.timestamp())
        assert store.walk_sessions(DEVICE, 1)  # stored: the card reads it
        assert card_plan(store, DEVICE) == ""
    finally:
        store.close()


def test_a_card_that_read_no_stage_leaves_the_stages_said_unreadable(caregiver_db: str) -> None:
    """A card's plan line reads the sessions, the stage of the walker who walked last and the
    walkers, and a read that works says only what it read works again. A treadmill with no
    session yet reads its sessions and nothing else: its card said the plans read again,
    the stages' table too, while another treadmill's card could not read its walker's stage
    and went without its plan line. The fleet page draws every card in turn, so the banner
    and /healthz never said it while a treadmill after it had no session."""
    store = Store(caregiver_db)
    try:
        _walked(store, 3, "Anna, week 3")
        execute(caregiver_db, "ALTER TABLE walker_stages RENAME TO walker_stages_damaged")
        assert card_plan(store, DEVICE) == ""  # its walker's stage unread: no line
        assert [f.part for f in store.side_faults.now()] == [Part.PLANS]
        assert card_plan(store, "treadmill-2") == ""  # no session: no stage read
        (plans,) = store.side_faults.now()
        assert plans.part is Part.PLANS and (Table.WALKER_STAGES, Use.READ) in plans.failing
        store.probe_side_faults()  # the sessions and the walkers read: the stages still fail
        assert {f.part: f.tables for f in store.side_faults.now()} == {
            Part.PLANS: frozenset({Table.WALKER_STAGES})
        }
        execute(caregiver_db, "ALTER TABLE walker_stages_damaged RENAME TO walker_stages")
        assert card_plan(store, DEVICE).startswith("Plan: ")  # the stage read: it works
        assert store.side_faults.now() == ()
    finally:
        store.close()
