"""The incident a treadmill's card tells: its open one, else the one that ended last, found
through an index (schema 29) rather than by sorting every incident the treadmill ever had.

The fleet page, the live feed and the Home Assistant relay read every card
(:meth:`caregiver.storage.Store.devices`); a clinic's history only grows, and the pick sorted
it whole on every read (about 0.3 s a read at 8 treadmills with 20,000 incidents each, on both
engines: ``benchmarks/fleet_cards.py``). The rows are written behind the store's back
(:mod:`tests.caregiver_db`): what is under test is which one the cards read, and how SQLite
plans that read.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from caregiver.storage import Store
from caregiver.storage.sql import _DEVICE_SELECT
from tests.caregiver_db import execute, store_at_schema

_INSERT = (
    "INSERT INTO incidents (id, device_id, severity, status, opened_at, opened_wall, "
    "first_event_id, last_event_at, closed_at, closed_by, closed_via) "
    "VALUES (?, ?, 'stumble', ?, ?, '2026-12-01T10:00:00+00:00', ?, ?, ?, ?, ?)"
)


def _incident(
    database: str, device_id: str, incident_id: str, opened_at: float, last_event_at: float,
    *, open_: bool = False,
) -> None:  # fmt: skip
    closed = (None, None, None) if open_ else (last_event_at + 1.0, "ann", "dashboard")
    execute(
        database,
        _INSERT,
        (incident_id, device_id, "open" if open_ else "closed", opened_at,
         f"first-{incident_id}", last_event_at, *closed),
    )  # fmt: skip


def _devices(database: str, *device_ids: str) -> None:
    for device_id in device_ids:
        execute(database, "INSERT INTO devices (device_id, last_seen) VALUES (?, 0)", (device_id,))


def _card_incidents(database: str) -> dict[str, str | None]:
    store = Store(database)
    try:
        cards = store.devices()
        one = store.device("tm-open")
    finally:
        store.close()
    assert one is not None and one["incident"] is not None
    assert one["incident"]["id"] == "older-but-open"  # the one-card read picks the same
    return {c["device_id"]: c["incident"]["id"] if c["incident"] else None for c in cards}


def test_a_card_tells_the_open_incident_else_the_one_that_ended_last(caregiver_db: str) -> None:
    Store(caregiver_db).close()
    _devices(caregiver_db, "tm-open", "tm-closed", "tm-none")
    # An open incident whose last event is older than a closed one's still comes first.
    _incident(caregiver_db, "tm-open", "closed-later", 100.0, 900.0)
    _incident(caregiver_db, "tm-open", "older-but-open", 50.0, 500.0, open_=True)
    # All closed: the one whose last event came last, not the one opened last.
    _incident(caregiver_db, "tm-closed", "opened-first-ended-last", 10.0, 800.0)
    _incident(caregiver_db, "tm-closed", "opened-last", 700.0, 710.0)
    _incident(caregiver_db, "tm-closed", "long-ago", 1.0, 2.0)
    # Another treadmill's open incident is not this one's.
    assert _card_incidents(caregiver_db) == {
        "tm-closed": "opened-first-ended-last",
        "tm-none": None,
        "tm-open": "older-but-open",
    }


def test_a_database_of_schema_28_gains_the_indexes_and_its_cards_read_as_before(
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "caregiver.db")
    with store_at_schema(database, 28):
        pass
    _devices(database, "tm-open", "tm-closed")
    _incident(database, "tm-open", "older-but-open", 50.0, 500.0, open_=True)
    _incident(database, "tm-open", "closed-later", 100.0, 900.0)
    _incident(database, "tm-closed", "ended-last", 10.0, 800.0)
    _incident(database, "tm-closed", "opened-last", 700.0, 710.0)
    assert _card_incidents(database) == {"tm-closed": "ended-last", "tm-open": "older-but-open"}
    indexes = {row[0] for row in execute(database, "SELECT name FROM sqlite_master")}
    assert {"incidents_by_device_last", "incidents_open_by_device"} <= indexes


def test_the_cards_read_searches_each_treadmill_s_incidents_by_index(tmp_path: Path) -> None:
    """As SQLite plans the cards' read (the statement :meth:`Store.devices` runs): every step on
    ``incidents`` is an index search, none a scan of the table (a scan and a sort of a
    treadmill's every incident was the pick before schema 29)."""
    database = str(tmp_path / "caregiver.db")
    Store(database).close()
    _devices(database, "tm-open", "tm-closed")
    _incident(database, "tm-open", "older-but-open", 50.0, 500.0, open_=True)
    for n in range(50):
        _incident(database, "tm-closed", f"c{n}", float(n), float(n) + 0.5)
    db = sqlite3.connect(database)
    try:
        db.execute("ANALYZE")
        plan = [
            str(row[3])
            for row in db.execute(f"EXPLAIN QUERY PLAN {_DEVICE_SELECT} ORDER BY d.device_id")
        ]
    finally:
        db.close()
    on_incidents = [step for step in plan if re.match(r"(SCAN|SEARCH) (incidents|i)\b", step)]
    assert {
        "SEARCH incidents USING INDEX incidents_open_by_device (device_id=?)",
        "SEARCH incidents USING INDEX incidents_by_device_last (device_id=?)",
    } <= set(on_incidents), plan
    assert all(step.startswith("SEARCH") for step in on_incidents), plan
