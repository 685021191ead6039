"""The open incidents' alarms every page asks for, read from the open incidents (few) rather
than from every event or incident a clinic ever stored.

Every HTML page and ``/api/alarms`` read :meth:`caregiver.storage.Store.open_critical`. The
service ran no ``ANALYZE`` (now its housekeeping keeps the statistics, from an hour after
start), and without them SQLite planned the read as a scan of
every event stored (an incident's own event looked up from each event): about 2 to 4 ms a page
at a year of 8 treadmills, growing with the history (``benchmarks/caregiver_history.py``).
The rows are written behind the store's back (:mod:`tests.caregiver_db`): what is under test
is what the read answers on both engines, and how SQLite plans it on a database as the
service leaves it.
"""

from __future__ import annotations

import re
from pathlib import Path

from caregiver.storage import Store
from tests.caregiver_db import execute
from tests.sqlite_plans import query_plan, traced_store

_EVENT = (
    "INSERT INTO events (id, device_id, seq, type, severity, state, reason, wall_time, "
    "received_at, incident) VALUES (?, ?, ?, ?, ?, 'TRIPPED', 'test', "
    "'2026-12-01T10:00:00+00:00', ?, ?)"
)
_INCIDENT = (
    "INSERT INTO incidents (id, device_id, severity, status, opened_at, opened_wall, "
    "first_event_id, last_event_at, closed_at, closed_by, closed_via) "
    "VALUES (?, ?, ?, ?, ?, '2026-12-01T10:00:00+00:00', ?, ?, ?, ?, ?)"
)


def _incident(
    database: str, device_id: str, incident_id: str, at: float, kinds: tuple[str, ...],
    *, open_: bool = True, own: bool = False,
) -> list[str]:  # fmt: skip
    """An incident of events ``kinds`` (a second apart); ``own``: from before incidents, its
    one event is the incident (its id, no ``incident`` of its own). The events' ids."""
    ids = [incident_id] if own else [f"{incident_id}-{n}" for n in range(len(kinds))]
    for n, (event_id, kind) in enumerate(zip(ids, kinds, strict=True)):
        severity = "critical" if kind == "fall" else "warning"
        execute(database, _EVENT, (event_id, device_id, n + 1, kind, severity, at + n,
                                   None if own else incident_id))  # fmt: skip
    closed = (None, None, None) if open_ else (at + 60.0, "ann", "dashboard")
    execute(database, _INCIDENT, (incident_id, device_id, "critical" if "fall" in kinds
                                  else "warning", "open" if open_ else "closed", at, ids[0],
                                  at + len(kinds), *closed))  # fmt: skip
    return ids


def _history(database: str) -> dict[str, list[str]]:
    """Two treadmills' open incidents beside a closed past."""
    for n in range(30):
        _incident(database, "tm-1", f"past-{n}", float(n * 100), ("stumble", "fall"), open_=False)
    return {
        "stumble only": _incident(database, "tm-1", "stumbled", 5000.0, ("stumble",)),
        "fell": _incident(database, "tm-1", "fell", 6000.0, ("stumble", "fall", "fall")),
        "old release": _incident(database, "tm-2", "own", 7000.0, ("fall",), own=True),
    }


def test_the_open_incidents_with_a_fall_newest_first_each_by_its_newest_fall(
    caregiver_db: str,
) -> None:
    Store(caregiver_db).close()
    ids = _history(caregiver_db)
    store = Store(caregiver_db)
    try:
        found = store.open_critical(None, 50)
        assert [(i.id, event) for i, event in found] == [
            ("own", ids["old release"][0]),
            ("fell", ids["fell"][2]),  # the newer of its two falls
        ]
        assert [i.id for i, _ in store.open_critical(["tm-1"], 50)] == ["fell"]
        assert store.open_critical(["tm-3"], 50) == []
    finally:
        store.close()


def test_the_alarms_read_searches_from_the_open_incidents_with_or_without_statistics(
    tmp_path: Path,
) -> None:
    """As SQLite plans the read on a database with no ``ANALYZE`` statistics (a new one, or one
    from before the service kept them), then with those its housekeeping keeps
    (:meth:`Store.optimize`): ``incidents`` is read only through the partial index of the
    open ones, and ``events`` only searched by index, never scanned."""
    database = str(tmp_path / "caregiver.db")
    Store(database).close()
    _history(database)
    store, statements = traced_store(database)
    try:
        store.open_critical(None, 50)
        (statement,) = [s for s in statements if "ROW_NUMBER" in s]
        assert execute(database, "SELECT * FROM sqlite_stat1") == []  # as the service leaves it
        plans = [query_plan(database, statement)]
        store.optimize()
        assert execute(database, "SELECT tbl FROM sqlite_stat1 WHERE tbl = 'events'")
        plans.append(query_plan(database, statement))
    finally:
        store.close()
    for plan in plans:
        on_tables = [s for s in plan if re.match(r"(SCAN|SEARCH) (incidents|events|e)\b", s)]
        assert "SCAN incidents USING INDEX incidents_open_by_device" in on_tables, plan
        assert all(
            s == "SCAN incidents USING INDEX incidents_open_by_device" or s.startswith("SEARCH")
            for s in on_tables
        ), plan
