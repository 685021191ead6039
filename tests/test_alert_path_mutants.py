"""The alert path's decisions that hand mutation (store23) found no test noticing.

On a real SQLite file, and where the publisher is concerned against a real Mosquitto with the
reporter's clock in the test's hands (as :mod:`tests.test_mqtt_republish`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import select
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from caregiver.storage import NewEvent
from caregiver.storage.faults import StorageFault
from core.protocol.events import Event, EventType
from core.protocol.payloads import receipt_payload
from core.protocol.topics import Topics
from firmware.config import MqttConfig
from firmware.courier.channel import LoopChannel
from firmware.link import messages as link_messages
from firmware.link.endpoint import UNCONFIRMED_RESEND_S, CourierLink
from firmware.link.framing import FrameReader
from firmware.mqtt import MqttReporter, ReporterStatus
from firmware.session.record import SessionArchive
from firmware.session.record import session_payload as firmware_session_payload
from firmware.storage.database import FileDatabase
from firmware.storage.events import EventStore
from firmware.storage.fallback import DISK_RETRY_S, FallbackDatabase
from firmware.storage.outbox import PRIORITY_PROTECTED, MessageKind, Outbox, queue_message
from tests.caregiver_support import session_record
from tests.mqtt_helpers import WAIT, config_for, fall, ready_reporter
from tests.storage_support import FillableDisk, alert, break_the_sessions_table, wait_for
from tests.test_caregiver_ingest_batch import DEVICE as CARE_DEVICE
from tests.test_caregiver_ingest_batch import _event, _id
from tests.test_caregiver_ingest_failed_handling import MARKER, _receipted, _receipts
from tests.test_mqtt_receipts import ACL, WITHOUT_EVENTS
from tests.test_mqtt_republish import BASE_S, Clock, rounds_in
from tools.broker import Mosquitto, mosquitto_available

DEVICE = "tm-1"


def _outbox(tmp_path: Path) -> Outbox:
    return Outbox(FileDatabase(tmp_path / "d.db"), Topics("retroguard", DEVICE), receipts=True)


def test_a_protected_row_no_receipt_can_name_leaves_at_the_puback(tmp_path: Path) -> None:
    """A protected row without a message id (queued before receipts, its id not recoverable
    from its payload by the migration) can never be named by a receipt: it leaves at the
    broker's PUBACK as before receipts, beside an alert that waits for one. Mutant that
    survived: ``message_id IS NOT NULL`` dropped from :meth:`Outbox.settle`, so such a row
    waited for ever and was sent again at every round, for ever."""
    outbox = _outbox(tmp_path)
    alert = Event.now(EventType.FALL, DEVICE, 1.0, "TRIPPED", "fall")
    outbox.enqueue_event(alert)
    outbox.database.write(
        lambda conn: queue_message(
            conn, MessageKind.EVENT, PRIORITY_PROTECTED, outbox.topics.event, '{"old":1}'
        )
    )
    outbox.settle(r.id for r in outbox.fetch_after(0, 10))
    assert [r.payload for r in outbox.fetch_after(0, 10)] == [
        r.payload for r in outbox.awaiting_receipt(10)
    ]
    assert outbox.depth() == 1 and outbox.awaiting_count() == 1
    assert alert.id in outbox.awaiting_receipt(10)[0].payload
    outbox.close()


def _live_for(device: MqttReporter, clock: Clock, seconds: float, deleted: int = 0) -> None:
    """:func:`tests.test_mqtt_republish.live_for`, counting ``deleted`` rows the broker had
    acknowledged and that left without a receipt."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + BASE_S)
        assert device.wait_drained(WAIT)
        assert device.wait_until(
            lambda s: s.acked == s.depth + device.receipted + s.republished + deleted, WAIT
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def device(mosquitto: Mosquitto, tmp_path: Path, clock: Clock) -> Iterator[MqttReporter]:
    with ready_reporter(mosquitto, tmp_path / "device.db", "treadmill-1", clock=clock) as reporter:
        yield reporter


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_a_round_with_nothing_waiting_brings_the_republication_back_to_its_first_interval(
    device: MqttReporter, clock: Clock
) -> None:
    """Rows that stopped waiting without a receipt (forgotten by :meth:`Outbox.delete`, as a
    damaged file's unsalvageable queue is) leave the next round with nothing to send: the
    backoff starts over there, so the next alert's first copy comes ``receipt_retry_s`` after
    it, not after the wait the old one had reached. Mutant that survived: the reset dropped,
    the new alert's copy four minutes late."""
    old = fall("treadmill-1", 1.0)
    device.sink.handle(old)
    assert device.wait_until(lambda s: s.awaiting == 1, WAIT)
    _live_for(device, clock, BASE_S * (1 + 2))  # two unanswered rounds: the next wait is 4 min
    assert device.status.republished == 2
    device.outbox.delete(r.id for r in device.outbox.awaiting_receipt(10))
    _live_for(device, clock, BASE_S * 4, deleted=1)  # the round falls due, nothing to send
    assert device.status.republished == 2
    device.sink.handle(fall("treadmill-1", 2.0))
    assert device.wait_until(lambda s: s.awaiting == 1, WAIT)
    _live_for(device, clock, BASE_S, deleted=1)
    assert device.status.republished == 3  # its first copy, a minute after the round


def _taken_or_refused(refusals: int, status: ReporterStatus) -> bool:
    """The broker took the alert at last, or refused it ``refusals`` times."""
    return status.awaiting == 1 or status.refused == refusals


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_an_alert_refused_then_taken_backs_off_as_any_alert_waiting_for_its_receipt(
    tmp_path: Path, clock: Clock
) -> None:
    """An alert the broker refused (its ACL) is offered every ``receipt_retry_s``; once the
    fixed ACL lets it through it waits for a consumer's receipt like any other alert, sent
    again on the backoff, not every minute as a refused row. Mutant that survived: a row
    the broker took at last not struck off the refused ones, so it went out twice a minute
    (as refused, and as waiting) until a receipt came."""
    broker = Mosquitto(users={"treadmill-1": "dev1-pw"}, acl=WITHOUT_EVENTS).start()
    try:
        config = dataclasses.replace(config_for(broker), username="treadmill-1", password="dev1-pw")
        device = MqttReporter(
            config,
            device_id="treadmill-1",
            device_name="T",
            database=tmp_path / "d.db",
            clock=clock,
        )
        device.start()
        assert device.wait_until(lambda s: s.ready, WAIT)
        device.sink.handle(fall("treadmill-1"))
        assert device.wait_until(lambda s: s.refused == 1, WAIT)
        broker.reload_acl(ACL)  # SIGHUP: read when the broker gets to it
        tries = 1
        while device.status.awaiting == 0:  # offered each minute until the broker takes it
            assert tries < 20
            clock.now += BASE_S
            device.wake()  # (not drained meanwhile: the refused row is not the broker's)
            assert device.wait_until(functools.partial(_taken_or_refused, tries + 1), WAIT)
            tries = device.status.refused
        minutes = 9
        for _ in range(minutes):
            clock.now += BASE_S
            device.wake()
            assert device.wait_drained(WAIT)
            assert device.wait_until(lambda s: s.acked == 1 + s.republished, WAIT)
        assert device.status.refused == tries
        assert device.status.republished == rounds_in(minutes * BASE_S) == 3
        assert device.status.depth == 1  # kept until a receipt names it
        device.close()
    finally:
        broker.cleanup()


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_rows_in_flight_when_the_outbox_moves_to_memory_are_sent_again_and_leave(
    mosquitto: Mosquitto, tmp_path: Path, disk: FillableDisk
) -> None:
    """The broker has not acknowledged three alerts (it is stopped) when the disk fills and
    the outbox moves to memory: the publisher starts the outbox over, so they are published
    again from memory and leave once the broker takes them; the broker's answers to the first
    copies, whose message ids the move forgot, do not matter. Mutant that survived: the cursor
    not set back at the move, so the three were never fetched again and stayed queued for
    good (settled by nothing)."""
    db = FallbackDatabase(tmp_path / "events.db")
    assert db.open().fault is None
    config = dataclasses.replace(config_for(mosquitto), alert_receipts=False)
    device = MqttReporter(config, device_id="treadmill-1", device_name="T", database=db)
    device.start()
    try:
        assert device.wait_until(lambda s: s.ready, WAIT)
        mosquitto.pause()
        for i in range(3):
            device.sink.handle(alert("treadmill-1", float(i)))
        assert wait_for(lambda: len(device._inflight) == 3)  # handed to paho, unanswered
        disk.fill()
        device.sink.handle(alert("treadmill-1", 10.0))  # needs a page the file cannot give
        assert db.in_memory
        mosquitto.resume()
        assert device.wait_drained(WAIT)
        assert device.status.depth == 0
    finally:
        mosquitto.resume()
        device.close()
        db.close()


def test_a_retry_the_disk_refused_waits_its_interval_before_the_next(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """While the records are in memory the file is tried every :data:`DISK_RETRY_S`, counted
    from the last try, a failed one too: a disk that refused at one try is not tried at every
    call after it (the courier calls once a second). Mutant that survived: a failed try not
    putting the next one off, so the file was opened, checked and probed at every call."""
    clock = Clock()
    db = FallbackDatabase(tmp_path / "events.db", clock=clock)
    assert db.open().fault is None
    EventStore(db).append(alert("tm-1"))
    disk.fill()
    EventStore(db).append(alert("tm-1", 2.0))
    assert db.in_memory
    clock.now += DISK_RETRY_S
    assert not db.recover()  # due: tried, and the disk is still full
    disk.free()
    clock.now += DISK_RETRY_S - 0.1
    assert not db.recover()  # the next try is not due yet
    clock.now += 0.2
    assert db.recover()
    db.close()


def test_an_alert_acknowledged_again_says_it_was_already(tmp_path: Path) -> None:
    """An alert outside any incident, acknowledged twice (a caregiver's ack held up on the way
    and sent again): the second answer says it was already acknowledged, and by whom the
    first was stands. Mutant that survived: every ack answered as new."""
    outbox = _outbox(tmp_path)
    alert_ = Event.now(EventType.FALL, DEVICE, 1.0, "TRIPPED", "fall")
    outbox.enqueue_event(alert_)
    assert outbox.acknowledge(alert_.id, "Ann") == (alert_.id, True)
    assert outbox.acknowledge(alert_.id, "Bob") == (alert_.id, False)
    assert outbox.acknowledged_by(alert_.id) == "Ann"
    outbox.close()


def test_the_caregiver_has_not_confirmed_since_the_oldest_alert_waiting(tmp_path: Path) -> None:
    """How long the caregiver service has not confirmed an alert is told from the oldest one
    waiting for its receipt, not the newest. Mutant that survived: the newest's time, so a
    service that stopped confirming hours ago looked as if it had a minute ago."""
    outbox = _outbox(tmp_path)
    for i in range(3):
        outbox.enqueue_event(Event.now(EventType.FALL, DEVICE, float(i), "TRIPPED", "fall"))
    rows = outbox.fetch_after(0, 10)
    walls = ["2026-12-06T01:00:00.000+00:00", "2026-12-06T02:00:00.000+00:00"]
    outbox.database.write(
        lambda conn: conn.executemany(
            "UPDATE outbox SET queued_wall = ? WHERE id = ?",
            [(walls[0], rows[1].id), (walls[1], rows[2].id)],
        )
    )
    outbox.settle([rows[1].id, rows[2].id])  # the first is not the broker's yet
    assert outbox.oldest_awaiting_wall() == walls[0]
    outbox.close()


def test_a_receipt_for_a_session_whose_summary_was_not_sent_yet_keeps_it(
    tmp_path: Path,
) -> None:
    """The publisher hands the receipt the newest row it has sent: a receipt naming a session
    whose (amended) summary it has not sent yet is for an earlier copy, and the summary
    stays queued. The reporter is made, not started (nothing is sent; the receipt is taken
    as the publisher thread takes it). Mutant that survived: the publisher passing no such
    bound, so the amended summary left unsent."""
    device = MqttReporter(
        MqttConfig(host="127.0.0.1"),
        device_id="treadmill-1",
        device_name="T",
        database=tmp_path / "d.db",
    )
    try:
        archive = SessionArchive(device.outbox.database, summary_topic=device.topics.session)
        record = session_record(
            "treadmill-1", dt.datetime.now(dt.UTC), backward_min=12, longest_min=10
        )
        assert archive.save(record, final=True)
        assert device.outbox.depth() == 1
        device._take_receipt(receipt_payload([record.id], "caregiver").encode())
        assert device.outbox.depth() == 1 and device.receipted == 0
    finally:
        device.close()


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_a_copy_still_in_flight_is_not_sent_again_at_the_next_round(
    mosquitto: Mosquitto, device: MqttReporter, clock: Clock
) -> None:
    """An alert waits for its receipt; the broker stops answering after the first round's copy
    (no PUBACK): the next round leaves that copy to paho (which sends it again itself on a
    reconnect) instead of adding another. Mutant that survived: every round sent a new copy
    of a row still in flight."""
    device.sink.handle(fall("treadmill-1"))
    assert device.wait_until(lambda s: s.awaiting == 1, WAIT)
    mosquitto.pause()
    try:
        for wait_s in (BASE_S, 2 * BASE_S, 4 * BASE_S):
            clock.now += wait_s
            assert device.wait_drained(WAIT)
        assert device.status.republished == 1
    finally:
        mosquitto.resume()


def _queued_ids(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {str(m) for (m,) in conn.execute("SELECT message_id FROM outbox")}
    finally:
        conn.close()


def test_a_salvaged_queue_the_new_file_would_not_take_is_carried_at_the_next_opening(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """A damaged file is moved aside and a new one started, which takes the probe but not the
    queue salvaged from the old one (the disk is full past a page or two): the moved-aside file
    is marked, and the next opening with room carries its alerts in. Mutant that survived: the
    mark not made when carrying failed, so those alerts stayed in the moved-aside file only."""
    path = tmp_path / "events.db"
    outbox = Outbox(path, Topics("retroguard", DEVICE))
    alerts = [alert(DEVICE, float(i)) for i in range(3)]
    for event in alerts:
        outbox.enqueue_event(event)
    outbox.close()
    break_the_sessions_table(path)
    disk.fill()  # every connection from now on: no page beyond those its file has
    db = FallbackDatabase(path)
    opened = db.open()
    assert opened.moved is not None and opened.fault is None and opened.moved.carried == 0
    db.close()
    assert not {a.id for a in alerts} & _queued_ids(path)  # not in the new file yet
    disk.free()
    db = FallbackDatabase(path)
    assert db.open().moved is None
    db.close()
    assert {a.id for a in alerts} <= _queued_ids(path)


def test_a_row_the_file_gave_another_message_meanwhile_keeps_both_at_the_merge(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """While the courier's records were in memory something else wrote to the file (its
    numbering went on there too): at the merge, an alert queued in memory whose outbox id the
    file has given to another message gets a new id; both are queued. Mutant that survived:
    the merge taking any row of that id for the same message, so the alert was never written
    to the file (the other row only had its receipt state set)."""
    path = tmp_path / "events.db"
    db = FallbackDatabase(path)
    assert db.open().fault is None
    outbox = Outbox(db, Topics("retroguard", DEVICE))
    outbox.enqueue_telemetry('{"t":0}')
    disk.fill()
    fall_ = alert(DEVICE, 1.0)
    outbox.enqueue_event(fall_)
    assert db.in_memory
    (memory_row,) = [r for r in outbox.fetch_after(0, 10) if fall_.id in r.payload]
    other = Outbox(path, Topics("retroguard", DEVICE))  # another writer, not the courier's
    other.enqueue_telemetry('{"t":1}')
    assert [r.id for r in other.fetch_after(0, 10)][-1] == memory_row.id  # the same id
    other.close()
    disk.free()
    assert db.recover(now=True)
    payloads = [r.payload for r in outbox.fetch_after(0, 10)]
    assert '{"t":1}' in payloads and any(fall_.id in p for p in payloads)
    assert fall_.id in _queued_ids(path)
    db.close()


class _Still:
    """A clock that moves only when the test moves it (the link's real-time clock)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _arrived(courier_end: socket.socket, reader: FrameReader) -> list[str]:
    """Ids of the events the loop's last poll handed over (a socket pair: what the poll sent
    is there to read once it returns)."""
    ids: list[str] = []
    while select.select([courier_end], [], [], 0)[0]:
        for payload in reader.feed(courier_end.recv(1 << 16)):
            message = link_messages.decode_for_courier(payload)
            if isinstance(message, link_messages.EventRecord):
                ids.append(message.event.id)
    return ids


def _link_with_courier(
    clock: _Still, storage_ok: bool
) -> tuple[CourierLink, LoopChannel, socket.socket, FrameReader, list[Event]]:
    """A link whose courier has said whether its storage works and has been handed three
    alerts, none confirmed."""
    link = CourierLink(clock, real_clock=clock)
    loop_end, courier_end = socket.socketpair()
    link.attach(loop_end)
    channel = LoopChannel(courier_end)
    channel.send(link_messages.StorageHealth(storage_ok, "as the test says"))
    tries = 600  # a net against hangs (30 s): the word is in the socket already
    while link.storage_ok is not storage_ok and tries:
        link.poll()
        select.select([loop_end], [], [], 0.05)
        tries -= 1
    assert link.storage_ok is storage_ok
    alerts = [Event.now(EventType.FALL, DEVICE, float(i), "TRIPPED", "fall") for i in range(3)]
    for event in alerts:
        link.submit(event)
    reader = FrameReader()
    link.poll()
    assert _arrived(courier_end, reader) == [e.id for e in alerts]
    return link, channel, courier_end, reader, alerts


def test_every_record_left_unconfirmed_is_handed_over_again_in_one_poll() -> None:
    """Three alerts the courier (its storage working) never confirmed are all handed over
    again once :data:`UNCONFIRMED_RESEND_S` has passed, in one loop iteration, oldest first.
    Mutant that survived: the one handed over again not moved to the end of the line, so the
    oldest went again and the others never did."""
    clock = _Still()
    link, channel, courier_end, reader, alerts = _link_with_courier(clock, storage_ok=True)
    clock.now += UNCONFIRMED_RESEND_S
    link.poll()
    assert _arrived(courier_end, reader) == [e.id for e in alerts]
    link.poll()
    assert _arrived(courier_end, reader) == []  # each waits its time again
    channel.close()
    link.close()


def test_records_are_not_handed_over_again_while_the_courier_says_storage_fails() -> None:
    """While the courier says its storage fails it holds what it can in memory and says so;
    the loop keeps its records and hands them over again when storage comes back, not every
    :data:`UNCONFIRMED_RESEND_S` meanwhile. Mutant that survived: the periodic hand-over
    running whatever the courier said."""
    clock = _Still()
    link, channel, courier_end, reader, _alerts = _link_with_courier(clock, storage_ok=False)
    clock.now += UNCONFIRMED_RESEND_S
    link.poll()
    assert _arrived(courier_end, reader) == []
    assert link.pending == 3
    channel.close()
    link.close()


def test_a_record_handed_over_again_is_counted_once_against_the_bound() -> None:
    """The loop keeps each unconfirmed record once, whatever hands it over again: its bytes are
    counted once, so an informational event beside it is not shed while the two fit the bound.
    Mutant that survived: a record remembered again counted again (the bound reached early,
    the information dropped)."""
    start = Event.now(EventType.START, DEVICE, 0.0, "STARTING", "monitor started")
    fall_ = Event.now(EventType.FALL, DEVICE, 1.0, "TRIPPED", "fall")
    sizes = [len(link_messages.encode(link_messages.EventRecord(e, None))) for e in (start, fall_)]
    link = CourierLink(_Still(), max_pending_bytes=sum(sizes) + sizes[1] // 2)
    link.submit(start)
    link.submit(fall_)
    link.submit(fall_)  # again (a repeat): still one record
    assert link.pending == 2 and link.dropped == 0
    link.close()


def test_a_resent_event_the_caregiver_has_is_receipted_again(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A device sends an event again when no receipt reached it (the first was lost): the
    service has it already (a duplicate, not stored twice) and receipts it again, or the
    device would keep it and send it for ever. Mutant that survived: only a new event
    receipted."""
    event = _event(1, "fall")
    with _receipted(tmp_path, str(tmp_path / "c.db"), mosquitto) as (service, sub):
        assert service.ingestor.handle_batch([event])
        assert _receipts(service, sub) == [[_id(event)]]  # sent (and lost on the way, say)
        assert service.ingestor.handle_batch([event])  # so the device sends it again
        assert _receipts(service, sub) == [[_id(event)], [_id(event)]]
        assert [e.id for e in service.store.events_for(CARE_DEVICE) if e.reason != MARKER] == [
            _id(event)
        ]


@pytest.mark.parametrize("before", [1, 0], ids=["after-a-receipt", "first-of-its-device"])
def test_a_message_failing_in_the_batch_stored_again_sends_no_receipt(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, before: int
) -> None:
    """A batch is stored again, each message under a savepoint, after one message's handling
    failed; a second one fails there after its receipt was queued: it is undone whole, its
    receipt too, whether the batch had queued a receipt for its device before it (``before``)
    or not. Mutants that survived: the receipts queued after the undo point left in place,
    and a device's receipts made by the failed message alone left in place; either way the
    device would forget an event the service does not have."""
    import caregiver.ingest as ingest

    kept = [_event(1, "fall")] if before else []
    first, second = _event(2, "fall"), _event(3, "fall")
    failing = {_id(first), _id(second)}
    real = ingest._as_stored

    def buggy(event: NewEvent, now: float) -> object:
        if event.id in failing:
            failing.discard(event.id)  # each fails once: the first in the first attempt
            raise KeyError("a bug after the receipt was queued")
        return real(event, now)

    with _receipted(tmp_path, str(tmp_path / "c.db"), mosquitto) as (service, sub):
        monkeypatch.setattr(ingest, "_as_stored", buggy)
        assert service.ingestor.handle_batch([*kept, first, second])
        monkeypatch.setattr(ingest, "_as_stored", real)
        assert not failing  # both failed
        assert service.store.event(_id(second)) is None
        assert _receipts(service, sub) == ([[_id(kept[0])]] if kept else [])


def test_a_held_message_stays_held_while_the_database_still_refuses_it(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event arrives while the caregiver's database refuses writes (read-only): it is held,
    not acknowledged to the broker, and each retry that the database still refuses keeps it
    held; once the database takes it, it is stored and receipted. Mutants that survived: a
    retry's failure ignored (the message let go, acknowledged to the broker unstored), the
    refusal taken for a fault of the message's own data (let go the same way), and the held
    batch acknowledged to the broker all the same."""
    monkeypatch.setattr("caregiver.ingest.HELD_RETRY_S", 0.05)
    event = _event(1, "fall")
    with _receipted(tmp_path, str(tmp_path / "c.db"), mosquitto) as (service, sub):
        ingestor = service.ingestor
        tries: list[bool] = []
        handle = ingestor.handle

        def counted(topic: str, payload: bytes, retained: bool = False) -> bool:
            done = handle(topic, payload, retained)
            tries.append(done)
            return done

        monkeypatch.setattr(ingestor, "handle", counted)
        client = ingestor.client
        assert client is not None
        acked: list[int] = []
        ack = client.ack

        def recorded(mid: int, qos: int) -> None:
            acked.append(mid)
            ack(mid, qos)

        monkeypatch.setattr(client, "ack", recorded)
        with service.store._lock:  # refuses every write, as a disk remounted read-only does
            service.store._db.execute("PRAGMA query_only = 1")
        sub.client.publish(event[0], event[1], qos=1)
        assert ingestor.wait_for(lambda: ingestor.held == 1 and len(tries) >= 3)
        assert not any(tries) and ingestor.held == 1 and ingestor.storage_fault is not None
        held = ingestor._held[0].mid
        assert held not in acked  # the broker keeps it meanwhile
        assert service.store.event(_id(event)) is None
        with service.store._lock:  # writable again
            service.store._db.execute("PRAGMA query_only = 0")
        assert ingestor.wait_for(lambda: ingestor.held == 0)
        assert service.store.event(_id(event)) is not None
        assert acked.count(held) == 1  # acknowledged to the broker once, once stored
        assert _receipts(service, sub) == [[_id(event)]]


def test_a_session_summary_is_receipted_once_stored(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """A guided session's summary is kept on the device until a receipt names it, as an
    alert is. Mutant that survived: the summary stored and never receipted (the device
    sending it again for ever)."""
    record = session_record(CARE_DEVICE, dt.datetime.now(dt.UTC), backward_min=12, longest_min=10)
    summary = (f"retroguard/{CARE_DEVICE}/session", firmware_session_payload(record).encode())
    with _receipted(tmp_path, str(tmp_path / "c.db"), mosquitto) as (service, sub):
        assert service.ingestor.handle_batch([summary])
        assert _receipts(service, sub) == [[record.id]]


def test_a_failed_sync_before_receipts_is_shown_as_the_database_s_fault(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch committed but the sync its receipts wait for failed: no receipt goes, and the
    service says its database is failing (the banner every page shows) until a batch stores
    again. Mutant that survived: only the journal said it."""
    told: list[str | None] = []
    with _receipted(tmp_path, str(tmp_path / "c.db"), mosquitto) as (service, _sub):
        ingestor = service.ingestor
        monkeypatch.setattr(ingestor, "_on_storage", told.append)

        def failing() -> None:
            raise StorageFault("caregiver database: syncing its log to disk: EIO")

        durable = ingestor._durable_receipts
        assert durable is not None
        go = threading.Event()

        def failing_when_waited_for() -> None:  # fails once the test is in wait_for
            assert go.wait(WAIT), "wait_for never looked"
            failing()

        bound = time.monotonic() + WAIT

        def failed() -> bool:
            if not go.is_set():  # wait_for's first look: the sync fails while it waits
                go.set()
                return False
            # seen when woken, not at the look wait_for takes once its bound has run out
            return ingestor.storage_fault is not None and time.monotonic() < bound

        monkeypatch.setattr(durable, "_sync", failing_when_waited_for)
        assert ingestor.handle_batch([_event(1, "fall")])
        # woken by the held receipts themselves (nothing else happens to wake it: before, it
        # slept through its bound, and this test polled)
        assert ingestor.wait_for(failed, WAIT)
        assert told[0] is not None and "EIO" in told[0]
