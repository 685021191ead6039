"""Reaching the caregiver database behind the store's back, on either engine: what a test
does to play an older version's rows, or to witness what the store wrote."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from caregiver.storage import Store, engine_of, schema


def execute(database: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement (``?`` placeholders) in its own transaction; the rows it returned."""
    if engine_of(database) == "postgresql":
        with psycopg.connect(database, autocommit=True) as pg:
            cur = pg.execute(sql.replace("?", "%s").encode(), params)
            return cur.fetchall() if cur.description else []
    db = sqlite3.connect(database)
    try:
        with db:
            return db.execute(sql, params).fetchall()
    finally:
        db.close()


@contextlib.contextmanager
def store_at_schema(database: str, version: int) -> Iterator[Store]:
    """The store as the release whose schema was ``version`` opened it (the migrations after
    it unknown while the block runs), closed at the block's end: a test writes that release's
    rows into it, then opens ``Store(database)`` to see the upgrade."""
    with pytest.MonkeyPatch.context() as before:
        before.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:version])
        before.setattr(schema, "SCHEMA_VERSION", version)
        store = Store(database)
        try:
            yield store
        finally:
            store.close()
