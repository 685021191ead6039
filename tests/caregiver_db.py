"""Reaching the caregiver database behind the store's back, on either engine: what a test
does to play an older version's rows, or to witness what the store wrote."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from caregiver.storage import engine_of


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
