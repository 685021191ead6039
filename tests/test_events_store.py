"""Events have a stable JSON form; the store commits them durably, in order, once."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from core.protocol.events import Event, EventType, Severity
from core.samples import ImuSample
from firmware.storage.events import EventStore


def make_event(kind: EventType = EventType.FALL, t: float = 12.5) -> Event:
    window = [ImuSample(t - 0.01 * i, 0.1, 0.2, 1.0, 5.0, -3.0, 1.5) for i in range(3, 0, -1)]
    return Event.now(kind, "tm-1", t, "TRIPPED", "impact 4.2 g", {"peak_g": 4.2}, window)


def test_json_round_trip_is_lossless_enough() -> None:
    event = make_event()
    again = Event.from_json(event.to_json())
    assert again.id == event.id and again.type is EventType.FALL
    assert again.severity is Severity.CRITICAL
    assert again.figures == {"peak_g": 4.2}
    assert [round(s.t, 4) for s in again.imu_window] == [round(s.t, 4) for s in event.imu_window]
    data = json.loads(event.to_json())
    assert set(data) >= {
        "schema",
        "id",
        "type",
        "device_id",
        "severity",
        "state",
        "reason",
        "wall_time",
        "t_monotonic",
        "figures",
        "imu_window",
    }
    assert data["imu_window"]["columns"] == ["dt", "ax", "ay", "az", "gx", "gy", "gz"]
    assert data["wall_time"].endswith("+00:00")


def test_ids_are_unique() -> None:
    assert len({make_event().id for _ in range(1000)}) == 1000


def test_store_is_wal_ordered_and_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    store = EventStore(db)
    first, second = make_event(EventType.STUMBLE), make_event(EventType.FALL)
    seq1 = store.append(first)
    seq2 = store.append(second)
    assert seq2 > seq1
    assert store.append(first) == seq1  # a repeated id is stored once
    store.close()

    reopened = EventStore(db)  # survives the process: committed means on disk
    stored = reopened.events()
    assert [s.event.id for s in stored] == [first.id, second.id]
    assert [s.seq for s in stored] == [seq1, seq2]
    assert reopened.events(limit=1)[0].event.id == second.id
    reopened.close()

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
