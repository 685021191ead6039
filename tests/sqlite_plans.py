"""How SQLite plans the statements a store runs: the tests that hold a read to its indexes.

A statement is taken as the store ran it (traced on its own connections, with its bound
parameters inlined by SQLite's trace) and planned on a new connection, which loads whatever
``sqlite_stat1`` statistics the file has then."""

from __future__ import annotations

import sqlite3
from typing import Any

from caregiver.storage import Store


def traced_store(database: str) -> tuple[Store, list[str]]:
    """A store on ``database`` and the list every statement its connections run is appended
    to (the connections it opens while it opens; the notifier's are not among them)."""
    statements: list[str] = []
    real = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = real(*args, **kwargs)
        connection.set_trace_callback(statements.append)
        return connection

    sqlite3.connect = traced  # type: ignore[assignment]
    try:
        store = Store(database)
    finally:
        sqlite3.connect = real
    return store, statements


def query_plan(database: str, statement: str) -> list[str]:
    """``EXPLAIN QUERY PLAN`` of ``statement``, one line a step, on a new connection."""
    db = sqlite3.connect(database)
    try:
        return [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {statement}")]
    finally:
        db.close()
