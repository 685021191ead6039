"""The walker registry of this treadmill: who walks here, in button order, and who is chosen.

Table ``walkers``: one row per profile (id, name, its place in the button's
cycle, when it was added and, once removed, when). A removed walker's row
stays, so the sessions and incidents recorded for them keep a name; its id
is not given to anyone else. Table ``walker_changes``: every add, remove and
selection, newest last, never rewritten; the newest ``selected`` row is the
walker chosen for the next session (the default walker without one).

Written by the local CLI (``retroguard walker``) and by the courier when the
walker picked a profile with the button (:class:`firmware.link.messages.WalkerChosen`);
nothing from the network adds, removes or selects a walker. The courier hands
the roster to the loop whenever :func:`roster_revision` moves.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from dataclasses import dataclass
from typing import Literal

from core.protocol.walker import (
    DEFAULT_WALKER,
    DEFAULT_WALKER_ID,
    MAX_WALKERS,
    Walker,
    WalkerInvalid,
    check_walker_id,
    check_walker_name,
    walker_id_for,
)

Via = Literal["cli", "button"]


@dataclass(frozen=True, slots=True)
class Roster:
    """The walkers in button order and the one chosen; ``revision`` grows with every change.
    ``refused``: rows left out for breaking the walker contract (:func:`refused_walkers`)."""

    revision: int
    walkers: tuple[Walker, ...]
    selected: Walker
    refused: tuple[str, ...] = ()

    def find(self, walker_id: str) -> Walker | None:
        return next((w for w in self.walkers if w.id == walker_id), None)


def _record(
    conn: sqlite3.Connection, walker: str, change: str, by: str, via: str, wall: str
) -> int:
    cursor = conn.execute(
        "INSERT INTO walker_changes (walker, change, changed_by, via, changed_wall)"
        " VALUES (?, ?, ?, ?, ?)",
        (walker, change, by, via, wall),
    )
    return int(cursor.lastrowid or 0)


def _text(value: object, errors: str = "replace") -> str:
    """A column read as its bytes (``CAST(... AS BLOB)``), as text. A hand edit may store bytes
    that are not UTF-8 (a Latin-1 terminal's ``sqlite3``), which sqlite3 cannot read as text:
    the whole query raised, and no roster reached the loop. ``errors``: "surrogateescape"
    keeps them unprintable, so the walker check refuses the row."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors)
    return str(value)


def _active_rows(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT CAST(id AS BLOB), CAST(name AS BLOB) FROM walkers WHERE removed_wall IS NULL "
        "ORDER BY position, id"
    ).fetchall()
    return [(_text(i, "surrogateescape"), _text(n, "surrogateescape")) for i, n in rows]


def _row_problem(walker_id: str, name: str) -> str | None:
    """What in a stored walker breaks the walker contract (None: nothing). Only a hand edit
    of the database stores one: every writer here checks first, and stores the name as the
    check trims it. A name the check passes only once trimmed is one too: the wire takes the
    name as stored (past 40 characters with its spaces, the loop refused the roster), and a
    line break or a tab in it was spoken and shown."""
    try:
        check_walker_id(walker_id)
        if check_walker_name(name) != name:
            return (
                "walker name: must be as 'retroguard walker add' stores it: no spaces at its "
                "ends, one space between words, no tab or line break"
            )
    except WalkerInvalid as exc:
        return str(exc)
    return None


def active_walkers(conn: sqlite3.Connection) -> tuple[Walker, ...]:
    """The walkers on the button's cycle, in its order; a row that breaks the contract is
    left out (:func:`refused_walkers` says which). Handed to the loop as it was, one bad id
    was refused by the loop's reading of the link: the link was dropped, the courier started
    again every few seconds, and nothing the loop sent reached the disk."""
    walkers = tuple(Walker(i, n) for i, n in _active_rows(conn) if _row_problem(i, n) is None)
    return walkers or (DEFAULT_WALKER,)


def refused_walkers(conn: sqlite3.Connection) -> tuple[str, ...]:
    """Each stored walker left off the roster for breaking the contract, in words that say
    how to mend it."""
    return tuple(
        f"walker {i!r} ({n!r}) is left out of the walkers: {problem}; "
        f"retroguard walker remove {i!r} takes it off"
        for i, n in _active_rows(conn)
        if (problem := _row_problem(i, n)) is not None
    )


def walker_names(conn: sqlite3.Connection) -> dict[str, str]:
    """Every walker ever registered here (removed ones too), id -> name: for old records."""
    names = {
        _text(i): _text(n)
        for i, n in conn.execute("SELECT CAST(id AS BLOB), CAST(name AS BLOB) FROM walkers")
    }
    names.setdefault(DEFAULT_WALKER_ID, DEFAULT_WALKER.name)
    return names


def add_walker(
    conn: sqlite3.Connection,
    name: str,
    *,
    walker_id: str | None = None,
    by: str,
    wall: str,
) -> Walker:
    """Register a walker (inside the caller's transaction); :class:`WalkerInvalid` if not.

    Without ``walker_id`` one is made from the name. An id that was removed
    comes back (with this name): the walker's old records are theirs again.
    """
    name = check_walker_name(name)
    active = active_walkers(conn)
    if len(active) >= MAX_WALKERS:
        raise WalkerInvalid(
            f"this treadmill has {len(active)} walkers, the most the button can cycle through "
            f"({MAX_WALKERS}): remove one first"
        )
    known = {str(r[0]): r[1] for r in conn.execute("SELECT id, removed_wall FROM walkers")}
    if walker_id is None:
        _not_a_removed_walker_s(conn, name)
        walker_id = walker_id_for(name, set(known))
    check_walker_id(walker_id)
    if walker_id in known and known[walker_id] is None:
        raise WalkerInvalid(f"walker id {walker_id!r} is taken (retroguard walker list)")
    if any(said_alike(w.name, name) for w in active):
        raise WalkerInvalid(
            f"walker name {name!r} is taken: the button speaks names, so each must differ"
        )
    (position,) = conn.execute("SELECT coalesce(max(position), 0) + 1 FROM walkers").fetchone()
    conn.execute(
        "INSERT INTO walkers (id, name, position, added_wall) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, position = excluded.position,"
        " added_wall = excluded.added_wall, removed_wall = NULL",
        (walker_id, name, int(position), wall),
    )
    _record(conn, walker_id, "added", by, "cli", wall)
    return Walker(walker_id, name)


def said_alike(a: str, b: str) -> bool:
    """Whether two names are one to the walker hearing the button say them and to the physio
    reading the dashboard's list: the same words of letters and digits, case, accents and
    punctuation aside ("Anna B", "anna-b", "Anna B."; "Émile", "Emile"; not "Ann Abel" and
    "Anna Bel"). Letters of any script count, so two names in a script without ASCII letters
    are not taken as one. A name with no letters or digits ("🙂", "★") has no such words: it
    is compared as its own symbols, so "🙂" and "★" are two names."""

    def key(name: str) -> list[str]:
        bare = "".join(
            c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c)
        ).casefold()
        return "".join(c if c.isalnum() else " " for c in bare).split() or bare.split()

    return key(a) == key(b)


def _not_a_removed_walker_s(conn: sqlite3.Connection, name: str) -> None:
    """:class:`WalkerInvalid` when ``name`` is said as a removed walker's is: added by name
    alone they became a new walker (``anna-b-2``), their sessions left under the old id, and
    the dashboard listed both under one name. Whether it is the same person is for whoever
    adds them to say: ``--id`` brings that walker back with their records."""
    for walker_id, old, removed in conn.execute(
        "SELECT id, CAST(name AS BLOB), removed_wall FROM walkers WHERE removed_wall IS NOT NULL "
        "ORDER BY id"
    ):
        if said_alike(_text(old), name):
            raise WalkerInvalid(
                f"{name!r} is the name of walker {walker_id}, removed {str(removed)[:10]}, "
                f"whose records stay theirs: to bring them back with those records, "
                f"retroguard walker add {name!r} --id {walker_id}; for someone else, give a "
                "name that tells them apart"
            )


def remove_walker(conn: sqlite3.Connection, walker_id: str, *, by: str, wall: str) -> Walker:
    """Take a walker off the button's cycle (their records stay); the default walker cannot
    be removed. A removed walker who was chosen leaves the default walker chosen."""
    if walker_id == DEFAULT_WALKER_ID:
        raise WalkerInvalid("the default walker cannot be removed (records without one are theirs)")
    # a row left out of the roster for breaking the contract can be removed too
    rows = _active_rows(conn)
    # its name as it can be printed (one not UTF-8 is said with a replacement character)
    walker = next(
        (Walker(i, _text(n.encode("utf-8", "surrogateescape"))) for i, n in rows if i == walker_id),
        None,
    )
    if walker is None:
        raise WalkerInvalid(f"no walker {walker_id!r} here (retroguard walker list)")
    was_selected = _chosen_on_record(conn) == walker_id
    conn.execute("UPDATE walkers SET removed_wall = ? WHERE id = ?", (wall, walker_id))
    _record(conn, walker_id, "removed", by, "cli", wall)
    if was_selected:
        _record(conn, DEFAULT_WALKER_ID, "selected", by, "cli", wall)
    return walker


def select_walker(
    conn: sqlite3.Connection, walker_id: str, *, by: str, via: Via, wall: str
) -> Walker:
    """Choose the walker of the next session (inside the caller's transaction). It starts
    nothing: a session still starts with the walker's own press or command, arming still
    takes the reset button held until the chirp."""
    walker = next((w for w in active_walkers(conn) if w.id == walker_id), None)
    if walker is None:
        raise WalkerInvalid(f"no walker {walker_id!r} here (retroguard walker list)")
    _record(conn, walker_id, "selected", by, via, wall)
    return walker


def _chosen_on_record(conn: sqlite3.Connection) -> str | None:
    """The walker of the last choice stored, on the roster or not (None: none made yet). A
    row left out of the roster is still this choice: removed, it leaves the default chosen,
    or added back it would be chosen again, by no one."""
    row = conn.execute(
        "SELECT walker FROM walker_changes WHERE change = 'selected' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def selected_walker(conn: sqlite3.Connection) -> Walker:
    chosen = _chosen_on_record(conn)
    active = active_walkers(conn)
    for walker in active:
        if walker.id == chosen:
            return walker
    return next((w for w in active if w.id == DEFAULT_WALKER_ID), active[0])


def roster_revision(conn: sqlite3.Connection) -> int:
    """The newest change's id (0: none yet): what the courier polls, cheaply."""
    (revision,) = conn.execute("SELECT coalesce(max(id), 0) FROM walker_changes").fetchone()
    return int(revision)


def profiles_changed_wall(conn: sqlite3.Connection) -> str | None:
    """When a walker was last added or removed (None: never): the published roster's time."""
    row = conn.execute(
        "SELECT changed_wall FROM walker_changes WHERE change IN ('added', 'removed')"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def roster(conn: sqlite3.Connection) -> Roster:
    return Roster(
        roster_revision(conn), active_walkers(conn), selected_walker(conn), refused_walkers(conn)
    )
