"""The query planner's statistics: refreshed by the housekeeping every hour and at close, a
failure said once and survived, and the reads that statistics would have sent to a scan of
every alert kept on their index.

Real SQLite files; the housekeeping's refresh on a fake monotonic clock. Statistics are
SQLite's alone (PostgreSQL's autovacuum analyzes its tables), so no PostgreSQL run here.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from caregiver import outbox
from caregiver.planner_statistics import PlannerStatistics
from caregiver.storage import OPTIMIZE_EVERY_S, Store
from tests.caregiver_db import execute
from tests.caregiver_support import BY_HAND, make_config, new_event, running_service, wait_until
from tests.sqlite_plans import query_plan, traced_store
from tools.broker import Mosquitto

DEVICE = "treadmill-1"


def _history(store: Store, incidents: int) -> None:
    """``incidents`` stumbles, each its incident and an alert, all acknowledged but the last:
    the rows a year leaves, indexed."""
    for n in range(incidents):
        at = 1_800_000_000.0 + n * 3600.0
        event = new_event(n, incident=f"inc{n:04d}")
        with store.transaction() as tx:
            tx.record_event(event, at)
            tx.open_incident(f"inc{n:04d}", DEVICE, "stumble", event.id, "w", at)
            alert = tx.page_alert("stumble", DEVICE, event.id, at, at, f"inc{n:04d}", frame=BY_HAND)
            if n < incidents - 1:
                tx.close_alert(alert, "acknowledged", "ann", at + 60.0)


def _statistics(database: str) -> set[str]:
    """The tables ``sqlite_stat1`` has statistics for (none: it does not exist)."""
    db = sqlite3.connect(database)
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchall():
            return set()
        return {table for (table,) in db.execute("SELECT tbl FROM sqlite_stat1")}
    finally:
        db.close()


def _used(store: Store) -> None:
    """What the service does all day: the dashboard's reads and the ticker's look."""
    store.devices()
    store.events_for(DEVICE)
    store.open_critical(None, 50)
    with store.transaction() as tx:
        tx.open_alerts_due(2_000_000_000.0)


def test_the_housekeeping_refreshes_the_statistics_every_hour_and_the_store_at_close(
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "caregiver.db")
    store = Store(database)
    try:
        _history(store, 40)
        _used(store)
        ticks = [100.0]
        statistics = PlannerStatistics(store, monotonic=lambda: ticks[0])
        ticks[0] += OPTIMIZE_EVERY_S - 1
        assert not statistics.tick()  # not yet an hour
        assert _statistics(database) == set()  # as every database was: never analyzed
        ticks[0] += 1
        assert statistics.tick()
        assert {"events", "alerts"} <= _statistics(database)
    finally:
        store.close()

    other = str(tmp_path / "other.db")
    store = Store(other)
    _history(store, 40)
    _used(store)
    store.close()  # SQLite's advice: optimize before a connection closes
    assert {"events", "alerts"} <= _statistics(other)


def test_the_running_service_refreshes_them_an_hour_after_start(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The housekeeping thread's own pass, on the service's monotonic clock set an hour on:
    the tables the service's queries used (the ticker's look at the alerts every second, the
    dashboard's reads) have statistics. Nothing before the hour."""
    config = make_config(mosquitto, tmp_path)
    database = config.server.database
    store = Store(database)
    _history(store, 40)
    store.close()
    execute(database, "DELETE FROM sqlite_stat1")  # what closing it wrote: the service's own
    ticks = [1000.0]
    with running_service(config, web=False, monotonic=lambda: ticks[0]) as service:
        _used(service.store)
        assert _statistics(database) == set()
        ticks[0] += OPTIMIZE_EVERY_S
        assert wait_until(lambda: {"events", "alerts"} <= _statistics(database))


def test_a_refresh_that_fails_is_said_once_and_the_housekeeping_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds the database's write lock past the busy timeout (a backup, an
    ``sqlite3`` shell): the refresh's ``ANALYZE`` cannot write its statistics. One WARNING at
    the start, none while it goes on, one INFO when it works again; never raised."""
    database = str(tmp_path / "caregiver.db")
    store = Store(database)
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        _history(store, 40)
        _used(store)
        ticks = [0.0]
        statistics = PlannerStatistics(store, monotonic=lambda: ticks[0])
        holder.execute("BEGIN IMMEDIATE")
        with caplog.at_level(logging.INFO, logger="caregiver.planner_statistics"):
            for _ in range(2):
                ticks[0] += OPTIMIZE_EVERY_S
                assert not statistics.tick()
            holder.execute("ROLLBACK")
            ticks[0] += OPTIMIZE_EVERY_S
            assert statistics.tick()
        warning, back = caplog.records
        assert warning.levelno == logging.WARNING and warning.getMessage().startswith(
            "could not refresh the query planner's statistics (reads are planned from the "
            "ones it has): caregiver database: database is locked"
        )
        assert warning.exc_info is None  # the fault's words, not a traceback
        assert (back.levelno, back.getMessage()) == (
            logging.INFO,
            "the query planner's statistics are refreshed again",
        )
        assert {"events", "alerts"} <= _statistics(database)
    finally:
        holder.close()
        store.close()


def test_with_statistics_the_open_alerts_are_read_through_their_own_index(
    tmp_path: Path,
) -> None:
    """Statistics say each alert status holds a large share of the table (nearly every alert
    is acknowledged); SQLite then planned the ticker's look for due alerts (every second) and
    the dashboard's still-open list as a scan of every alert ever stored. Each is read
    through ``alerts_open_now`` (schema 30), the index of the few open ones, with the
    statistics the service keeps and without."""
    database = str(tmp_path / "caregiver.db")
    store, statements = traced_store(database)
    try:
        _history(store, 600)
        statements.clear()
        store.paging_alerts(None, 50, held=True)  # the still-open list, both kinds
        store.paging_alerts(None, 50)
        with store.transaction() as tx:
            tx.open_alerts_due(2_000_000_000.0)  # the ticker's look
        looks = [s for s in statements if s.startswith("SELECT") and "FROM alerts WHERE" in s]
        assert len(looks) == 3, statements
        plans = [query_plan(database, look) for look in looks]
        store.optimize()
        assert "alerts" in _statistics(database)
        plans += [query_plan(database, look) for look in looks]
    finally:
        store.close()
    for plan in plans:
        assert plan[0].startswith("SEARCH alerts USING INDEX alerts_open_now "), plan


def _notified(database: str, rows: int) -> None:
    """``rows`` notifications as a year leaves them: nearly all sent, some given up, one in a
    thousand still pending."""
    db = sqlite3.connect(database, isolation_level=None)
    try:
        db.execute("BEGIN")
        for n in range(rows):
            status = "pending" if n % 1000 == 0 else "failed" if n % 50 == 0 else "sent"
            at = 1_800_000_000.0 + n * 60.0
            db.execute(
                "INSERT INTO notifications (contact, contact_index, url_index, title, body, "
                "status, attempts, next_at, created_at, frame_of, frame_offset) "
                "VALUES ('Ann', 0, 0, 't', 'b', ?, 1, ?, ?, 'boot', 0.0)",
                (status, at, at),
            )
        db.execute("COMMIT")
    finally:
        db.close()


NOTIFIER_STATEMENTS = {
    "due": outbox.DUE,
    "next due": outbox.NEXT_DUE,
    "still due": outbox.STILL_DUE,
    "claim": outbox.CLAIM,
    "sent": outbox.SENT,
    "retry": outbox.RETRY,
    "give up": outbox.GIVE_UP,
    "drop": outbox.DROP,
    "shift framed": outbox.SHIFT_FRAMED,
    "shift": outbox.SHIFT,
}
"""What the notifier's own connection runs (:class:`caregiver.outbox.SqliteOutbox`)."""


def _notifier_plans(database: str) -> dict[str, list[str]]:
    """Each of :data:`NOTIFIER_STATEMENTS` planned on a new connection (as the notifier's is
    opened: it loads the file's statistics then), its parameters as NULL."""
    return {
        name: query_plan(database, statement.replace("?", "NULL"))
        for name, statement in NOTIFIER_STATEMENTS.items()
    }


def test_the_notifiers_statements_keep_their_index_with_the_stores_statistics(
    tmp_path: Path,
) -> None:
    """The notifier's connection runs no ``PRAGMA optimize`` of its own: it plans with the
    statistics the store's connections keep in the file (bounded by ``analysis_limit``),
    and with them as without them every statement it runs reads a notification by its id
    or the pending ones through an index, never every row ever sent.

    Measured (100,000 notifications, one in a thousand pending): with no statistics or the
    store's, the look for what is due (every round of the notifier) is an index search and
    a sort of the few pending, 0.11 ms; with a full ``ANALYZE`` of the table, which a
    ``PRAGMA optimize`` of the notifier's own connection (no ``analysis_limit``) runs, its
    statistics say each status holds a third of the table, and SQLite planned it as a scan
    of every notification in id order, 6.2 ms, growing with the history, until the pending
    ones had an index of their own (the next test)."""
    database = str(tmp_path / "caregiver.db")
    store = Store(database)
    try:
        _notified(database, 3000)
        store.notifications_due(1_900_000_000.0)  # the store reads the table too
        before = _notifier_plans(database)
        store.optimize()
        assert "notifications" in _statistics(database)
        after = _notifier_plans(database)
    finally:
        store.close()
    for name, plan in [*before.items(), *after.items()]:
        assert plan[0].startswith("SEARCH notifications USING "), (name, plan)
    assert before == after


def test_the_pending_notifications_are_read_through_their_own_index_after_a_full_analyze(
    tmp_path: Path,
) -> None:
    """Someone runs a full ``ANALYZE`` on the database (an ``sqlite3`` shell, a connection's
    ``PRAGMA optimize`` without an ``analysis_limit``): its statistics say each status holds
    a third of the notifications, and SQLite planned the look for what is due (the notifier's
    every round, and the store's) as a scan of every notification ever sent, 6.1 ms instead
    of 0.12 on 100,000 of them. The pending ones have an index of their own
    (``notifications_pending``, schema 31), which a full ``ANALYZE`` counts as the few rows
    it holds: every statement that looks at the pending ones searches it."""
    database = str(tmp_path / "caregiver.db")
    Store(database).close()
    _notified(database, 3000)
    execute(database, "ANALYZE")  # by hand: every row of every index read
    assert "notifications" in _statistics(database)
    plans = _notifier_plans(database)
    plans["pending (the store's)"] = query_plan(database, outbox.PENDING)
    for name, plan in plans.items():
        assert plan[0].startswith("SEARCH notifications USING "), (name, plan)
    for name in ("due", "pending (the store's)", "shift framed", "shift"):
        assert plans[name][0].startswith(
            "SEARCH notifications USING INDEX notifications_pending "
        ), (name, plans[name])
