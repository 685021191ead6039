"""The plan assignments: which session plan this device uses, who set it, when and how.

Table ``plans``: one row per assignment, newest last, never rewritten — the
physio's history on the device. The newest row is the plan in force; its
``plan`` column is a :class:`core.protocol.plan.Plan` as JSON, or NULL when
the assignment was "back to the config's ``session.plan``". The courier
hands the newest one to the monitor loop (at start and whenever it changes),
which uses it from the next session start on.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

from core.protocol.plan import Plan, PlanInvalid, plan_from_json, plan_json

Via = Literal["mqtt", "cli", "progression"]


@dataclass(frozen=True, slots=True)
class PlanAssignment:
    revision: int
    """The row id: grows with every assignment (the courier forwards a new one)."""
    plan: Plan | None
    """None: the config's ``session.plan`` again."""
    by: str
    via: str
    request_id: str | None
    assigned_wall: str


def assign_plan(
    conn: sqlite3.Connection,
    plan: Plan | None,
    *,
    by: str,
    via: Via,
    assigned_wall: str,
    request_id: str | None = None,
) -> int:
    """Record an assignment (inside the caller's transaction); its revision."""
    cursor = conn.execute(
        "INSERT INTO plans (plan, assigned_by, via, request_id, assigned_wall)"
        " VALUES (?, ?, ?, ?, ?)",
        (None if plan is None else plan_json(plan), by, via, request_id, assigned_wall),
    )
    return int(cursor.lastrowid or 0)


_COLUMNS = "id, plan, assigned_by, via, request_id, assigned_wall"


def _assignment(row: tuple[object, ...]) -> PlanAssignment:
    revision, text, by, via, request_id, wall = row
    plan: Plan | None = None
    if text is not None:
        try:
            plan = plan_from_json(str(text))
        except PlanInvalid:
            plan = None
    return PlanAssignment(
        int(str(revision)),
        plan,
        str(by),
        str(via),
        None if request_id is None else str(request_id),
        str(wall),
    )


def current_plan(conn: sqlite3.Connection) -> PlanAssignment | None:
    """The assignment in force, or None when no plan was ever assigned here.

    A stored plan this release cannot read (written by hand, or by a newer one
    with other rules) counts as "the config's plan", never as an error that
    could stop the courier.
    """
    history = plan_history(conn, 1)
    return history[0] if history else None


def plan_history(conn: sqlite3.Connection, limit: int = 10) -> list[PlanAssignment]:
    """The newest ``limit`` assignments, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM plans ORDER BY id DESC LIMIT ?", (limit,)
    ).fetchall()
    return [_assignment(row) for row in rows]


def current_revision(conn: sqlite3.Connection) -> int:
    """The newest assignment's revision (0: none): what the courier polls, cheaply."""
    (revision,) = conn.execute("SELECT coalesce(max(id), 0) FROM plans").fetchone()
    return int(revision)
