"""Rule 4 (nothing is lost) where hand mutation (mut25) of the outbox, the courier's fallback
database and the damaged-file handling found no test noticing.

Each test names the mutant it kills. Real SQLite files; the disk's faults are the ones
:mod:`tests.storage_support` makes SQLite raise for real.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sqlite3
import struct
from pathlib import Path
from typing import BinaryIO

import pytest

from core.protocol.events import Event, EventType
from core.protocol.topics import Topics
from firmware.storage import damage as damage_module
from firmware.storage.damage import UNCARRIED, WAL_MAGIC, move_aside, wal_damage
from firmware.storage.fallback import FallbackDatabase
from firmware.storage.outbox import Outbox, OutboxDepth, outbox_depth
from tests.mqtt_helpers import info
from tests.storage_support import FillableDisk, alert, break_the_sessions_table, damage
from tests.test_caregiver_ingest_batch import _event, _id
from tests.test_caregiver_ingest_failed_handling import _receipted, _receipts
from tests.test_storage_fallback import Heard, _cut_power, _flip, _queued_alerts, file_rows
from tools.broker import Mosquitto, mosquitto_available

DEVICE = "tm-1"
TOPICS = Topics("retroguard", DEVICE)


def _fault(t: float = 1.0) -> Event:
    return Event.now(EventType.FAULT, DEVICE, t, "FAULT", "IMU silent")


def test_a_fault_event_is_never_dropped_by_the_bound_and_waits_for_a_receipt(
    tmp_path: Path,
) -> None:
    """A FAULT (and an ok / closed / window / test event) is protected like an alert: the bound
    drops start and stop events rather than it, and with receipts the broker's PUBACK only
    marks it awaiting the caregiver's receipt. Mutant that survived: the priority decided by
    ``ALERT_TYPES`` instead of ``PROTECTED_TYPES``, so a fault was queued as an informational
    event — dropped by the bound under a burst of start/stop events, and forgotten at the
    PUBACK before the caregiver service had committed it."""
    outbox = Outbox(tmp_path / "o.db", TOPICS, max_rows=2, receipts=True)
    fault = _fault()
    outbox.enqueue_event(fault)
    outbox.enqueue_event(info(DEVICE, EventType.START, 2.0))
    outbox.enqueue_event(info(DEVICE, EventType.STOP, 3.0))  # 3 rows > 2: one must go
    kept = [r.payload for r in outbox.fetch_after(0, 10)]
    assert len(kept) == 2 and fault.id in kept[0], "the fault was dropped by the bound"
    outbox.settle(r.id for r in outbox.fetch_after(0, 10))  # the broker has both
    waiting = outbox.awaiting_receipt(10)
    assert [fault.id in r.payload for r in waiting] == [True], "the fault left at the PUBACK"
    assert outbox.receipted([fault.id]) == 1 and outbox.depth() == 0
    outbox.close()


def test_the_outbox_log_counts_every_drop_so_far(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning a technician reads says how many messages the bound has dropped since the
    monitor started, not only the last batch. Mutant that survived: ``dropped = total``
    instead of ``+=``, so the count reset at every drop."""
    outbox = Outbox(tmp_path / "o.db", TOPICS, max_rows=1)
    with caplog.at_level(logging.WARNING, logger="firmware.storage.outbox"):
        for i in range(3):
            outbox.enqueue_telemetry(f'{{"t":{i}}}')
    assert outbox.dropped == 2
    assert "(1 dropped so far)" in caplog.text and "(2 dropped so far)" in caplog.text
    outbox.close()


def test_an_event_joining_an_incident_names_the_incident_s_walker(tmp_path: Path) -> None:
    """A call for help joining an incident Ann's session opened is published as Ann's, though
    Bob's session was under way when it came (the caregiver files the incident under the
    walker who fell). Mutant that survived: ``coalesce(e.walker, i.walker)`` in the outbox's
    query, so the event named the session's walker and the incident was told under two."""
    outbox = Outbox(tmp_path / "o.db", TOPICS)
    opened = dataclasses.replace(alert(DEVICE, 1.0), incident="inc-1")
    joined = dataclasses.replace(alert(DEVICE, 2.0, EventType.HELP), incident="inc-1")
    outbox.enqueue_event(opened, walker="ann")
    outbox.enqueue_event(joined, walker="bob")
    published = [json.loads(r.payload) for r in outbox.fetch_after(0, 10)]
    assert [(m["id"], m.get("walker")) for m in published] == [
        (opened.id, "ann"),
        (joined.id, "ann"),
    ]
    outbox.close()


def test_ack_latest_takes_the_newest_alert_not_acknowledged_yet_then_the_one_before(
    tmp_path: Path,
) -> None:
    """``ack latest`` for alerts outside any incident (stored before incidents) acknowledges
    the newest one still unacknowledged: sent again, it takes the one before, and with none
    left it says so. Mutants that survived: the newest alert whether acknowledged or not (the
    older fall stayed unacknowledged for ever, each ``latest`` answered "already"), and the
    oldest first (``ORDER BY seq`` without ``DESC``)."""
    outbox = Outbox(tmp_path / "o.db", TOPICS)
    older, newer = alert(DEVICE, 1.0), alert(DEVICE, 2.0)
    outbox.enqueue_event(older)
    outbox.enqueue_event(newer)
    assert outbox.acknowledge("latest", "Ann") == (newer.id, True)
    assert outbox.acknowledge("latest", "Ann") == (older.id, True)
    with pytest.raises(LookupError, match="no unacknowledged alert"):
        outbox.acknowledge("latest", "Ann")
    outbox.close()


def test_the_outbox_depth_tells_unsent_rows_from_rows_awaiting_a_receipt(tmp_path: Path) -> None:
    """What ``doctor`` and the demo read: rows the broker has not acknowledged, and apart
    from them rows the broker has that wait for the caregiver's receipt. Mutant that
    survived: ``unsent`` counting the rows awaiting a receipt too, so an alert the broker had
    looked as if it had never left the device."""
    path = tmp_path / "o.db"
    outbox = Outbox(path, TOPICS, receipts=True)
    for t in (1.0, 2.0):
        outbox.enqueue_event(alert(DEVICE, t))
    outbox.settle([outbox.fetch_after(0, 10)[0].id])
    assert outbox_depth(path) == OutboxDepth(unsent=1, awaiting_receipt=1)
    outbox.close()


def test_the_outbox_generation_changes_at_each_move_so_the_publisher_starts_over(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """The publisher starts over from id 0, forgetting what it had in flight, when the
    outbox's generation changes (:meth:`MqttReporter._follow_outbox`): at the move to memory
    and at the move back. The merge may give an alert queued in memory a new id (the file gave
    its id to another message meanwhile): a PUBACK for the old id, in flight across the
    return, would then settle the other message, and a cursor past the new id would skip the
    alert. Mutant that survived: the return left the generation as it was in memory."""
    path = tmp_path / "events.db"
    db = FallbackDatabase(path)
    assert db.open().fault is None
    outbox = Outbox(db, TOPICS)
    on_file = outbox.generation
    disk.fill()
    outbox.enqueue_event(alert(DEVICE, 1.0))
    assert db.in_memory
    in_memory = outbox.generation
    disk.free()
    assert db.recover(now=True)
    assert len({on_file, in_memory, outbox.generation}) == 3
    db.close()


def test_no_damaged_file_moved_aside_in_the_same_second_overwrites_another(
    tmp_path: Path,
) -> None:
    """Three damaged files moved aside in the same second each keep their own name with their
    log, and a log already under the first name (its database deleted by hand) is not
    overwritten either: a moved-aside file is the only copy of what it held (its queue may
    still be marked to be carried). Mutants that survived: the name tried once more only
    (``if`` for ``while``: the third file replaced the second), and only the database's own
    name checked (the new log replaced the one left there)."""
    path = tmp_path / "events.db"
    stamp = "20261201T210003Z"
    Path(f"{path}.damaged-{stamp}-wal").write_bytes(b"left there")
    moved = []
    for n in range(3):
        path.write_bytes(b"main %d" % n)
        Path(f"{path}-wal").write_bytes(b"wal %d" % n)
        moved.append(move_aside(path, stamp))
    assert Path(f"{path}.damaged-{stamp}-wal").read_bytes() == b"left there"
    assert [(m.read_bytes(), Path(f"{m}-wal").read_bytes()) for m in moved] == [
        (b"main %d" % n, b"wal %d" % n) for n in range(3)
    ]


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_a_batch_whose_commit_fails_sends_no_receipt(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caregiver service stores two falls in one batch and SQLite refuses the commit (a
    full disk: ``SQLITE_FULL`` from ``COMMIT``): no receipt goes out — the device keeps both
    and sends them again — and once the commit works they are receipted, once. Mutant that
    survived: the receipts the batch had gathered published on the refusal too, so the device
    forgot two falls the service never stored."""
    first, second = _event(1, "fall"), _event(2, "fall")
    with _receipted(tmp_path, str(tmp_path / "c.db"), mosquitto) as (service, sub):
        db = service.store._db
        real_commit = db.commit
        refusals = [sqlite3.OperationalError("database or disk is full")]

        def commit() -> None:
            if refusals:  # as SQLite answers a full disk at COMMIT: rolled back, and an error
                db.execute("ROLLBACK")
                raise refusals.pop()
            real_commit()

        monkeypatch.setattr(db, "commit", commit)
        assert not service.ingestor.handle_batch([first, second])
        assert service.ingestor.storage_fault is not None
        assert service.store.event(_id(first)) is None
        assert service.ingestor.handle_batch([first, second])  # handed over again: stored
        assert _receipts(service, sub) == [[_id(first), _id(second)]]


def test_a_log_frame_whose_salt_is_damaged_is_reported_with_the_commits_after_it(
    tmp_path: Path,
) -> None:
    """A frame inside the write-ahead log whose header's salt is garbled: SQLite stops
    replaying there, and the commits after it — queued alerts among them — would be gone
    without a word. It is damage like a wrong checksum: the file is moved aside, the reason
    names the frame, and the queue as far as it can be read comes along. Mutant that
    survived: a frame of other salts taken for the end of the log (an older log's frames
    left after a restart), so the commits after it were dropped silently."""
    outbox = _queued_alerts(tmp_path, before_checkpoint=2, after=3)
    path = _cut_power(tmp_path / "events.db", tmp_path / "cut")
    outbox.close()
    (page_size,) = file_rows(tmp_path / "events.db", "PRAGMA page_size")[0]
    frame = 24 + int(str(page_size))
    last_frame = (Path(f"{path}-wal").stat().st_size - 32) // frame - 1
    _flip(Path(f"{path}-wal"), 32 + frame * (last_frame - 1) + 8)  # its first salt

    db = FallbackDatabase(path)
    found = db.open()

    assert found.moved is not None
    assert f"frame {last_frame} is damaged and commits of the same log follow it" in (
        found.moved.why
    )
    assert found.moved.carried >= 2  # the checkpointed alerts at least
    db.close()


def test_a_log_torn_while_its_header_was_written_is_not_damage(tmp_path: Path) -> None:
    """A log whose header is not a log's is damage only when a frame follows it; a power cut
    while the first frame's header was written leaves 24 bytes and no page: nothing was
    committed there, and the sound database beside it stays where it is. Mutant that
    survived: those 24 bytes taken for a frame (``>=``), so a sound file was moved aside; and
    a header torn one byte short read as a whole one (``struct.error``: the monitor did not
    start)."""
    path = tmp_path / "events.db"
    Outbox(path, TOPICS).close()
    wal = Path(f"{path}-wal")
    header = struct.pack(">6I", WAL_MAGIC[0], 3007000, 4096, 0, 1, 2)  # a log's, to its salts
    wal.write_bytes(header + b"\x03" * 7)  # its checksum torn
    assert wal_damage(path) is None
    wal.write_bytes(b"\x01" * 32 + b"\x02" * 24)
    assert wal_damage(path) is None
    db = FallbackDatabase(path)
    found = db.open()
    db.close()
    assert found.moved is None and found.fault is None
    wal.write_bytes(b"\x01" * 32 + b"\x02" * 25)
    assert wal_damage(path) == "its header is not a write-ahead log's"


def test_rows_the_broker_refused_come_back_oldest_first(tmp_path: Path) -> None:
    """The publisher sends again the rows the broker refused as far as its in-flight window
    has room (``refused[:room]``), from :meth:`Outbox.fetch_ids`: the oldest alert goes first,
    whatever order the ids were kept in, and a row a receipt took meanwhile is left out.
    Mutant that survived: newest first, so with more refused than room the oldest fall
    waited behind every later one, round after round."""
    outbox = Outbox(tmp_path / "o.db", TOPICS, receipts=True)
    falls = [alert(DEVICE, float(t)) for t in range(4)]
    for event in falls:
        outbox.enqueue_event(event)
    ids = [r.id for r in outbox.fetch_after(0, 10)]
    outbox.settle([ids[1]])
    assert outbox.receipted([falls[1].id]) == 1
    rows = outbox.fetch_ids(reversed(ids))
    assert [next(e.id for e in falls if e.id in r.payload) for r in rows] == [
        falls[0].id,
        falls[2].id,
        falls[3].id,
    ]
    outbox.close()


def test_a_write_the_file_failed_before_another_thread_s_episode_ended_goes_to_the_file(
    tmp_path: Path, disk: FillableDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads write while the disk fills: the publisher's write fails on the file, and
    before it can move the records to memory another thread's write has done so and the disk
    has been freed and the records moved back. The publisher's write then goes to the file as
    it is now: no second episode — no second FAULT, no arming refused for five seconds with a
    disk that works. Mutant that survived: the move decided by ``memory is None`` alone,
    without the generation the failed attempt saw, so it moved to memory again.

    The other thread's episode is run at the one moment it matters, between the failed
    attempt and the mover's gate (the gate's ``exclusive`` wrapped, once)."""
    heard = Heard()
    db = FallbackDatabase(tmp_path / "events.db", listener=heard)
    assert db.open().fault is None
    outbox = Outbox(db, TOPICS)
    exclusive = db._gate.exclusive
    episode: list[bool] = []

    def meanwhile() -> contextlib.AbstractContextManager[None]:
        if not episode:  # the publisher's failed write is on its way to the gate
            episode.append(True)
            outbox.enqueue_event(alert(DEVICE, 2.0))  # another write fails too: it moves
            assert db.in_memory
            disk.free()
            assert db.recover(now=True)  # and back, before the publisher gets the gate
        return exclusive()

    monkeypatch.setattr(db._gate, "exclusive", meanwhile)
    disk.fill()
    first = alert(DEVICE, 1.0)
    outbox.enqueue_event(first)
    assert episode and not db.in_memory and db.episodes == 1
    assert heard.order == ["lost", "back"]
    db.close()
    assert first.id in {
        str(row[0]) for row in file_rows(tmp_path / "events.db", "SELECT id FROM events")
    }


def test_a_log_restarted_while_it_was_read_is_not_taken_for_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (``retroguard plan set``) may write the database while the courier
    opens it, and its write may restart the log under the reader: frames read half from the
    old log and half from the new look broken. A log whose header changed while it was read
    is therefore not judged (the file is sound; its writer is using it). Mutant that
    survived: the second look at the header dropped, so such a read moved a sound database
    aside from under the process writing it."""
    path = tmp_path / "events.db"
    outbox = _queued_alerts(tmp_path, before_checkpoint=2, after=3)
    path = _cut_power(path, tmp_path / "cut")
    outbox.close()
    (page_size,) = file_rows(tmp_path / "events.db", "PRAGMA page_size")[0]
    frame = 24 + int(str(page_size))
    wal = Path(f"{path}-wal")
    last_frame = (wal.stat().st_size - 32) // frame - 1
    _flip(wal, 32 + frame * (last_frame - 1) + 24 + 100)
    assert wal_damage(path) is not None  # read alone, the log is damaged
    judged = damage_module._wal_problem

    def restarted_meanwhile(f: BinaryIO) -> str | None:
        problem = judged(f)
        _flip(wal, 16)  # the writer restarted the log: new salts in its header
        return problem

    monkeypatch.setattr(damage_module, "_wal_problem", restarted_meanwhile)
    assert wal_damage(path) is None


def test_a_queue_left_to_carry_comes_along_when_the_next_start_finds_the_file_damaged_again(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """A damaged file was moved aside while the disk refused a new one, and the monitor
    stopped before it took writes: its queued alerts wait in the moved-aside file, marked to
    be carried. The next start finds the database damaged again (another power cut) and
    starts a new file: those alerts are carried into it there and then, and sent. Mutant that
    survived: only a start that found the file sound carried them, so they waited, unsent,
    for yet another start."""
    path = tmp_path / "events.db"
    outbox = Outbox(path, TOPICS, max_rows=100, receipts=True)
    falls = [alert(DEVICE, float(t)) for t in range(2)]
    for event in falls:
        outbox.enqueue_event(event)
    outbox.close()
    break_the_sessions_table(path)
    disk.go_read_only()
    db = FallbackDatabase(path)
    first = db.open()
    assert first.moved is not None and db.in_memory
    db.close()  # stopped before the disk took writes
    assert Path(f"{first.moved.moved_to}{UNCARRIED}").exists()

    disk.free()
    damage("random bytes", path)
    again = FallbackDatabase(path)
    second = again.open()
    assert second.moved is not None and not again.in_memory
    queued = Outbox(again, TOPICS, max_rows=100).fetch_after(0, 10)
    assert [any(e.id in r.payload for r in queued) for e in falls] == [True, True]
    assert not Path(f"{first.moved.moved_to}{UNCARRIED}").exists()
    again.close()


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_a_held_event_stored_alone_is_receipted_only_after_its_commit(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message held while the database failed is tried again alone (:meth:`Ingestor.handle`,
    the retry thread's way); if SQLite refuses that commit too, no receipt goes out — the
    device keeps the fall — and the try that commits sends it, once. Mutant that survived:
    the receipt sent from inside the event's transaction, which outside a batch publishes at
    once, before the commit it vouches for."""
    fall_ = _event(1, "fall")
    with _receipted(tmp_path, str(tmp_path / "c.db"), mosquitto) as (service, sub):
        db = service.store._db
        real_commit = db.commit
        refusals = [sqlite3.OperationalError("database or disk is full")]

        def commit() -> None:
            if refusals:  # as SQLite answers a full disk at COMMIT: rolled back, and an error
                db.execute("ROLLBACK")
                raise refusals.pop()
            real_commit()

        monkeypatch.setattr(db, "commit", commit)
        assert not service.ingestor.handle(*fall_)
        assert not refusals and service.store.event(_id(fall_)) is None
        assert service.ingestor.handle(*fall_), service.ingestor.storage_fault
        assert _receipts(service, sub) == [[_id(fall_)]]


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_receipts_go_out_at_qos_1(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """A receipt is what lets a device forget an alert: it goes out at QoS 1, so a receipt the
    link drops is sent again by the client rather than lost (each lost one costs a resend of
    the alert, and with many devices a burst of them). Mutant that survived: QoS 0."""
    fall_ = _event(1, "fall")
    with _receipted(tmp_path, str(tmp_path / "c.db"), mosquitto) as (service, sub):
        assert service.ingestor.handle_batch([fall_])
        assert sub.wait(lambda: any(_id(fall_) in m.payload.decode() for m in sub.messages))
        assert {m.qos for m in sub.on("/receipt")} == {1}
