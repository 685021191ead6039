"""A transaction's retention sweep: what is old enough is removed.

One of the parts :class:`caregiver.storage.store.Transaction` is made of (one per area of
the schema); it holds no state of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from caregiver.storage.tx_base import _TxBase


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one retention sweep removed."""

    recordings: int
    windows: int
    """Older monitors' IMU windows cut out of their events' payloads."""
    notifications: int
    routine_events: int
    login_sessions: int
    pages_freed: int
    stopped: str | None = None
    """What the sweep was removing when it was asked to stop between two chunks (the
    service stopping; :meth:`caregiver.storage.Store.prune`), in words; None: it ran to its
    end. Everything above is what committed before: the next sweep goes on from there."""

    def words(self) -> str:
        """For the log, in words (it printed the dataclass's repr, ``Pruned(recordings=0,
        …)``, at every start)."""
        parts = [
            f"{count} {what}"
            for count, what in (
                (self.recordings, "recordings"),
                (self.windows, "older monitors' IMU windows"),
                (self.notifications, "notifications"),
                (self.routine_events, "routine events"),
                (self.login_sessions, "expired logins"),
            )
            if count
        ]
        if not parts:
            return "nothing removed yet" if self.stopped else "nothing old enough to remove"
        return f"removed {', '.join(parts)}; {self.pages_freed} database pages freed"


class TxRetention(_TxBase):
    """A transaction's share of a retention sweep: each method removes at most ``limit`` rows
    of one kind that are old enough, and says how many it did (fewer than ``limit``: that
    kind is done). :meth:`caregiver.storage.Store.prune` runs them a chunk a transaction."""

    def prune_recordings(self, before: float, limit: int) -> int:
        """Recordings whose window event was received before ``before``."""
        return self._db.execute(
            "DELETE FROM recordings WHERE trip_event_id IN (SELECT r.trip_event_id FROM "
            "recordings r JOIN events e ON e.id = r.window_event_id WHERE e.received_at < ? "
            "LIMIT ?)",
            (before, limit),
        ).rowcount

    def cut_windows(self, before: float, after: str, limit: int) -> tuple[int, str | None]:
        """Cut the IMU window out of older monitors' event payloads received before
        ``before``, among the next ``limit`` events with a window whose id is above ``after``
        (in id order: an event keeps its mark until :meth:`unmark_windows`, so the next chunk
        starts past this one); how many were cut, and the id to go on from (None: done). Done
        here rather than in SQL, whose JSON functions differ between the engines; a payload
        that is not a JSON object is left as it is."""
        rows = self._db.execute(
            "SELECT id, payload FROM events WHERE has_window <> 0 AND received_at < ? "
            "AND id > ? ORDER BY id LIMIT ?",
            (before, after, limit),
        ).fetchall()
        cut = 0
        for event_id, payload in rows:
            try:
                body = json.loads(payload)
            except ValueError:
                continue
            if isinstance(body, dict) and body.pop("imu_window", None) is not None:
                self._db.execute(
                    "UPDATE events SET payload = ? WHERE id = ?",
                    (json.dumps(body, separators=(",", ":")), event_id),
                )
                cut += 1
        return cut, str(rows[-1][0]) if len(rows) == limit else None

    def unmark_windows(self, before: float, limit: int) -> int:
        """Events received before ``before`` whose window is gone (no recording left, its
        payload's cut) stop saying they have one: their pages no longer offer a plot."""
        return self._db.execute(
            "UPDATE events SET has_window = 0 WHERE id IN (SELECT id FROM events "
            "WHERE has_window <> 0 AND received_at < ? "
            "AND id NOT IN (SELECT trip_event_id FROM recordings) LIMIT ?)",
            (before, limit),
        ).rowcount

    def prune_notifications(self, before: float, limit: int) -> int:
        """Notifications sent or given up on, created before ``before`` (pending ones stay)."""
        return self._db.execute(
            "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications "
            "WHERE status IN ('sent', 'failed') AND created_at < ? LIMIT ?)",
            (before, limit),
        ).rowcount

    def prune_routine(self, before: float, limit: int) -> int:
        """Routine events (info, no incident) received before ``before``, but a device's
        latest event, which its card tells."""
        return self._db.execute(
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE severity = 'info' "
            "AND incident IS NULL AND received_at < ? AND id NOT IN (SELECT last_event_id "
            "FROM devices WHERE last_event_id IS NOT NULL) LIMIT ?)",
            (before, limit),
        ).rowcount

    def prune_logins(self, now: float) -> int:
        """Login sessions expired by ``now`` (a few a day: one statement)."""
        return self._db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,)).rowcount
