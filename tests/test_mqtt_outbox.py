"""The outbox without a broker: one transaction with the store, idempotency, the bound's policy."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from core.protocol.events import Event, EventType
from core.protocol.ids import check_device_id
from core.protocol.topics import Topics
from firmware.sinks import OutboxSink
from firmware.storage.events import EventStore
from firmware.storage.outbox import Outbox
from tests.mqtt_helpers import fall, info


def make(tmp_path: Path, max_rows: int = 10000) -> Outbox:
    return Outbox(tmp_path / "o.db", Topics("retroguard", "tm1"), max_rows=max_rows)


def test_event_is_stored_and_queued_together_and_idempotent(tmp_path: Path) -> None:
    outbox = make(tmp_path)
    woken: list[bool] = []
    sink = OutboxSink(outbox, on_queued=lambda: woken.append(True))
    event = fall("tm1", with_window=True)
    sink.handle(event)
    sink.handle(event)  # a repeat (e.g. a retried hand-over) is neither stored nor queued twice
    rows = outbox.fetch_after(0, 10)
    assert len(rows) == 1 and rows[0].topic == "retroguard/tm1/event"
    store = EventStore(tmp_path / "o.db")
    stored = store.events()
    assert [s.event.id for s in stored] == [event.id]
    assert f'"seq":{stored[0].seq}' in rows[0].payload
    assert len(woken) == 2
    store.close()


def test_failed_queue_insert_rolls_back_the_stored_event(tmp_path: Path) -> None:
    outbox = make(tmp_path)
    conn = sqlite3.connect(tmp_path / "o.db")
    conn.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    conn.commit()
    conn.close()
    with pytest.raises(sqlite3.IntegrityError):
        outbox.enqueue_event(fall("tm1"))
    assert EventStore(tmp_path / "o.db").events() == []


def test_bound_drops_telemetry_then_info_never_alerts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = make(tmp_path, max_rows=4)
    outbox.enqueue_telemetry('{"t":1}')
    outbox.enqueue_event(info("tm1", EventType.START))
    falls = [fall("tm1", float(i)) for i in range(3)]
    for event in falls[:2]:
        outbox.enqueue_event(event)
    outbox.enqueue_telemetry('{"t":2}')  # 5 rows > 4: the oldest telemetry goes
    assert [r.payload for r in outbox.fetch_after(0, 10)][-1] == '{"t":2}'
    assert sum(r.topic.endswith("/telemetry") for r in outbox.fetch_after(0, 10)) == 1
    with caplog.at_level(logging.WARNING):
        outbox.enqueue_event(falls[2])  # telemetry t:2 goes first... then the start event
        outbox.enqueue_event(info("tm1", EventType.STOP))
        more: list[Event] = [fall("tm1", 10.0 + i) for i in range(3)]
        for event in more:
            outbox.enqueue_event(event)
    topics = [r.topic for r in outbox.fetch_after(0, 100)]
    assert all(t.endswith("/event") for t in topics)
    kept = [r.payload for r in outbox.fetch_after(0, 100)]
    for event in [*falls, *more]:
        assert any(event.id in p for p in kept), "an alert was dropped"
    assert len(kept) == 6  # over the bound: alerts are kept rather than lost
    assert "dropped the oldest" in caplog.text and "all are alerts or faults" in caplog.text


def test_delete_and_depth(tmp_path: Path) -> None:
    outbox = make(tmp_path)
    for i in range(5):
        outbox.enqueue_event(fall("tm1", float(i)))
    rows = outbox.fetch_after(0, 3)
    outbox.delete(r.id for r in rows)
    assert outbox.depth() == 2
    assert [r.id for r in outbox.fetch_after(rows[-1].id, 10)] == [rows[-1].id + 1, rows[-1].id + 2]


@pytest.mark.parametrize("bad", ["", "a/b", "tm+", "tm#", "has space", "x" * 65])
def test_device_ids_that_break_topics_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot be used in MQTT topics"):
        check_device_id(bad)
