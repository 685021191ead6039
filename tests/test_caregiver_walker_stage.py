"""The caregiver service learns each walker's progression from the device's retained
``stage/<walker>`` (a real device reporter on a real SQLite file, a real Mosquitto, the
service's own SQLite): the plan and progress pages show a stage the device moved on by itself
for a walker who is not the one chosen at the treadmill."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
from pathlib import Path

import msgspec
import pytest

from caregiver.storage import Store
from core.progress import prescribed_in, utc_of, week_of, week_start
from core.protocol import payloads
from core.protocol.messages import StageMessage
from core.protocol.walker import Walker
from core.zones import system_zone
from firmware.mqtt import MqttReporter
from firmware.storage.database import connect, transaction
from firmware.storage.progressions import advance_if_done
from firmware.storage.sessions import save_session
from firmware.storage.walkers import remove_walker
from tests.caregiver_support import (
    WAIT,
    Http,
    make_config,
    running_service,
    session_record,
    walked,
)
from tests.mqtt_helpers import Subscriber, config_for
from tests.stage_support import SHORT, anna_and_bob_on_stage_one
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
BOB = Walker("bob", "Bob")
NOON = "2026-03-03T12:00:00.000+00:00"


def _bob_walks_last_week_and_advances(path: Path, now: dt.datetime) -> None:
    """Two completed sessions of Bob's stage last week (Tuesday and Wednesday, midday UTC: the
    same week in any zone), then the courier's rule after his session."""
    zone = system_zone()
    monday = week_start(week_of(now, zone)) - dt.timedelta(weeks=1)
    conn = connect(path)
    try:
        for day in (1, 2):
            started = dt.datetime.combine(monday, dt.time(12), dt.UTC) + dt.timedelta(days=day)
            record = walked(session_record(DEVICE, started, backward_min=14, longest_min=2), SHORT)
            save_session(conn, msgspec.structs.replace(record, walker=BOB))
        with transaction(conn):
            state = advance_if_done(conn, zone, now.isoformat(), walker="bob")
        assert state is not None and state.stage == 1
    finally:
        conn.close()


def _said(stage: StageMessage) -> tuple[object, ...]:
    """What a stage says of the walker's progression (not when, nor this week's count)."""
    return (stage.stage, stage.status, stage.held, stage.change, stage.changed_wall,
            stage.stage_started_wall, stage.weeks_done)  # fmt: skip


def _stage(store: Store, walker: str) -> int | None:
    shown = store.walker_stage(DEVICE, walker)
    return None if shown is None else shown.stage


def test_a_stage_the_device_moved_on_for_a_walker_not_chosen_reaches_the_plan_page(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Bob is not the walker chosen at the treadmill (the device's progress message is the
    default walker's), and no command was sent from the dashboard: his stage, the device's
    advance after his sessions and his prescription reach the plan and progress pages from
    his retained stage message; his removal at the treadmill forgets it. Before, the page knew
    a stage only from a command's answer ("No progression sent to Bob ... answered") and
    prescribed him 3. The service sends the device nothing for it."""
    now = dt.datetime.now(dt.UTC)
    db = tmp_path / "device.db"
    anna_and_bob_on_stage_one(db, now)
    reporter = MqttReporter(
        config_for(mosquitto, discovery=False), device_id=DEVICE, device_name="T1", database=db
    )
    commands = Subscriber(mosquitto, [f"retroguard/{DEVICE}/cmd/#"])
    reporter.start()
    try:
        assert reporter.wait_until(lambda s: s.ready, WAIT)
        with running_service(make_config(mosquitto, tmp_path), background=False) as cg:
            web = Http(cg.port)
            assert web.login() == 303
            store = cg.store
            assert cg.ingestor.wait_for(
                lambda: _stage(store, "bob") == 1 and len(store.device_walkers(DEVICE)) == 3,
                WAIT,
            )
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=bob")
            # the stage's plan by its name and in words, with the stage's sessions a week
            assert "<strong>stage 1 of 2</strong> (alternate-2-2: " in page
            assert "2 min forward; belt 0.5 mph; twice a week</span>)" in page
            assert "<strong>2</strong> sessions are prescribed to Bob" in page

            _bob_walks_last_week_and_advances(db, now)
            reporter.sessions_changed()  # as the courier does after a session and an advance
            assert cg.ingestor.wait_for(lambda: _stage(store, "bob") == 2, WAIT)
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=bob")
            shown = page.split('id="in-force-progression"')[1].split("</p>")[0]
            assert 'data-source="device"' in shown and 'data-status="running"' in shown
            assert "<strong>stage 2 of 2</strong> (progression-week-2: " in shown
            assert "; belt 0.5 mph; 4 times a week</span>)" in shown
            assert "This week 0 of 4 sessions toward the stage" in shown
            assert "Last change: advanced" in shown
            # the stage moved on this week: this week counts against the lesser, 2, as the
            # treadmill counts it (core.progress.prescribed_weeks), the 4 from the next week
            # (it said 4 here, the treadmill 2: test_a_schedule_raising_the_count_mid_week_...)
            assert "<strong>2</strong> sessions are prescribed to Bob" in page
            _, _, page = web.request("GET", f"/devices/{DEVICE}/progress?walker=bob")
            assert 'id="walker-stage" data-stage="2"' in page
            assert "<strong>0 of 2</strong> prescribed sessions done" in page
            next_week = week_of(now + dt.timedelta(weeks=1), system_zone())
            assert prescribed_in(next_week, store.prescribed_weeks(DEVICE, "bob")) == 4
            # a stage whose walker is not its topic's (a broken or forged sender) is refused
            told = store.walker_stage(DEVICE, "bob")
            assert told is not None
            rejected = cg.ingestor.rejected
            assert cg.ingestor.handle(
                f"retroguard/{DEVICE}/stage/anna", payloads.encode(told).encode()
            )
            assert (
                cg.ingestor.rejected == rejected + 1 and store.walker_stage(DEVICE, "anna") is None
            )
            # Anna has no progression: nothing is said for her but what was said before
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=anna")
            assert 'data-source="device"' not in page and 'id="walker-stage"' not in page

            conn = connect(db)
            with transaction(conn):
                remove_walker(conn, "bob", by="Jo", wall="w3")
            conn.close()
            reporter.walkers_changed()  # as `retroguard walker remove` does through the courier
            assert cg.ingestor.wait_for(lambda: store.walker_stage(DEVICE, "bob") is None, WAIT)
        assert not commands.messages  # the service sent the treadmill nothing for any of it
    finally:
        commands.close()
        reporter.close()


def test_a_stage_redelivered_or_older_changes_nothing_and_a_cleared_one_is_forgotten(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "caregiver.db")
    try:
        newer = StageMessage(
            schema=1, device_id=DEVICE, walker=BOB, wall_time="2026-03-03T10:00:00.000+00:00",
            progression="two", stage=2, stages=2, stage_name="progression-week-2",
            stage_started_wall="2026-03-09T00:00:00.000+00:00", status="running", held=False,
            change="advanced", changed_wall="2026-03-03T10:00:00.000+00:00",
            sessions_per_week=4, stage_weeks=1, weeks_done=0, week="2026-W10", week_done=0,
        )  # fmt: skip
        older = msgspec.structs.replace(newer, wall_time="2026-03-02T10:00:00.000+00:00", stage=1)
        text = payloads.encode(newer).encode()
        arrived = utc_of(newer.wall_time).timestamp()  # received as the device stamped it
        assert store.set_walker_stage(DEVICE, newer, text, arrived + 1)
        assert not store.set_walker_stage(DEVICE, newer, text, arrived + 2)  # a redelivery
        older_text = payloads.encode(older).encode()
        assert not store.set_walker_stage(DEVICE, older, older_text, arrived + 3)
        assert _stage(store, "bob") == 2
        assert store.forget_walker_stage(DEVICE, "bob") and _stage(store, "bob") is None
    finally:
        store.close()


def test_a_stage_flagged_as_stamped_by_an_unset_clock_is_taken_by_arrival(tmp_path: Path) -> None:
    """A stage the device computed before NTP set its clock (``wall_unsynced``) replaces the
    kept one however far behind its time, and its time orders nothing once kept: the next
    stage replaces it whatever its time. Unflagged stages still keep their order."""
    store = Store(tmp_path / "caregiver.db")
    try:
        from tests.stage_support import STAGE_EXAMPLE

        def stored(stage: int, at: str, unsynced: bool = False) -> bool:
            message = msgspec.structs.replace(
                STAGE_EXAMPLE, stage=stage, wall_time=at, wall_unsynced=unsynced
            )
            text = payloads.encode(message).encode()
            return store.set_walker_stage(DEVICE, message, text, utc_of(NOON).timestamp())

        assert stored(1, NOON)
        assert not stored(2, "2026-03-03T11:00:00.000+00:00")  # older: the kept one stays
        assert stored(2, "2026-03-03T11:00:00.000+00:00", unsynced=True)  # by arrival
        assert _stage(store, "bob") == 2
        assert not stored(2, "2026-03-03T11:00:00.000+00:00", unsynced=True)  # a redelivery
        assert stored(1, "2026-03-03T10:00:00.000+00:00")  # kept with no time: replaced
        assert _stage(store, "bob") == 1
    finally:
        store.close()


def test_a_stage_s_unset_clock_flag_is_kept_with_it(caregiver_db: str) -> None:
    """The ``wall_unsynced`` flag is read back with the stage on both engines (it is kept in
    the stored message): the plan and progress pages mark the stage's dates from it, "the
    treadmill's clock was not set". The same stage sent again once the clock is set replaces
    it, unflagged. A reopened store reads what the first wrote."""
    from tests.stage_support import STAGE_EXAMPLE

    flagged = msgspec.structs.replace(STAGE_EXAMPLE, held=True, status="held", wall_unsynced=True)
    synced = msgspec.structs.replace(flagged, wall_time=NOON, wall_unsynced=False)
    arrived = utc_of(NOON).timestamp()
    store = Store(caregiver_db)
    try:
        text = payloads.encode(flagged).encode()
        assert store.set_walker_stage(DEVICE, flagged, text, arrived)
    finally:
        store.close()
    store = Store(caregiver_db)
    try:
        kept = store.walker_stage(DEVICE, "bob")
        assert kept is not None and kept.wall_unsynced and kept.held
        assert store.set_walker_stage(DEVICE, synced, payloads.encode(synced).encode(), arrived)
        kept = store.walker_stage(DEVICE, "bob")
        assert kept is not None and not kept.wall_unsynced and kept.held
    finally:
        store.close()


def test_a_stage_stamped_by_a_clock_far_ahead_gives_way_to_the_device_s_next(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The device's clock jumped a year ahead, sent Bob's stage (held), and came back: the
    held stage is shown (it is the device's word) and logged as stamped ahead, and the next
    stage the device sends, stamped at the true time, replaces it. Before, the year-ahead
    one was newest by the device's time until Bob's topic was cleared, and the page said held
    long after the release. A stage stamped a few minutes ahead still orders those after it."""
    from tests.stage_support import STAGE_EXAMPLE

    now = dt.datetime.now(dt.UTC)
    topic = f"retroguard/{DEVICE}/stage/bob"

    def sent(at: dt.datetime, stage: int, held: bool) -> bytes:
        return payloads.encode(
            msgspec.structs.replace(
                STAGE_EXAMPLE,
                wall_time=at.isoformat(timespec="milliseconds"),
                stage=stage,
                status="held" if held else "running",
                held=held,
            )
        ).encode()

    with running_service(make_config(mosquitto, tmp_path), background=False) as cg:
        store, ingestor = cg.store, cg.ingestor
        with caplog.at_level(logging.WARNING, logger="caregiver.ingest"):
            assert ingestor.handle(topic, sent(now + dt.timedelta(days=365), 2, held=True))
        shown = store.walker_stage(DEVICE, "bob")
        assert shown is not None and (shown.stage, shown.held) == (2, True)
        assert "min ahead of this service's clock: the device's clock is wrong" in caplog.text
        assert ingestor.handle(topic, sent(now, 2, held=False))  # released, the clock back
        shown = store.walker_stage(DEVICE, "bob")
        assert shown is not None and (shown.stage, shown.held) == (2, False)
        # a clock a few minutes fast is a clock: what it stamped still orders what follows
        assert ingestor.handle(topic, sent(now + dt.timedelta(minutes=5), 1, held=False))
        assert ingestor.handle(topic, sent(now + dt.timedelta(minutes=4), 2, held=True))
        shown = store.walker_stage(DEVICE, "bob")
        assert shown is not None and (shown.stage, shown.held) == (1, False)


def test_a_stage_computed_before_ntp_set_the_clock_is_shown_and_sent_again_once_it_is(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service holds Bob's stage as the device sent it (running, stamped at the true
    time); Bob's stage was then held while the broker was out of reach, and the power was
    cut. The device comes back with its clock unset, an hour behind (the time it saved
    before the cut: no battery-backed clock). A real courier (its wall clock injected) sends
    the held stage flagged ``wall_unsynced``: the service takes it by arrival and the plan
    page says held. Before, it was dropped as an hour older than the kept one, and the device, which
    sends a stage again only when it changes, never sent it again: the page said running
    until Bob's next change. NTP's step then makes the courier send the same stage again,
    unflagged and stamped with the true time, within the heartbeat's second (the minute's
    refresh pushed an hour away): nothing about Bob changed."""
    from core.clock import SimClock
    from core.protocol.topics import Topics
    from core.wallclock import FakeWallClock
    from firmware.config import Config, DeviceConfig, StorageConfig
    from firmware.courier.channel import LoopChannel
    from firmware.courier.service import Courier
    from firmware.link import messages
    from firmware.link.framing import frame
    from firmware.mqtt import reporter as reporter_module
    from firmware.mqtt.status import RetainedStatus
    from firmware.storage.progressions import change_progression

    monkeypatch.setattr(reporter_module, "PROGRESS_REFRESH_S", 3600.0)
    now = dt.datetime.now(dt.UTC)
    true_now = now.isoformat(timespec="milliseconds")
    db = tmp_path / "device.db"
    anna_and_bob_on_stage_one(db, now)
    topic = f"retroguard/{DEVICE}/stage/bob"
    synced = FakeWallClock(SimClock(), now)
    before_cut = RetainedStatus(db, Topics("retroguard", DEVICE), now=synced.now, wall_clock=synced)
    try:
        (running,) = before_cut.stages()
    finally:
        before_cut.close()
    conn = connect(db)
    with transaction(conn):  # held while the broker was out of reach, then the power cut
        change_progression(conn, "hold", by="Jo", walker="bob", wall=true_now)
        conn.execute("UPDATE progressions SET stage_started_boot = 'the boot before the cut'")
    conn.close()
    hour = 3600.0

    class Watched(FakeWallClock):
        """Says when the courier's heartbeat has looked twice (its first beat is done)."""

        beats = 0
        looked = threading.Event()

        def synchronized(self) -> bool:
            if threading.current_thread().name == "retroguard-courier-heartbeat":
                self.beats += 1
                if self.beats >= 2:
                    self.looked.set()
            return super().synchronized()

    wall = Watched(SimClock(), now - dt.timedelta(seconds=hour), synced=False)
    config = Config(
        device=DeviceConfig(id=DEVICE, name="T1"),
        storage=StorageConfig(database=str(db)),
        mqtt=config_for(mosquitto, discovery=False),
    )

    def shown() -> StageMessage | None:
        return cg.store.walker_stage(DEVICE, "bob")

    loop_end, courier_end = socket.socketpair()
    with running_service(make_config(mosquitto, tmp_path), background=False) as cg:
        web = Http(cg.port)
        assert web.login() == 303
        assert cg.ingestor.handle(topic, running.payload.encode())  # from before the cut
        kept = shown()
        assert kept is not None and not kept.held and kept.wall_time == true_now
        courier = Courier(config, LoopChannel(courier_end), wall_clock=wall)
        serving = threading.Thread(target=courier.run, name="test-courier", daemon=True)
        serving.start()
        try:
            assert cg.ingestor.wait_for(lambda: (s := shown()) is not None and s.held, WAIT)
            flagged = shown()
            assert flagged is not None and flagged.wall_unsynced
            assert utc_of(flagged.wall_time) < utc_of(true_now)  # the unset clock's hour
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=bob")
            assert 'data-status="held"' in page.split('id="in-force-progression"')[1]

            # the start's wakes are spent (the heartbeat's first beat, then a publisher pass
            # after it): only the clock's synchronisation can send the stage again now
            assert wall.looked.wait(WAIT)
            assert courier.reporter is not None and courier.reporter.wait_drained(WAIT)
            wall.step(hour)  # NTP's first setting: synchronised, the true time
            assert cg.ingestor.wait_for(
                lambda: (s := shown()) is not None and not s.wall_unsynced, WAIT
            )
            again = shown()
            assert again is not None and again.wall_time == true_now
            # the same stage (the week aside: an hour back may be last week's)
            assert _said(again) == _said(flagged)
        finally:
            loop_end.sendall(frame(messages.encode(messages.Goodbye("test over"))))
            loop_end.shutdown(socket.SHUT_WR)  # the loop is gone: the courier drains and closes
            serving.join(WAIT)
            loop_end.close()
    assert not serving.is_alive()


def test_a_schedule_raising_the_count_mid_week_counts_that_week_as_the_treadmill_does(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Bob's stage prescribes 2 a week; this week the physio assigns a schedule of 4 a week.
    The treadmill counts this week against the lesser, 2, and the 4 from the next week
    (``retroguard sessions``, its session summary: ``core.progress.prescribed_weeks``), so the
    week is not made a missed one after the fact. The dashboard stored the stage message's 4 for
    this week: its progress page, plan page and reports said "0 of 4" where the treadmill said
    "0 of 2". They say what the treadmill's own record says, this week and the next."""
    from core.plan_presets import PRESETS
    from core.protocol.plan import Progression, Stage
    from firmware.storage.progressions import prescribed_by_week, start_progression

    now = dt.datetime.now(dt.UTC)
    zone = system_zone()
    db = tmp_path / "device.db"
    anna_and_bob_on_stage_one(db, now)
    reporter = MqttReporter(
        config_for(mosquitto, discovery=False), device_id=DEVICE, device_name="T1", database=db
    )
    reporter.start()
    try:
        assert reporter.wait_until(lambda s: s.ready, WAIT)
        with running_service(make_config(mosquitto, tmp_path), background=False) as cg:
            web = Http(cg.port)
            assert web.login() == 303
            store = cg.store
            assert cg.ingestor.wait_for(lambda: _stage(store, "bob") == 1, WAIT)
            four = Progression("four", (Stage(PRESETS["progression-week-3"], 2, 4),))
            conn = connect(db)
            with transaction(conn):
                start_progression(conn, four, stage=0, by="Jo", walker="bob",
                                  wall=now.isoformat())  # fmt: skip
            device = prescribed_by_week(conn, zone, walker="bob")
            conn.close()
            this_week = week_of(now, zone)
            next_week = week_of(now + dt.timedelta(weeks=1), zone)
            assert prescribed_in(this_week, device) == 2  # the treadmill's own count
            assert prescribed_in(next_week, device) == 4
            reporter.sessions_changed()  # as the courier does after a progression stored
            assert cg.ingestor.wait_for(
                lambda: (
                    (told := store.walker_stage(DEVICE, "bob")) is not None
                    and told.progression == "four"
                ),
                WAIT,
            )
            kept = store.prescribed_weeks(DEVICE, "bob")
            assert prescribed_in(this_week, kept) == 2
            assert prescribed_in(next_week, kept) == 4
            _, _, page = web.request("GET", f"/devices/{DEVICE}/progress?walker=bob")
            assert "<strong>0 of 2</strong> prescribed sessions done" in page
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=bob")
            assert "<strong>2</strong> sessions are prescribed to Bob" in page
    finally:
        reporter.close()
