"""The plan assignments: which session plan this device uses, who set it, when and how.

Table ``plans``: one row per assignment, newest last, never rewritten — the
physio's history on the device. Each names its walker (migration 5; rows from
before are the default walker's). A walker's newest row is their plan in force; its
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
from core.protocol.walker import DEFAULT_WALKER_ID

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
    walker: str = DEFAULT_WALKER_ID


def assign_plan(
    conn: sqlite3.Connection,
    plan: Plan | None,
    *,
    by: str,
    via: Via,
    assigned_wall: str,
    request_id: str | None = None,
    walker: str = DEFAULT_WALKER_ID,
) -> int:
    """Record an assignment of ``walker``'s plan (inside the caller's transaction); its
    revision."""
    cursor = conn.execute(
        "INSERT INTO plans (plan, assigned_by, via, request_id, assigned_wall, walker)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (None if plan is None else plan_json(plan), by, via, request_id, assigned_wall, walker),
    )
    return int(cursor.lastrowid or 0)


_COLUMNS = "id, plan, assigned_by, via, request_id, assigned_wall, walker"


def _assignment(row: tuple[object, ...]) -> PlanAssignment:
    revision, text, by, via, request_id, wall, walker = row
    plan: Plan | None = None
    if text is not None:
        try:
            plan = plan_from_json(str(text), stored=True)
        except PlanInvalid:
            plan = None
    return PlanAssignment(
        int(str(revision)),
        plan,
        str(by),
        str(via),
        None if request_id is None else str(request_id),
        str(wall),
        str(walker),
    )


def current_plan(
    conn: sqlite3.Connection, walker: str = DEFAULT_WALKER_ID
) -> PlanAssignment | None:
    """``walker``'s assignment in force, or None when none was ever assigned to them here.

    A stored plan this release cannot read (written by hand, or by a newer one
    with other rules) counts as "the config's plan", never as an error that
    could stop the courier.
    """
    history = plan_history(conn, 1, walker)
    return history[0] if history else None


def current_plans(conn: sqlite3.Connection) -> dict[str, PlanAssignment]:
    """Every walker's assignment in force, by walker (those never assigned one: absent)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM plans WHERE id IN (SELECT max(id) FROM plans GROUP BY walker)"
        " ORDER BY id"
    ).fetchall()
    return {a.walker: a for a in map(_assignment, rows)}


def plan_history(
    conn: sqlite3.Connection, limit: int = 10, walker: str = DEFAULT_WALKER_ID
) -> list[PlanAssignment]:
    """``walker``'s newest ``limit`` assignments, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM plans WHERE walker = ? ORDER BY id DESC LIMIT ?",
        (walker, limit),
    ).fetchall()
    return [_assignment(row) for row in rows]


def current_revision(conn: sqlite3.Connection) -> int:
    """The newest assignment's revision (0: none): what the courier polls, cheaply."""
    (revision,) = conn.execute("SELECT coalesce(max(id), 0) FROM plans").fetchone()
    return int(revision)
