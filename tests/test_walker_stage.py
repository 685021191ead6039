"""Each walker's progression, retained on ``<prefix>/<device>/stage/<walker>``: computed by the
device from its own database (real SQLite) for every walker with one, not only the walker
chosen at the treadmill, and published by its reporter over a real Mosquitto."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from pathlib import Path

import jsonschema
import msgspec
import pytest

from core.plan_presets import PRESETS
from core.protocol.commands import AssignProgression, ChangeProgression, encode_command
from core.protocol.messages import StageMessage
from core.protocol.payloads import decode_as
from core.protocol.plan import Progression, Stage
from core.protocol.topics import BadTopic, DeviceTopic, TopicKind, Topics, all_devices, parse_topic
from core.protocol.walker import Walker
from firmware.config import Config, DeviceConfig, StorageConfig
from firmware.courier.channel import LoopChannel
from firmware.courier.service import Courier
from firmware.link import messages
from firmware.link.framing import frame
from firmware.mqtt import MqttReporter
from firmware.mqtt import reporter as reporter_module
from firmware.mqtt.status import Retained, RetainedStatus
from firmware.storage.database import connect, transaction
from firmware.storage.progressions import advance_if_done, change_progression, start_progression
from firmware.storage.sessions import save_session
from firmware.storage.walkers import add_walker, remove_walker
from tests.caregiver_support import session_record, walked
from tests.mqtt_helpers import WAIT, Subscriber, config_for, schema, validate
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
ANNA = Walker("anna", "Anna")
BOB = Walker("bob", "Bob")
MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
SHORT = PRESETS["alternate-2-2"]
TWO_STAGES = Progression("two", (Stage(SHORT, 1, 2), Stage(PRESETS["progression-week-2"], 1, 4)))


def _registered(db: Path) -> None:
    conn = connect(db)
    try:
        with transaction(conn):
            add_walker(conn, "Anna", walker_id="anna", by="Jo", wall="w1")
            add_walker(conn, "Bob", walker_id="bob", by="Jo", wall="w2")
    finally:
        conn.close()


def _walk(db: Path, walker: Walker, started: dt.datetime) -> None:
    """A completed session of the first stage's plan, by ``walker``."""
    record = walked(session_record(DEVICE, started, backward_min=14, longest_min=2), SHORT)
    conn = connect(db)
    try:
        save_session(conn, msgspec.structs.replace(record, walker=walker))
    finally:
        conn.close()


def _decoded(retained: list[Retained], status: RetainedStatus) -> dict[str, StageMessage]:
    """Walker id -> the message, each checked against the documented schema and taken."""
    found = {}
    for message in retained:
        jsonschema.validate(json.loads(message.payload), schema("stage"))
        stage = decode_as(StageMessage, message.payload.encode())
        assert message.topic == f"retroguard/{DEVICE}/stage/{stage.walker.id}"
        found[stage.walker.id] = stage
        status.published(message)
    return found


def test_the_stage_topic_is_one_level_per_walker_and_a_bad_walker_is_refused() -> None:
    topics = Topics("retroguard", DEVICE)
    assert topics.stage("bob") == "retroguard/treadmill-1/stage/bob"
    assert parse_topic("retroguard", topics.stage("bob")) == DeviceTopic(
        DEVICE, TopicKind.STAGE, walker="bob"
    )
    assert all_devices("retroguard", TopicKind.STAGE) == "retroguard/+/stage/+"
    assert parse_topic("retroguard", "retroguard/treadmill-1/stage") is None
    with pytest.raises(BadTopic, match="not a walker id"):
        parse_topic("retroguard", "retroguard/treadmill-1/stage/Bob Smith")


def test_every_walker_with_a_progression_has_a_stage_that_follows_each_change(
    tmp_path: Path,
) -> None:
    """The default walker stays chosen throughout: Anna's and Bob's stages are theirs all the
    same (assignment, a session counted, a hold, an advance); one that did not change is not
    sent again; a removed walker's topic is cleared."""
    db = tmp_path / "device.db"
    _registered(db)
    conn = connect(db)
    with transaction(conn):
        for walker in ("anna", "bob"):
            start_progression(conn, TWO_STAGES, stage=0, by="Jo", walker=walker,
                              wall="2026-03-02T08:00:00.000+00:00")  # fmt: skip
    conn.close()
    now = MONDAY + dt.timedelta(hours=8)
    status = RetainedStatus(db, Topics("retroguard", DEVICE), now=lambda: now, zone=dt.UTC)
    try:
        first = _decoded(status.stages(), status)
        assert set(first) == {"anna", "bob"}  # the default walker has none
        bob = first["bob"]
        assert (bob.walker, bob.progression, bob.stage, bob.stages) == (BOB, "two", 1, 2)
        assert (bob.stage_name, bob.status, bob.held, bob.change) == (
            SHORT.name,
            "running",
            False,
            "assigned",
        )
        assert (bob.sessions_per_week, bob.stage_weeks, bob.weeks_done) == (2, 1, 0)
        assert (bob.week, bob.week_done, bob.zone) == ("2026-W10", 0, "UTC")
        assert bob.stage_started_wall == "2026-03-02T08:00:00.000+00:00"
        assert status.stages() == []  # nothing changed: nothing to send again

        _walk(db, BOB, MONDAY)  # a session counted for Bob, who is not chosen
        counted = _decoded(status.stages(), status)
        assert set(counted) == {"bob"} and counted["bob"].week_done == 1

        conn = connect(db)
        with transaction(conn):
            change_progression(conn, "hold", by="Jo", wall="2026-03-02T12:00:00.000+00:00",
                               walker="anna")  # fmt: skip
        conn.close()
        held = _decoded(status.stages(), status)["anna"]
        assert (held.status, held.held, held.change) == ("held", True, "held")
        assert held.changed_wall == "2026-03-02T12:00:00.000+00:00"

        _walk(db, BOB, MONDAY + dt.timedelta(days=1))
        conn = connect(db)
        with transaction(conn):  # as the courier does after Bob's session
            assert advance_if_done(conn, dt.UTC, "2026-03-03T10:00:00.000+00:00", walker="bob")
        conn.close()
        advanced = _decoded(status.stages(), status)["bob"]
        assert (advanced.stage, advanced.stage_name, advanced.change) == (
            2,
            "progression-week-2",
            "advanced",
        )
        assert (advanced.sessions_per_week, advanced.week_done) == (4, 0)
        assert advanced.stage_started_wall == "2026-03-09T00:00:00.000+00:00"  # next Monday

        conn = connect(db)
        with transaction(conn):
            remove_walker(conn, "anna", by="Jo", wall="w3")
        conn.close()
        cleared = status.stages()
        assert [(m.topic, m.payload) for m in cleared] == [(f"retroguard/{DEVICE}/stage/anna", "")]
    finally:
        status.close()


def test_a_last_stage_whose_prescription_is_done_is_complete(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    _registered(db)
    conn = connect(db)
    with transaction(conn):
        start_progression(conn, Progression("one", (Stage(SHORT, 1, 1),)), stage=0, by="Jo",
                          walker="anna", wall="2026-03-02T08:00:00.000+00:00")  # fmt: skip
    conn.close()
    now = MONDAY + dt.timedelta(hours=8)
    status = RetainedStatus(db, Topics("retroguard", DEVICE), now=lambda: now, zone=dt.UTC)
    try:
        assert _decoded(status.stages(), status)["anna"].status == "running"
        _walk(db, ANNA, MONDAY)
        done = _decoded(status.stages(), status)["anna"]
        assert (done.status, done.weeks_done, done.week_done) == ("complete", 1, 1)
    finally:
        status.close()


def _stage_of(sub: Subscriber, walker: str) -> list[dict[str, object]]:
    return [validate("stage", m.payload) for m in sub.on(f"/stage/{walker}") if m.payload]


def test_the_reporter_publishes_each_walker_s_stage_retained_and_a_command_updates_it(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Real Mosquitto: a progression assigned to Bob over ``cmd/progression`` (the default
    walker chosen) goes out on ``stage/bob`` at once, without a courier; a consumer that
    subscribes later gets it retained; a hold follows."""
    db = tmp_path / "device.db"
    _registered(db)
    reporter = MqttReporter(
        config_for(mosquitto, discovery=False), device_id=DEVICE, device_name="T1", database=db
    )
    reporter.start()
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/#"])
    try:
        assert reporter.wait_until(lambda s: s.ready, WAIT)
        assign = encode_command(AssignProgression(TWO_STAGES, 0, "Jo", "bob"), "p1")
        sub.client.publish(f"retroguard/{DEVICE}/cmd/progression", assign, qos=1)
        assert sub.wait(lambda: bool(_stage_of(sub, "bob")))
        told = _stage_of(sub, "bob")[-1]
        assert (told["walker"], told["stage"], told["change"]) == (
            {"id": "bob", "name": "Bob"},
            1,
            "assigned",
        )
        late = Subscriber(mosquitto, [f"retroguard/{DEVICE}/stage/+"])
        try:
            assert late.wait(lambda: bool(_stage_of(late, "bob")))
            assert late.on("/stage/bob")[0].retain
        finally:
            late.close()
        hold = encode_command(ChangeProgression("hold", "Jo", "bob"), "p2")
        sub.client.publish(f"retroguard/{DEVICE}/cmd/progression", hold, qos=1)
        assert sub.wait(lambda: any(s["status"] == "held" for s in _stage_of(sub, "bob")))
        assert not sub.on("/stage/anna")  # Anna has no progression: no topic
    finally:
        sub.close()
        reporter.close()


def test_a_hold_typed_at_the_device_reaches_the_stage_topic_without_the_minute_refresh(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real Mosquitto, a real courier on a real SQLite file: ``retroguard plan progression
    hold`` writes the database from another connection (the CLI is another process); the
    courier's heartbeat notices the new progression row and the publisher sends Bob's stage,
    held, at once. The minute's refresh is pushed an hour away, so only that wake can send it
    (without it, the held stage waited up to a minute)."""
    from launcher.cli import main

    monkeypatch.setattr(reporter_module, "PROGRESS_REFRESH_S", 3600.0)
    db = tmp_path / "device.db"
    _registered(db)
    conn = connect(db)
    try:
        with transaction(conn):
            start_progression(
                conn,
                TWO_STAGES,
                stage=0,
                by="Jo",
                wall="2026-03-02T08:00:00.000+00:00",
                walker="bob",
            )
    finally:
        conn.close()
    config = Config(
        device=DeviceConfig(id=DEVICE, name="T1"),
        storage=StorageConfig(database=str(db)),
        mqtt=config_for(mosquitto, discovery=False),
    )
    loop_end, courier_end = socket.socketpair()
    courier = Courier(config, LoopChannel(courier_end))
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/stage/+"])
    serving = threading.Thread(target=courier.run, name="test-courier", daemon=True)
    serving.start()
    try:
        assert sub.wait(lambda: any(s["status"] == "running" for s in _stage_of(sub, "bob")))
        hold = ["plan", "--db", str(db), "progression", "hold", "--walker", "bob", "--by", "Jo"]
        assert main(hold) == 0
        assert sub.wait(lambda: any(s["status"] == "held" for s in _stage_of(sub, "bob")))
        told = _stage_of(sub, "bob")[-1]
        assert (told["held"], told["change"], told["stage"]) == (True, "held", 1)
    finally:
        loop_end.sendall(frame(messages.encode(messages.Goodbye("test over"))))
        loop_end.shutdown(socket.SHUT_WR)  # the loop is gone: the courier drains and closes
        serving.join(WAIT)
        loop_end.close()
        sub.close()
    assert not serving.is_alive()


def test_a_stage_assigned_before_ntp_set_the_clock_says_its_true_start_after_the_step(
    tmp_path: Path,
) -> None:
    """The clock read a year ahead when Bob's progression was assigned; after NTP's step the
    stage message says the true start (as the rule that advances him reads it,
    :func:`core.wallclock.after_step`), and his sessions since count toward the week."""
    from core.clock import SimClock
    from core.wallclock import FakeWallClock

    year = dt.timedelta(days=365).total_seconds()
    clock = SimClock()
    wall = FakeWallClock(clock, MONDAY + dt.timedelta(seconds=year), synced=False)
    db = tmp_path / "device.db"
    _registered(db)
    conn = connect(db)
    assigned = wall.now().isoformat(timespec="milliseconds")
    with transaction(conn):
        start_progression(conn, TWO_STAGES, stage=0, by="Jo", walker="bob", wall=assigned,
                          clock=wall)  # fmt: skip
    conn.close()
    clock.advance(600.0)
    wall.step(-year)  # NTP's first sync
    _walk(db, BOB, MONDAY + dt.timedelta(hours=2))
    status = RetainedStatus(
        db, Topics("retroguard", DEVICE), now=wall.now, zone=dt.UTC, wall_clock=wall
    )
    try:
        bob = _decoded(status.stages(), status)["bob"]
        assert bob.stage_started_wall == MONDAY.isoformat(timespec="milliseconds")
        assert (bob.week, bob.week_done) == ("2026-W10", 1)
    finally:
        status.close()


def test_a_session_stored_again_when_it_ends_is_counted_at_once(tmp_path: Path) -> None:
    """The stage is computed again only when the walker's sessions changed: a session stored
    while it runs, then again completed (the same id, the same row), counts on the second."""
    db = tmp_path / "device.db"
    _registered(db)
    conn = connect(db)
    with transaction(conn):
        start_progression(conn, TWO_STAGES, stage=0, by="Jo", walker="bob",
                          wall="2026-03-02T08:00:00.000+00:00")  # fmt: skip
    conn.close()
    now = MONDAY + dt.timedelta(hours=8)
    status = RetainedStatus(db, Topics("retroguard", DEVICE), now=lambda: now, zone=dt.UTC)
    done = walked(session_record(DEVICE, MONDAY, backward_min=14, longest_min=2), SHORT)
    running = msgspec.structs.replace(done, status="running", ended_wall=None, walker=BOB)
    try:
        conn = connect(db)
        save_session(conn, running)
        conn.close()
        assert _decoded(status.stages(), status)["bob"].week_done == 0
        assert status.stages() == []
        conn = connect(db)
        save_session(conn, msgspec.structs.replace(done, walker=BOB))
        conn.close()
        assert _decoded(status.stages(), status)["bob"].week_done == 1
    finally:
        status.close()


def test_a_stage_computed_before_the_clock_is_synchronised_is_flagged_and_computed_again(
    tmp_path: Path,
) -> None:
    """A stage computed while the wall clock is not synchronised says so (``wall_unsynced``);
    computed again unchanged it is not sent again, but once the clock is synchronised it is,
    unflagged, though nothing about the walker changed (the flag is part of what it says).
    Synchronised, the flag is absent from the payload, as an older release sent it."""
    from core.clock import SimClock
    from core.wallclock import FakeWallClock

    db = tmp_path / "device.db"
    _registered(db)
    conn = connect(db)
    with transaction(conn):
        start_progression(conn, TWO_STAGES, stage=0, by="Jo", walker="bob",
                          wall="2026-03-02T08:00:00.000+00:00")  # fmt: skip
    conn.close()
    wall = FakeWallClock(SimClock(), MONDAY + dt.timedelta(hours=8), synced=False)
    status = RetainedStatus(
        db, Topics("retroguard", DEVICE), now=wall.now, zone=dt.UTC, wall_clock=wall
    )
    try:
        flagged = _decoded(status.stages(), status)["bob"]
        assert flagged.wall_unsynced
        assert status.stages() == []  # the same again: nothing to send
        wall.synced = True  # NTP's first setting
        (again,) = status.stages()
        assert '"wall_unsynced"' not in again.payload
        told = _decoded([again], status)["bob"]
        assert msgspec.structs.replace(told, wall_unsynced=True) == flagged
        assert status.stages() == []
    finally:
        status.close()
