"""The walkers a treadmill's sessions name, read in steps of an index rather than by grouping
every session the treadmill ever had.

Every page, the fleet's cards (once a card, for its incident's walker) and the live feed name
walkers through :meth:`caregiver.storage.Store.walkers`; a clinic's sessions only grow (three
a week a walker), and the grouping read them all on every call: about 4 ms a call at a year
of 8 treadmills with 4 walkers each, 24 calls for the fleet page
(``benchmarks/caregiver_history.py``). What is under test is what the read answers (each
walker once, the name of their newest session, who walked last first) on both engines, and
how SQLite plans it.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path

import msgspec

from caregiver.progress import parse_summary
from caregiver.storage import Store
from caregiver.storage.tx_walkers import _WALKERS_SELECT
from core.protocol.walker import DEFAULT_WALKER, Walker
from firmware.session.record import session_payload
from tests.caregiver_support import received, session_record

MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _walked(store: Store, device_id: str, day: int, walker: Walker) -> None:
    """A session of ``walker`` on ``device_id`` ``day`` days after :data:`MONDAY`, stored as
    ingest stores one."""
    record = session_record(device_id, MONDAY + dt.timedelta(days=day), backward_min=10,
                            longest_min=5)  # fmt: skip
    record = msgspec.structs.replace(record, walker=walker)
    row, problem = parse_summary(received(record), device_id)
    assert row is not None, problem
    store.record_walk_session(row, session_payload(record), MONDAY.timestamp())


def test_each_walker_once_by_the_newest_name_who_walked_last_first(caregiver_db: str) -> None:
    store = Store(caregiver_db)
    try:
        _walked(store, "tm-1", 0, DEFAULT_WALKER)  # before the treadmill had profiles
        _walked(store, "tm-1", 1, Walker("anna", "Ann"))
        _walked(store, "tm-1", 3, Walker("bob", "Bob"))
        _walked(store, "tm-1", 5, Walker("anna", "Anna K."))  # renamed at the treadmill
        _walked(store, "tm-1", 2, Walker("carl", "Carl"))
        _walked(store, "tm-2", 9, Walker("dora", "Dora"))  # another treadmill's walker
        assert store.walkers("tm-1") == [
            ("anna", "Anna K."),
            ("bob", "Bob"),
            ("carl", "Carl"),
            ("default", "Default walker"),
        ]
        assert store.walkers("tm-2") == [("dora", "Dora")]
        assert store.walkers("tm-never") == []
    finally:
        store.close()


def test_the_walkers_read_searches_the_sessions_by_index(tmp_path: Path) -> None:
    """As SQLite plans the read (the statement :meth:`Store.walkers` runs): every step on
    ``walk_sessions`` is an index search, none a scan of the table, and nothing is grouped
    (the grouping of a treadmill's every session was the read before)."""
    database = str(tmp_path / "caregiver.db")
    store = Store(database)
    try:
        for day in range(40):
            _walked(store, "tm-1", day, Walker(f"w{day % 4}", f"Walker {day % 4}"))
        _walked(store, "tm-2", 0, Walker("w0", "Walker 0"))
    finally:
        store.close()
    db = sqlite3.connect(database)
    try:
        db.execute("ANALYZE")
        plan = [
            str(row[3])
            for row in db.execute(f"EXPLAIN QUERY PLAN {_WALKERS_SELECT}", ("tm-1",) * 4)
        ]
    finally:
        db.close()
    on_sessions = [step for step in plan if re.match(r"(SCAN|SEARCH) (walk_sessions|s)\b", step)]
    assert on_sessions, plan
    assert all(
        step.startswith("SEARCH") and "walk_sessions_by_walker (device_id=?" in step
        for step in on_sessions
    ), plan
    assert not [step for step in plan if "GROUP BY" in step], plan
