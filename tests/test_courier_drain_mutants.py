"""What hand mutation testing of the courier's drains and the loop's one-piece sends found
unguarded (session 21): each test drives the real parts (a :class:`Courier` over a socket
pair with its real SQLite file, a :class:`FrameWriter` on a real socket pair) and would
have passed with the mutant named in its docstring."""

from __future__ import annotations

import socket
import sqlite3
import threading
from pathlib import Path

import pytest

from core.protocol.events import EventType
from core.protocol.topics import Topics
from firmware.config import Config, MqttConfig, StorageConfig
from firmware.courier import channel as channel_module
from firmware.courier.channel import LoopChannel
from firmware.courier.service import Courier
from firmware.link import messages
from firmware.link.framing import MAX_IOV, FrameReader, FrameWriter, frame
from firmware.sinks import OutboxSink
from firmware.storage.outbox import Outbox
from tests.storage_support import FillableDisk, PowerCuts, alert
from tests.test_courier_held_records import (
    _confirmed,
    _courier,
    _drain_held_in_memory_until_the_disk_takes_it,
    _on_disk,
    _received,
    _session_refused_beside_an_alert,
)
from tests.test_session_record_format import RECORD


def _sessions_on_disk(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {str(row[0]) for row in conn.execute("SELECT id FROM sessions")}
    finally:
        conn.close()


def test_a_record_refused_half_way_in_a_drain_leaves_nothing_of_itself_on_disk(
    tmp_path: Path,
) -> None:
    """A session record whose writes fail after its first statement (here its intervals: a
    store refusing them) is rolled back to its savepoint: none of its rows are committed with
    the event read beside it, and it is not confirmed. Once the store takes it, the loop's
    hand-over again stores it whole. Mutant that survived: the savepoint released without
    its rollback, so the session's row was committed without its intervals while the loop,
    told nothing, still held it."""
    courier, loop_end = _courier(tmp_path)
    refuse = sqlite3.connect(tmp_path / "events.db")
    try:
        refuse.execute(
            "CREATE TRIGGER refuse_intervals BEFORE INSERT ON session_intervals"
            " BEGIN SELECT RAISE(ABORT, 'refused, as a store that runs out of memory'); END"
        )
        refuse.commit()
        fall = alert(courier.config.device.id)
        courier.apply_drain(
            [messages.EventRecord(fall), messages.SessionReport(RECORD, final=True)]
        )
        confirmed = _confirmed(_received(loop_end))
        assert fall.id in confirmed and messages.session_key(RECORD) not in confirmed
        assert RECORD.id not in _sessions_on_disk(tmp_path / "events.db")
        refuse.execute("DROP TRIGGER refuse_intervals")
        refuse.commit()
        courier.apply_drain(
            [messages.EventRecord(fall), messages.SessionReport(RECORD, final=True)]
        )
        assert messages.session_key(RECORD) in _confirmed(_received(loop_end))
        intervals = refuse.execute(
            "SELECT count(*) FROM session_intervals WHERE session_id = ?", (RECORD.id,)
        ).fetchone()[0]
        assert intervals == len(RECORD.intervals)
        courier.apply(messages.Goodbye("test over"))
    finally:
        refuse.close()
        courier.finish()
        loop_end.close()


def test_a_drain_whose_whole_transaction_sqlite_rolled_back_is_stored_record_by_record(
    tmp_path: Path,
) -> None:
    """A record whose refusal makes SQLite roll back the drain's whole transaction (a trigger's
    ``RAISE(ROLLBACK)``; no savepoint is left to return to) fails the drain, and its records
    are then applied one by one: the alert read with the refused session record is stored and
    confirmed. Mutant that survived: the failed drain dropped, so the alert waited in the
    loop for its next hand-over, and met the same refusal beside the same record."""
    _session_refused_beside_an_alert(
        tmp_path, "RAISE(ROLLBACK, 'refused, and the transaction with it')"
    )


def test_an_alert_the_store_refused_in_a_drain_is_not_confirmed_and_the_session_is(
    tmp_path: Path,
) -> None:
    """An alert whose writes the store refuses in a drain (not the disk's fault) is rolled
    back alone and not confirmed: the loop keeps it and hands it over again, and then it is
    stored and confirmed. The session record read with it is stored and confirmed. Mutant
    that survived: the drain's events confirmed whether their savepoint held or not, so the
    loop forgot an alert nothing had stored."""
    courier, loop_end = _courier(tmp_path)
    refuse = sqlite3.connect(tmp_path / "events.db")
    try:
        refuse.execute(
            "CREATE TRIGGER refuse_events BEFORE INSERT ON events"
            " BEGIN SELECT RAISE(ABORT, 'refused, as a store that runs out of memory'); END"
        )
        refuse.commit()
        fall = alert(courier.config.device.id)
        key = messages.session_key(RECORD)
        drain = [messages.EventRecord(fall), messages.SessionReport(RECORD, final=True)]
        courier.apply_drain(drain)
        confirmed = _confirmed(_received(loop_end))
        assert key in confirmed and fall.id not in confirmed
        assert fall.id not in _on_disk(tmp_path / "events.db")
        refuse.execute("DROP TRIGGER refuse_events")
        refuse.commit()
        courier.apply_drain(drain)  # the loop's hand-over again
        assert fall.id in _confirmed(_received(loop_end))
        assert fall.id in _on_disk(tmp_path / "events.db")
        courier.apply(messages.Goodbye("test over"))
    finally:
        refuse.close()
        courier.finish()
        loop_end.close()


def test_a_record_refused_in_a_drain_kept_in_memory_is_not_confirmed_when_the_disk_is_back(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """A drain committed in memory (the disk refuses writes) with a session record the store
    refused: only the records memory took are held, and when the disk takes them back only
    those are confirmed to the loop, the refused one not (the loop keeps it and hands it
    over again). Mutant that survived: every record of the drain held, the refused one too,
    so the recovery told the loop a session was on disk that nothing had stored."""
    courier, loop_end = _courier(tmp_path)
    try:
        disk.go_read_only()
        first = alert(courier.config.device.id, t=0.5)
        courier.apply(messages.EventRecord(first))  # the disk refuses it: memory now
        assert courier.db.in_memory
        courier.db.write(  # memory's store refuses sessions (a bug, a constraint)
            lambda conn: conn.execute(
                "CREATE TRIGGER refuse_sessions BEFORE INSERT ON sessions"
                " BEGIN SELECT RAISE(ABORT, 'refused, as a store that runs out of memory'); END"
            )
        )
        fall = alert(courier.config.device.id)
        key = messages.session_key(RECORD)
        courier.apply_drain(
            [messages.EventRecord(fall), messages.SessionReport(RECORD, final=True)]
        )
        assert courier.db.in_memory
        assert {fall.id, key}.isdisjoint(_confirmed(_received(loop_end)))
        disk.free()
        assert courier.db.recover(now=True)
        confirmed = _confirmed(_received(loop_end))
        assert fall.id in confirmed and key not in confirmed
        assert RECORD.id not in _sessions_on_disk(tmp_path / "events.db")
        courier.apply(messages.Goodbye("test over"))
    finally:
        courier.finish()
        loop_end.close()


def test_a_drain_the_full_disk_refuses_half_way_goes_to_memory_whole(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """A disk that fills under a drain's transaction (the alert needs a new page; the write
    fails mid-way, not at its start) fails the whole drain into memory: the courier goes to
    memory, holds both records there unconfirmed, and confirms both once the disk takes
    them. Mutant that survived: the disk's error taken as one record's refusal (rolled back
    to its savepoint, the drain committed without it), so the courier stayed on a full disk,
    the alert stored nowhere and the loop not told storage was failing."""
    _drain_held_in_memory_until_the_disk_takes_it(tmp_path, disk, disk.fill)


def test_a_state_report_between_a_trip_s_event_and_its_session_record_keeps_them_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's state report (TRIPPED) sits between the trip's event and the session record
    that counts the trip in the drain, as one iteration hands them over: the two are still
    committed in one transaction (a power cut at any boundary keeps both or neither), and the
    state report is applied (the courier's state is the loop's). Mutants that survived: a
    state or health report closing the transaction (the event then committed alone), and the
    reports between records dropped."""
    fall = alert(Config().device.id)

    def kept(path: Path) -> tuple[bool, bool]:
        return fall.id in _on_disk(path), RECORD.id in _sessions_on_disk(path)

    cuts = PowerCuts(kept)
    monkeypatch.setattr("firmware.storage.fallback.connect", cuts.connect)
    courier, loop_end = _courier(tmp_path)
    try:
        courier.apply_drain(
            [
                messages.EventRecord(fall),
                messages.StateReport("TRIPPED", "trip", fall.wall_time),
                messages.SessionReport(RECORD, final=True),
            ]
        )
        assert courier.state == "TRIPPED"
        confirmed = _confirmed(_received(loop_end))
        assert {fall.id, messages.session_key(RECORD)} <= set(confirmed)
        courier.apply(messages.Goodbye("test over"))
    finally:
        courier.finish()
        loop_end.close()
    assert cuts.errors == []
    assert (True, True) in cuts.cuts
    assert set(cuts.cuts) <= {(False, False), (True, True)}, f"one kept alone: {cuts.cuts}"


def test_a_summary_queued_in_a_drain_is_counted_as_one_saved_alone_is(tmp_path: Path) -> None:
    """A final session record read in a drain with an event queues its summary in the drain's
    transaction; once committed it is counted (and the publisher woken) as a record saved on
    its own is. The reporter is configured, not started: nothing is published. Mutant that
    survived: the "summary queued" answer of the record's write lost on the way to
    :meth:`SessionArchive.written`."""
    loop_end, courier_end = socket.socketpair()
    config = Config(
        storage=StorageConfig(database=str(tmp_path / "events.db")),
        mqtt=MqttConfig(host="127.0.0.1"),
    )
    courier = Courier(config, LoopChannel(courier_end))
    try:
        fall = alert(courier.config.device.id)
        courier.apply_drain(
            [messages.EventRecord(fall), messages.SessionReport(RECORD, final=True)]
        )
        assert courier.sessions.published == 1
        courier.apply(messages.Goodbye("test over"))
    finally:
        courier.finish()
        loop_end.close()


def _loop_sends(loop_end: socket.socket, events: list[messages.ToCourier]) -> int:
    """Put ``events`` in the socket in one piece, as the loop's writer does; their bytes."""
    data = b"".join(frame(messages.encode(m)) for m in events)
    loop_end.sendall(data)
    return len(data)


def test_a_drain_is_everything_that_had_arrived_read_in_several_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Frames waiting in the socket beyond one read's size make one drain (the courier
    commits it in one transaction), however many reads it takes; then the first message
    read on its own (:meth:`LoopChannel.messages`) is followed by the rest of its drain, and
    the next drain begins after it, nothing taken twice. Mutants that survived: a drain cut
    at every read (the bound one byte), and the messages left of a drain taken again by
    :meth:`LoopChannel.drains`."""
    monkeypatch.setattr(channel_module, "READ_CHUNK", 97)
    loop_end, courier_end = socket.socketpair()
    channel = LoopChannel(courier_end)
    first = [messages.EventRecord(alert(t=float(i))) for i in range(4)]
    _loop_sends(loop_end, first)
    taken = next(channel.messages())
    assert taken == first[0]
    assert next(channel.drains()) == first[1:]
    second = [messages.EventRecord(alert(t=float(i))) for i in range(10, 13)]
    _loop_sends(loop_end, second)
    loop_end.shutdown(socket.SHUT_WR)
    assert list(channel.drains()) == [second]
    loop_end.close()
    courier_end.close()


def test_a_drain_is_bounded_when_more_has_arrived(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loop that hands over faster than the courier stores is read in bounded drains (each
    committed, and so confirmed, in its turn), in order, none lost. Mutant that survived: the
    bytes taken never counted, so a drain grew while anything was waiting."""
    monkeypatch.setattr(channel_module, "READ_CHUNK", 500)
    monkeypatch.setattr(channel_module, "DRAIN_BYTES", 1200)
    loop_end, courier_end = socket.socketpair()
    channel = LoopChannel(courier_end)
    sent = [messages.EventRecord(alert(t=float(i))) for i in range(6)]  # 5 kB each
    size = _loop_sends(loop_end, sent[:3])
    assert size > 3 * 1200
    _loop_sends(loop_end, sent[3:])
    loop_end.shutdown(socket.SHUT_WR)
    drains = list(channel.drains())
    assert [m for d in drains for m in d] == sent
    assert len(drains) >= 4
    loop_end.close()
    courier_end.close()


def test_a_garbled_stream_ends_the_link_with_what_came_before_it() -> None:
    """Bytes that are no frame (a length beyond the limit) end the channel's messages at
    once, the loop's end still open: what came before them is read, and the courier ends (its
    supervisor starts another; the loop hands over again what is unconfirmed). Mutant that
    survived: the garbage logged and the reading carried on, so a courier whose stream could
    never be read again stayed up confirming nothing. The read runs on a thread of its own,
    joined with a generous bound: with the mutant it would wait for ever."""
    loop_end, courier_end = socket.socketpair()
    channel = LoopChannel(courier_end)
    before = [messages.EventRecord(alert(t=1.0))]
    loop_end.sendall(
        b"".join(frame(messages.encode(m)) for m in before)
        + b"\xff\xff\xff\xff garbage"
        + frame(messages.encode(messages.EventRecord(alert(t=2.0))))
    )
    got: list[list[messages.ToCourier]] = []
    reading = threading.Thread(target=lambda: got.extend(channel.drains()), daemon=True)
    reading.start()
    reading.join(60)
    assert not reading.is_alive()
    assert got == [before]
    loop_end.close()
    courier_end.close()


def test_many_small_frames_queued_at_once_are_sent_without_error() -> None:
    """More frames than the kernel takes in one ``sendmsg`` (Linux: 1024 buffers) are sent
    in several, none refused: mutant that survived, the :data:`MAX_IOV` cap dropped, so
    ``sendmsg`` failed with EMSGSIZE and the loop took its courier for gone."""
    loop_end, other = socket.socketpair()
    loop_end.setblocking(False)
    writer = FrameWriter()
    payloads = [bytes([i % 251]) * 3 for i in range(3 * MAX_IOV + 7)]
    for payload in payloads:
        writer.put(payload)
    sent = writer.send_some(loop_end)
    assert sent == sum(4 + len(p) for p in payloads) and writer.queued_bytes == 0
    assert len(writer) == 0
    got = list(FrameReader().feed(other.recv(1 << 20)))
    assert got == payloads
    loop_end.close()
    other.close()


def test_send_some_sends_no_more_than_its_budget() -> None:
    """The budget bounds one call's bytes (the loop's iteration pays for no more), however
    many frames are queued and however much the kernel would take; the rest stays queued,
    whole, and goes out in later calls. Mutant that survived: the budget applied only to
    the count of frames offered, not to their bytes, so one call sent every queued frame."""
    loop_end, other = socket.socketpair()
    loop_end.setblocking(False)
    writer = FrameWriter()
    payloads = [bytes([i]) * 10000 for i in range(3)]
    for payload in payloads:
        writer.put(payload)
    total = sum(4 + len(p) for p in payloads)
    sent = writer.send_some(loop_end, budget=7000)
    assert 0 < sent <= 7000 and writer.queued_bytes == total - sent
    while writer.queued_bytes:
        assert writer.send_some(loop_end, budget=7000) <= 7000
    reader = FrameReader()
    got: list[bytes] = []
    while len(got) < len(payloads):
        got += list(reader.feed(other.recv(1 << 16)))
    assert got == payloads
    loop_end.close()
    other.close()


class _ReadBetweenSends:
    """The loop's end of the link, with the courier reading everything that has arrived
    after each of the writer's system calls: the worst interleaving a courier on its own
    thread can have, made deterministic."""

    def __init__(self) -> None:
        self.loop_end, self.courier_end = socket.socketpair()
        self.loop_end.setblocking(False)
        self.courier_end.setblocking(False)
        self.reads: list[bytes] = []

    def sendmsg(self, buffers: list[memoryview]) -> int:
        n = self.loop_end.sendmsg(buffers)
        self.reads.append(self.courier_end.recv(1 << 20))
        return n

    def close(self) -> None:
        self.loop_end.close()
        self.courier_end.close()


def test_an_iteration_s_frames_reach_a_courier_reading_at_any_moment_in_one_piece() -> None:
    """What one iteration queued (a trip's event and the session record counting it) leaves
    in one system call, so a courier reading at any moment reads both at once and commits
    them in one transaction. Mutant that survived: a ``sendmsg`` a frame (the bound of
    buffers per call one), which a courier reading between the calls splits in two."""
    link = _ReadBetweenSends()
    writer = FrameWriter()
    for payload in (b"the trip's event", b"the session record counting it"):
        writer.put(payload)
    writer.send_some(link)  # type: ignore[arg-type]
    assert list(FrameReader().feed(link.reads[0])) == [
        b"the trip's event",
        b"the session record counting it",
    ]
    link.close()


def test_an_alert_handed_over_again_is_queued_once(tmp_path: Path) -> None:
    """The loop hands an alert over again when it missed the confirmation (a courier killed
    between its commit and its word): it is stored once and queued for MQTT once, in the
    drain's transaction as on its own. Mutant that survived: the repeat queued again, so
    every caregiver got the fall twice."""
    outbox = Outbox(tmp_path / "events.db", Topics("retroguard", "tm-1"))
    try:
        fall = alert()
        outbox.enqueue_event(fall)
        outbox.enqueue_event(fall)
        outbox.database.write(lambda conn: outbox.enqueue_event_in(conn, fall))
        rows = outbox.fetch_after(0, 10)
        assert [row.topic for row in rows] == [outbox.topics.event]
    finally:
        outbox.close()


def test_the_outbox_sink_wakes_the_publisher_for_every_alert_it_queues(tmp_path: Path) -> None:
    """The storing sink wakes the publisher once an alert is committed, whether it committed
    it itself or the courier's drain did (:meth:`OutboxSink.stored`): the alert goes out at
    once, not at the publisher's next timer. Mutant that survived: the wake dropped (a fall
    hid it: the incident's own wake publishes the queue too; any other alert waited)."""
    outbox = Outbox(tmp_path / "events.db", Topics("retroguard", "tm-1"))
    wakes: list[None] = []
    sink = OutboxSink(outbox, on_queued=lambda: wakes.append(None))
    try:
        sink.handle(alert(t=1.0, kind=EventType.STUMBLE))
        assert len(wakes) == 1
        event = alert(t=2.0, kind=EventType.STUMBLE)
        outbox.database.write(lambda conn: sink.store_in(conn, event))
        sink.stored(event)
        assert len(wakes) == 2
    finally:
        outbox.close()
