"""The card's plan line on the live feed (``/stream``): a session stored and a walker's stage
changed (a plan or progression assigned, a stage moved on or held) send the device's card with
the new line at once, and the cards sent for each change of the belt read neither the sessions
nor the stages again. The browser side: tests/test_caregiver_browser_plans.py."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from caregiver.progress import parse_summary
from caregiver.service import CaregiverService
from caregiver.storage import Part, Table, Use
from core.plan_presets import PRESETS
from core.protocol.payloads import encode
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
from tests.stage_support import DEVICE, STAGE_EXAMPLE
from tests.storage_support import wait_for
from tests.test_caregiver_accounts import Stream
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

PLAN_READS = ("walk_sessions", "walker_stage", "walk_session_payloads")
"""What the plan line is read from (:func:`caregiver.progress.plan_line`)."""


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str) -> Iterator[CaregiverService]:
    with running_service(make_config(mosquitto, tmp_path, database=caregiver_db)) as s:
        yield s


def _card_with(feed: Stream, said: Callable[[str], bool], after: int) -> dict[str, Any]:
    """The first card of :data:`DEVICE` among the feed's messages from ``after`` on whose plan
    line ``said`` accepts."""

    def found() -> dict[str, Any] | None:
        return next(
            (m["card"] for m in feed.messages[after:]
             if m["kind"] == "device" and m["device_id"] == DEVICE and said(m["card"]["plan"])),
            None,
        )  # fmt: skip

    with feed.cond:
        assert feed.cond.wait_for(lambda: found() is not None, WAIT), feed.messages[after:]
        card = found()
    assert card is not None
    return card


def test_a_session_and_a_stage_change_send_the_card_with_its_new_plan_line(
    service: CaregiverService, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: dict[str, int] = dict.fromkeys(PLAN_READS, 0)
    for name in PLAN_READS:  # counted on the feed's thread only (the pages read them too)
        method = getattr(service.store, name)

        def counted(*args: Any, _name: str = name, _method: Any = method) -> Any:
            if threading.current_thread().name == "caregiver-feed":
                reads[_name] += 1
            return _method(*args)

        monkeypatch.setattr(service.store, name, counted)
    device = SimDevice(mosquitto, DEVICE)
    client = Http(service.port)
    assert client.login() == 303
    feed = Stream(service.port, client.cookies)
    try:
        device.online()
        _card_with(feed, lambda plan: plan == "", 0)  # no session yet: no line
        start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        record = session_record(DEVICE, start, backward_min=14, longest_min=2, plan="mine")
        walked = plan_words([(i.direction, i.planned_s, i.speed) for i in record.intervals])
        after = len(feed.messages)
        device.session(record)  # the session alone: no other change of the card
        _card_with(feed, lambda plan: plan == f"Plan: {walked}", after)

        # the walker's progression, as the treadmill publishes it: the stage's plan
        stage = msgspec.structs.replace(
            STAGE_EXAMPLE, walker=record.walker, wall_time=start.isoformat(timespec="seconds")
        )
        after = len(feed.messages)
        device.publish(f"stage/{record.walker.id}", encode(stage), retain=True)
        on_stage = plan_words(PRESETS["alternate-2-2"], STAGE_EXAMPLE.sessions_per_week)
        _card_with(feed, lambda plan: plan == f"Plan: {on_stage}", after)
        # a plan set by hand holds it: the plan the latest session walked, at once
        held = msgspec.structs.replace(
            stage, status="held", held=True, change="held",
            wall_time=(start + dt.timedelta(minutes=1)).isoformat(timespec="seconds"),
        )  # fmt: skip
        after = len(feed.messages)
        device.publish(f"stage/{record.walker.id}", encode(held), retain=True)
        _card_with(feed, lambda plan: plan == f"Plan: {walked}", after)

        # the belt's changes: each sends the card, with its line, read from none of them
        before = dict(reads)
        for n, state in enumerate(("STANDBY", "ARMED", "STANDBY", "ARMED")):
            after = len(feed.messages)
            device.set_state(state, f"change {n}")
            card = _card_with(feed, lambda plan: plan == f"Plan: {walked}", after)
            assert card["belt"].startswith(("Belt stopped", "Monitor armed"))
        assert reads == before, (before, reads)
    finally:
        feed.close()
        device.close()


def test_a_session_another_instance_stored_unheard_is_read_again(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    """Instances sharing a database hear each other's sessions through it; while the
    listener was lost they went unheard, and the line kept since the last heard one would
    stay the card's until the walker's next session. Listening again reads every line anew."""
    device = SimDevice(mosquitto, DEVICE)
    client = Http(service.port)
    assert client.login() == 303
    feed = Stream(service.port, client.cookies)
    try:
        device.online()
        start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        first = session_record(DEVICE, start, backward_min=14, longest_min=2, plan="mine")
        after = len(feed.messages)
        device.session(first)
        _card_with(feed, lambda plan: plan.startswith("Plan: 8 min forward"), after)
        # another instance's session, stored while this one did not hear it: no change here
        later = session_record(
            DEVICE, start + dt.timedelta(hours=1), backward_min=14, longest_min=2, plan="theirs"
        )
        later = msgspec.structs.replace(later, intervals=[])  # said by its name
        row, problem = parse_summary(received(later), DEVICE)
        assert row is not None, problem
        service.store.record_walk_session(row, session_payload(later), start.timestamp())
        service._deaf_meanwhile()  # listening again (every stream ends: open a new one)
        feed.close()
        feed = Stream(service.port, client.cookies)
        device.set_state("STANDBY", "after the gap")
        _card_with(feed, lambda plan: plan == "Plan: theirs", 0)
    finally:
        feed.close()
        device.close()


def test_a_card_with_no_session_leaves_another_card_s_unread_stage_said(
    service: CaregiverService, mosquitto: Mosquitto, caregiver_db: str
) -> None:
    """The feed reads a card's plan line when the card changes, and says the plans read
    again only of what it read. A treadmill with no session reads its sessions and no stage:
    its card coming online said the stages read again while the first treadmill's card had
    just gone without its walker's stage (its table gone), and the banner and /healthz said
    nothing of the card without its plan line."""
    device = SimDevice(mosquitto, DEVICE)
    other = SimDevice(mosquitto, "treadmill-2")
    client = Http(service.port)
    assert client.login() == 303
    feed = Stream(service.port, client.cookies)
    try:
        device.online()
        _card_with(feed, lambda plan: plan == "", 0)
        execute(caregiver_db, "ALTER TABLE walker_stages RENAME TO walker_stages_damaged")
        start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        device.session(session_record(DEVICE, start, backward_min=14, longest_min=2))
        assert wait_for(lambda: _plans_failing(service))  # its card read no walker's stage
        after = len(feed.messages)
        other.online()  # its card, read from its sessions alone (none)

        def its_card() -> bool:
            return any(
                m["kind"] == "device" and m["device_id"] == "treadmill-2"
                for m in feed.messages[after:]
            )

        with feed.cond:
            assert feed.cond.wait_for(its_card, WAIT), feed.messages[after:]
        assert _plans_failing(service), service.store.side_faults.now()
    finally:
        feed.close()
        other.close()
        device.close()


def _plans_failing(service: CaregiverService) -> bool:
    return any(
        f.part is Part.PLANS and (Table.WALKER_STAGES, Use.READ) in f.failing
        for f in service.store.side_faults.now()
    )
