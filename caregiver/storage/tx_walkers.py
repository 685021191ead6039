"""A transaction's operations on guided sessions, walkers, zones, stages, prescriptions.

One of the parts :class:`caregiver.storage.store.Transaction` is made of (one per area of
the schema); it holds no state of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from caregiver.storage.records import WALK_FIELDS, WalkOutcome, WalkSession
from caregiver.storage.sql import _a_week, _kept_is_newer
from caregiver.storage.tx_base import _TxBase
from core.protocol.messages import ProtocolError, StageMessage
from core.protocol.payloads import decode_as
from core.protocol.walker import DEFAULT_WALKER

_WALKERS_SELECT = (
    "WITH RECURSIVE ids (walker) AS ("
    " SELECT MIN(walker) FROM walk_sessions WHERE device_id = ?"
    " UNION ALL SELECT (SELECT MIN(s.walker) FROM walk_sessions s"
    " WHERE s.device_id = ? AND s.walker > ids.walker) FROM ids"
    " WHERE ids.walker IS NOT NULL),"
    " newest (walker, started_wall) AS (SELECT walker, (SELECT MAX(s.started_wall)"
    " FROM walk_sessions s WHERE s.device_id = ? AND s.walker = ids.walker)"
    " FROM ids WHERE walker IS NOT NULL)"
    " SELECT n.walker, (SELECT s.walker_name FROM walk_sessions s WHERE s.device_id = ?"
    " AND s.walker = n.walker AND s.started_wall = n.started_wall ORDER BY s.id DESC"
    " LIMIT 1) FROM newest n ORDER BY n.started_wall DESC, n.walker"
)
"""The walkers of a device's sessions (:meth:`TxWalkers.walkers`; the device's id four times):
each id found by the index's next one after the last, then its newest session's name."""


class TxWalkers(_TxBase):
    """A transaction's operations on guided sessions, walkers, zones, stages, prescriptions."""

    # ----------------------------------------------------- guided sessions

    def record_walk_session(self, session: WalkSession, payload: str, now: float) -> WalkOutcome:
        """Store one session summary by id (``payload``: the message as received).

        A summary re-published for the same id replaces the row only when it carries
        more amendment than the stored one (``amended``): the device amends a session's
        record when an event of its trip's incident comes after it ended (a fall
        confirmed later) and queues its summary once per amendment. One with as many
        is that summary delivered again, whatever its bytes (its ``wall_time`` says
        when it was queued, and is no order), and one with fewer is a redelivery
        overtaken by the amendment: both are ignored ("same"), as is one naming
        another device's session, so no device can overwrite another's log. The rule
        is in the upsert itself, so two instances storing two summaries of one session
        at once keep the more amended.
        """
        self._touch(session.device_id, now)
        row = self._db.execute(
            "SELECT device_id FROM walk_sessions WHERE id = ?", (session.id,)
        ).fetchone()
        if row is not None and row[0] != session.device_id:
            return "same"
        columns = ", ".join(WALK_FIELDS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in WALK_FIELDS[2:])
        cur = self._db.execute(
            f"INSERT INTO walk_sessions ({columns}, received_at, payload) "
            f"VALUES ({', '.join('?' * (len(WALK_FIELDS) + 2))}) "
            # received_at stays when the session first reached this service: an amended
            # summary, received later, is not a session begun later (the plan page orders a
            # plan's answer and the session since by it, caregiver.routes.plans.began_here)
            f"ON CONFLICT (id) DO UPDATE SET {updates}, "
            "payload = excluded.payload WHERE walk_sessions.device_id = excluded.device_id "
            "AND walk_sessions.amended < excluded.amended",
            (*(getattr(session, c) for c in WALK_FIELDS), now, payload),
        )
        if cur.rowcount == 0:
            return "same"
        return "new" if row is None else "updated"

    def walk_sessions(
        self, device_id: str, limit: int, walker: str | None = None
    ) -> list[WalkSession]:
        of_walker = "" if walker is None else " AND walker = ?"
        rows = self._db.execute(
            f"SELECT {', '.join(WALK_FIELDS)} FROM walk_sessions WHERE device_id = ?{of_walker} "
            "ORDER BY started_wall DESC, id LIMIT ?",
            (device_id, *(() if walker is None else (walker,)), limit),
        ).fetchall()
        return [WalkSession(*r) for r in rows]

    def walk_session_received(self, session_id: str) -> float | None:
        """When the session's summary first reached this service (its own clock); None: not
        stored."""
        row = self._db.execute(
            "SELECT received_at FROM walk_sessions WHERE id = ?", (session_id,)
        ).fetchone()
        return None if row is None else float(row[0])

    def walk_session_payloads(
        self, device_id: str, limit: int, walker: str | None = None
    ) -> list[str]:
        of_walker = "" if walker is None else " AND walker = ?"
        rows = self._db.execute(
            f"SELECT payload FROM walk_sessions WHERE device_id = ?{of_walker} "
            "ORDER BY started_wall DESC, id LIMIT ?",
            (device_id, *(() if walker is None else (walker,)), limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def walkers(self, device_id: str) -> list[tuple[str, str]]:
        """Each walker id of the device's sessions with the name of its newest session, the
        one who walked last first.

        Read in steps of ``walk_sessions_by_walker`` (device, walker, start): the next walker
        id after the one before (a recursive skip over the index), then each one's newest
        session. Every page, the fleet's cards and the live feed name walkers through this,
        and a grouping of the device's sessions read all of them, a year's in a few ms
        each, several times a page (benchmarks/caregiver_history.py); this reads a few rows
        a walker however long the history."""
        rows = self._db.execute(_WALKERS_SELECT, (device_id,) * 4).fetchall()
        return [(str(walker), str(name)) for walker, name in rows]

    def walk_session_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM walk_sessions").fetchone()[0])

    def set_device_walkers(self, device_id: str, walkers: Sequence[tuple[str, str]]) -> bool:
        """The device's walker profiles, ``(id, name)`` in button order, as it published them;
        True when they changed. Every instance writes the same rows (the message is retained):
        upserts and one delete, so two at once do not collide on a key."""
        if self.device_walkers(device_id) == list(walkers):
            return False
        for position, (walker, name) in enumerate(walkers):
            self._db.execute(
                "INSERT INTO device_walkers (device_id, walker, name, position) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (device_id, walker) DO UPDATE SET name = excluded.name,"
                " position = excluded.position",
                (device_id, walker, name, position),
            )
        if not walkers:  # the wire never says so (the default walker is always there)
            self._db.execute("DELETE FROM device_walkers WHERE device_id = ?", (device_id,))
            return True
        kept, params = self._db.one_of("walker", [w for w, _ in walkers])
        self._db.execute(
            f"DELETE FROM device_walkers WHERE device_id = ? AND NOT {kept}", (device_id, *params)
        )
        return True

    def set_device_zone(self, device_id: str, zone: str, now: float | None) -> bool:
        """The IANA zone the device counts its weeks in, as its progress message names it;
        True when it changed. ``now`` None: a copy the broker kept (retained, handed over at
        a subscription), what the device said before: its "last seen" stays (a treadmill
        gone for days read as heard a moment ago after the service's restart)."""
        row = self._db.execute("SELECT zone FROM devices WHERE device_id = ?", (device_id,))
        before = row.fetchone()
        if before is not None and str(before[0]) == zone:
            return False
        if now is not None:
            self._touch(device_id, now)
        elif before is None:
            self._db.execute(
                "INSERT INTO devices (device_id, last_seen) VALUES (?, NULL) "
                "ON CONFLICT (device_id) DO NOTHING",
                (device_id,),
            )
        self._db.execute("UPDATE devices SET zone = ? WHERE device_id = ?", (zone, device_id))
        return True

    def device_zone(self, device_id: str) -> str:
        """:meth:`set_device_zone`'s zone; '' when the device never named one."""
        row = self._db.execute(
            "SELECT zone FROM devices WHERE device_id = ?", (device_id,)
        ).fetchone()
        return "" if row is None else str(row[0])

    def device_walkers(self, device_id: str) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT walker, name FROM device_walkers WHERE device_id = ? ORDER BY position, walker",
            (device_id,),
        ).fetchall()
        return [(str(w), str(n)) for w, n in rows]

    # ------------------------------------------------- walkers' progressions

    def set_walker_stage(
        self, device_id: str, stage: StageMessage, message: bytes, now: float
    ) -> bool:
        """``stage``, the device's retained word on one walker's progression (``message``, its
        payload, is what is kept; ``now``, when it was received); True when it says something
        new. A redelivery (a reconnect hands the retained copy over again) changes nothing; an
        older one than stored (by the device's ``wall_time``) neither, unless the stored one was
        stamped beyond :data:`STAGE_AHEAD_S` ahead of its arrival. Every instance writes the
        same row (one upsert)."""
        walker = stage.walker.id
        row = self._db.execute(
            "SELECT message, wall_time, received_at FROM walker_stages"
            " WHERE device_id = ? AND walker = ?",
            (device_id, walker),
        ).fetchone()
        text = message.decode()
        if row is not None and (
            str(row[0]) == text or _kept_is_newer(str(row[1]), float(row[2]), stage)
        ):
            return False
        self._db.execute(
            "INSERT INTO walker_stages (device_id, walker, message, wall_time, received_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id, walker) DO UPDATE SET"
            " message = excluded.message, wall_time = excluded.wall_time,"
            " received_at = excluded.received_at",
            # a time the device's unset clock said orders nothing: kept as no time
            (device_id, walker, text, "" if stage.wall_unsynced else stage.wall_time, now),
        )
        return True

    def forget_walker_stage(self, device_id: str, walker: str) -> bool:
        """The device cleared ``walker``'s stage (removed at the treadmill); True when one was
        kept."""
        cursor = self._db.execute(
            "DELETE FROM walker_stages WHERE device_id = ? AND walker = ?", (device_id, walker)
        )
        return bool(cursor.rowcount)

    def walker_stage(self, device_id: str, walker: str) -> StageMessage | None:
        """``walker``'s progression as the device last published it; None when it never did
        (no progression, or a release before the message) or what is kept is unreadable."""
        row = self._db.execute(
            "SELECT message FROM walker_stages WHERE device_id = ? AND walker = ?",
            (device_id, walker),
        ).fetchone()
        if row is None:
            return None
        try:
            return decode_as(StageMessage, str(row[0]).encode())
        except ProtocolError:
            return None

    # ------------------------------------------------- prescribed sessions

    def set_prescribed(
        self,
        device_id: str,
        week: str,
        sessions: int,
        walker: str = DEFAULT_WALKER.id,
        *,
        always: bool = False,
    ) -> bool:
        """The sessions ``walker``'s progression prescribes in ``week``; True when it changed.
        ``always``: the row written even unchanged (a write that commits then shows that its
        table takes writes: :class:`caregiver.storage.side_faults.SideFaults`)."""
        if walker != DEFAULT_WALKER.id:
            return self._set_walker_prescribed(device_id, walker, week, sessions, always)
        row = self._db.execute(
            "SELECT sessions FROM prescribed_weeks WHERE device_id = ? AND week = ?",
            (device_id, week),
        ).fetchone()
        changed = row is None or int(row[0]) != sessions
        if not changed and not always:
            return False
        self._db.execute(
            "INSERT INTO prescribed_weeks (device_id, week, sessions) VALUES (?, ?, ?) "
            "ON CONFLICT (device_id, week) DO UPDATE SET sessions = excluded.sessions",
            (device_id, week, sessions),
        )
        return changed

    def _set_walker_prescribed(
        self, device_id: str, walker: str, week: str, sessions: int, always: bool
    ) -> bool:
        row = self._db.execute(
            "SELECT sessions FROM walker_prescribed_weeks"
            " WHERE device_id = ? AND walker = ? AND week = ?",
            (device_id, walker, week),
        ).fetchone()
        changed = row is None or int(row[0]) != sessions
        if not changed and not always:
            return False
        self._db.execute(
            "INSERT INTO walker_prescribed_weeks (device_id, walker, week, sessions)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (device_id, walker, week)"
            " DO UPDATE SET sessions = excluded.sessions",
            (device_id, walker, week, sessions),
        )
        return changed

    def prescribed_weeks(self, device_id: str, walker: str = DEFAULT_WALKER.id) -> dict[str, int]:
        if walker != DEFAULT_WALKER.id:
            rows = self._db.execute(
                "SELECT week, sessions FROM walker_prescribed_weeks"
                " WHERE device_id = ? AND walker = ?",
                (device_id, walker),
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT week, sessions FROM prescribed_weeks WHERE device_id = ?", (device_id,)
            ).fetchall()
        # A week no calendar has ("2026-W60"), stored before the progress message refused
        # one, would sort after December's and set the count of the next year's first weeks.
        return {str(r[0]): int(r[1]) for r in rows if _a_week(str(r[0]))}
