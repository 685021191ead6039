"""The session record as a type, and its bytes pinned: the stored body and the MQTT summary are
exactly what the dict-based releases wrote (sorted compact JSON), so old logs, the outbox and the
caregiver see no change."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from core.protocol.messages import IntervalSummary, SessionRecord, SessionSummary
from core.protocol.payloads import decode_as, encode
from firmware.link import messages
from firmware.session.record import session_payload
from firmware.storage.database import connect
from firmware.storage.sessions import SummaryToQueue, load_sessions, save_session

INTERVALS = (
    '[{"cadence_spm":91.8,"direction":"backward","done_s":120.0,"index":0,"planned_s":120.0,'
    '"speed":"0.5 mph","steps":180,"stumbles":1,"trips":1,"walking_s":117.6},'
    '{"cadence_spm":91.8,"direction":"forward","done_s":65.3,"index":1,"planned_s":120.0,'
    '"speed":"0.5 mph","steps":90,"stumbles":0,"trips":0,"walking_s":58.8},'
    '{"cadence_spm":0.0,"direction":"rest","done_s":0.0,"index":2,"planned_s":60.0,'
    '"speed":"0.5 mph","steps":0,"stumbles":0,"trips":0,"walking_s":0.0}]'
)
STORED_BODY = (
    '{"backward_s":120.0,"cadence_spm":91.8,"device_id":"tm-1","done_s":185.3,'
    '"ended_wall":"2026-03-02T09:05:30+00:00","id":"0123456789abcdef0123456789abcdef",'
    f'"intervals":{INTERVALS},"longest_backward_s":120.0,"paused_s":42.7,"pauses":1,'
    '"plan":"alternate-2-2","planned_backward_s":420.0,"planned_s":900.0,'
    '"started_wall":"2026-03-02T09:00:00+00:00","status":"stopped","steps":270,"stumbles":1,'
    '"trips":1,"walking_s":176.4}'
)
"""The body the dict-based release stored for :data:`RECORD` (captured from that code)."""
SUMMARY_PAYLOAD = (
    '{"backward_s":120.0,"cadence_spm":91.8,"device_id":"tm-1","done_s":185.3,'
    '"ended_wall":"2026-03-02T09:05:30+00:00","id":"0123456789abcdef0123456789abcdef",'
    f'"intervals":{INTERVALS},"longest_backward_s":120.0,"paused_s":42.7,"pauses":1,'
    '"plan":"alternate-2-2","planned_backward_s":420.0,"planned_s":900.0,"schema":1,'
    '"started_wall":"2026-03-02T09:00:00+00:00","status":"stopped","steps":270,"stumbles":1,'
    '"trips":1,"walking_s":176.4,"wall_time":"2026-03-02T09:05:30.250+00:00"}'
)
"""The summary the dict-based release queued for :data:`RECORD` at :data:`QUEUED_AT`."""
QUEUED_AT = "2026-03-02T09:05:30.250+00:00"


def interval(
    index: int, direction: str, planned: float, done: float, steps: int, walking: float, trips: int
) -> IntervalSummary:
    return IntervalSummary(
        index=index,
        direction=direction,  # type: ignore[arg-type]
        speed="0.5 mph",
        planned_s=planned,
        done_s=done,
        steps=steps,
        walking_s=walking,
        cadence_spm=round(60.0 * steps / walking, 1) if walking else 0.0,
        trips=trips,
        stumbles=trips,
    )


RECORD = SessionRecord(
    id="0123456789abcdef0123456789abcdef",
    device_id="tm-1",
    plan="alternate-2-2",
    status="stopped",
    started_wall="2026-03-02T09:00:00+00:00",
    ended_wall="2026-03-02T09:05:30+00:00",
    planned_s=900.0,
    planned_backward_s=420.0,
    done_s=185.3,
    backward_s=120.0,
    longest_backward_s=120.0,
    paused_s=42.7,
    pauses=1,
    steps=270,
    walking_s=176.4,
    cadence_spm=91.8,
    trips=1,
    stumbles=1,
    intervals=[
        interval(0, "backward", 120.0, 120.0, 180, 117.6, 1),
        interval(1, "forward", 120.0, 65.3, 90, 58.8, 0),
        interval(2, "rest", 60.0, 0.0, 0, 0.0, 0),
    ],
)


def test_the_stored_body_and_the_summary_are_the_bytes_of_before(tmp_path: Path) -> None:
    assert encode(RECORD) == STORED_BODY
    assert session_payload(RECORD, QUEUED_AT) == SUMMARY_PAYLOAD
    conn = connect(tmp_path / "device.db")
    summary = SummaryToQueue("retroguard/tm-1/session", lambda: session_payload(RECORD, QUEUED_AT))
    assert save_session(conn, RECORD, summary)
    conn.close()
    raw = sqlite3.connect(tmp_path / "device.db")
    ((body,),) = raw.execute("SELECT body FROM sessions").fetchall()
    ((payload,),) = raw.execute("SELECT payload FROM outbox").fetchall()
    raw.close()
    assert body == STORED_BODY and payload == SUMMARY_PAYLOAD
    (stored,) = load_sessions(tmp_path / "device.db")
    assert stored.record == RECORD


def test_a_running_record_is_stored_with_no_end_and_has_no_summary(tmp_path: Path) -> None:
    running = msgspec.structs.replace(RECORD, status="running", ended_wall=None)
    assert encode(running) == STORED_BODY.replace(
        '"ended_wall":"2026-03-02T09:05:30+00:00"', '"ended_wall":null'
    ).replace('"status":"stopped"', '"status":"running"')
    conn = connect(tmp_path / "device.db")
    summary = SummaryToQueue("retroguard/tm-1/session", lambda: session_payload(running))
    assert not save_session(conn, running, summary)  # nothing to publish while it runs
    conn.close()
    assert load_sessions(tmp_path / "device.db")[0].record == running
    with pytest.raises(ValueError, match="still running"):
        running.summary(QUEUED_AT)


def test_the_summary_is_the_wire_type_with_the_record_figures() -> None:
    summary = RECORD.summary(QUEUED_AT)
    assert isinstance(summary, SessionSummary)
    assert (summary.schema, summary.wall_time, summary.status) == (1, QUEUED_AT, "stopped")
    assert decode_as(SessionSummary, SUMMARY_PAYLOAD.encode()) == summary
    shared = set(SessionRecord.__struct_fields__)
    assert set(SessionSummary.__struct_fields__) == shared | {"schema", "wall_time"}
    assert {f: getattr(summary, f) for f in shared} == msgspec.structs.asdict(RECORD)


def test_the_link_carries_the_record_unchanged() -> None:
    for final in (False, True):
        data = messages.encode(messages.SessionReport(RECORD, final))
        report = messages.decode_for_courier(data)
        assert isinstance(report, messages.SessionReport)
        assert report.record == RECORD and report.final is final
        assert encode(report.record) == STORED_BODY


def test_a_stored_body_that_is_not_a_record_is_left_out_of_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "device.db"
    conn = connect(db)
    save_session(conn, RECORD)
    other = msgspec.structs.replace(RECORD, id="f" * 32, started_wall="2026-03-03T09:00:00+00:00")
    save_session(conn, other)
    conn.execute("UPDATE sessions SET body = '{\"id\": 1}' WHERE id = ?", (RECORD.id,))
    conn.close()
    assert [s.record for s in load_sessions(db)] == [other]
    assert f"session {RECORD.id} in {db} is not a readable record" in caplog.text


def test_an_old_record_without_falls_decodes_with_its_falls_derived() -> None:
    """Every release kept trips = stumbles + falls: a record from before falls were counted
    (no ``falls``, no ``no_recovery``) reads with falls = trips - stumbles, none unrecovered;
    a record that counts them carries them on the wire."""
    old = msgspec.json.decode(
        STORED_BODY.replace(
            '"stumbles":1,"trips":1,"walking_s":176.4}', '"stumbles":0,"trips":1,"walking_s":176.4}'
        ),
        type=SessionRecord,
    )
    assert (old.falls, old.fall_count, old.no_recovery) == (None, 1, 0)
    assert old.intervals[0].fall_count == 0
    new = msgspec.structs.replace(RECORD, stumbles=0, falls=1, no_recovery=1)
    summary = decode_as(SessionSummary, session_payload(new, QUEUED_AT).encode())
    assert (summary.falls, summary.fall_count, summary.no_recovery) == (1, 1, 1)
