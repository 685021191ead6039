"""A session record amended after its session ended (issue 15: a fall the detector confirms
after the session stopped is still that session's): the device's session log stores it and
queues its summary again in place of one still queued, a receipt for the summary sent before
does not forget it, and the loop keeps it until the courier has it on disk."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import msgspec

from core.protocol.messages import SessionRecord
from core.protocol.topics import Topics
from firmware.link import messages as link_messages
from firmware.link.endpoint import CourierLink
from firmware.session.record import session_payload
from firmware.storage.database import connect
from firmware.storage.outbox import Outbox
from firmware.storage.sessions import SummaryToQueue, load_sessions, save_session
from tests.caregiver_support import session_record
from tests.mqtt_helpers import validate

# ------------------------------------------------ the stored record, the link, the summary

STARTED = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
TOPIC = Topics("retroguard", "treadmill-1").session


def _stopped_with_a_stumble() -> SessionRecord:
    record = session_record(
        "treadmill-1", STARTED, backward_min=4, longest_min=2, trips=1, stumbles=1,
        status="stopped",
    )  # fmt: skip
    return msgspec.structs.replace(record, falls=0)


def _amended(record: SessionRecord, times: int = 1) -> SessionRecord:
    """``record`` after the fall confirmed in its trip's incident (and, ``times`` 2, the
    no-recovery): the stumble is a fall."""
    intervals = [
        msgspec.structs.replace(i, stumbles=0, falls=1, no_recovery=times - 1) if i.trips else i
        for i in record.intervals
    ]
    return msgspec.structs.replace(
        record, stumbles=0, falls=1, no_recovery=times - 1, intervals=intervals, amended=times
    )


def _save(conn: sqlite3.Connection, record: SessionRecord) -> bool:
    return save_session(conn, record, SummaryToQueue(TOPIC, lambda: session_payload(record)))


def _queued(conn: sqlite3.Connection) -> list[tuple[str, int, int | None]]:
    """Each queued summary: the session id, the stumbles and falls it says."""
    rows = conn.execute("SELECT message_id, payload FROM outbox ORDER BY id").fetchall()
    return [(str(m), json.loads(p)["stumbles"], json.loads(p).get("falls")) for m, p in rows]


def test_an_amended_record_replaces_the_summary_queued_and_is_queued_once(tmp_path: Path) -> None:
    """The device's session log: the stopped session's summary is queued once; the record
    amended by the fall replaces the row and queues its summary in place of the one still
    queued (the caregiver keeps the newest); a repeat of either, or an older record handed over
    again, changes nothing."""
    conn = connect(tmp_path / "s.db")
    try:
        first = _stopped_with_a_stumble()
        assert _save(conn, first) and not _save(conn, first)
        assert _queued(conn) == [(first.id, 1, 0)]
        fall = _amended(first)
        assert _save(conn, fall)
        assert _queued(conn) == [(first.id, 0, 1)]  # one summary of the session: the newest
        assert not _save(conn, fall) and not _save(conn, first)  # a repeat; an older record
        assert _queued(conn) == [(first.id, 0, 1)]
        conn.execute("DELETE FROM outbox")  # delivered and receipted
        lying = _amended(first, times=2)
        assert _save(conn, lying)
        assert _queued(conn) == [(first.id, 0, 1)]
        (stored,) = [s.record for s in load_sessions(tmp_path / "s.db")]
        assert stored == lying and stored.amended == 2 and stored.no_recovery == 1
        row = conn.execute("SELECT stumbles, falls, no_recovery, published FROM sessions")
        assert row.fetchall() == [(0, 1, 1, 3)]
        payload = conn.execute("SELECT payload FROM outbox").fetchone()[0]
        assert validate("session", payload)["amended"] == 2
    finally:
        conn.close()


def test_a_receipt_for_the_summary_sent_keeps_the_amended_one_not_sent_yet(
    tmp_path: Path,
) -> None:
    """The caregiver's receipt names the session id, the same for every summary of the
    session: one for the summary sent before the amendment was queued must not forget the
    amended one, which the publisher has not sent yet."""
    path = tmp_path / "s.db"
    outbox = Outbox(path, Topics("retroguard", "treadmill-1"), receipts=True)
    conn = connect(path)
    try:
        first = _stopped_with_a_stumble()
        assert _save(conn, first)
        (sent,) = outbox.fetch_after(0, 10)  # the publisher sends it
        assert _save(conn, _amended(first))  # then the fall is confirmed
        assert outbox.receipted([first.id], published_up_to=sent.id) == 0
        assert _queued(conn) == [(first.id, 0, 1)]
        (amended,) = outbox.fetch_after(sent.id, 10)
        assert outbox.receipted([first.id], published_up_to=amended.id) == 1
        assert _queued(conn) == []
    finally:
        conn.close()
        outbox.close()


def test_the_loop_keeps_an_amended_record_until_the_courier_has_it_on_disk() -> None:
    """The loop keeps each final record until the courier says it is on disk: the courier's
    word on the record it stored before the amendment does not forget the amendment."""
    link = CourierLink(lambda: 100.0)
    first = _stopped_with_a_stumble()
    fall = _amended(first)
    link.submit_session(first, final=True)
    link.submit_session(fall, final=True)
    assert link.pending == 2
    link._apply(link_messages.Persisted([link_messages.session_key(first)]))
    assert link.pending == 1
    link._apply(link_messages.Persisted([link_messages.session_key(fall)]))
    assert link.pending == 0
