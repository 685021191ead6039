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
            return "nothing old enough to remove"
        return f"removed {', '.join(parts)}; {self.pages_freed} database pages freed"


class TxRetention(_TxBase):
    """A transaction's retention sweep: what is old enough is removed."""

    def prune(
        self,
        *,
        recordings_before: float | None,
        notifications_before: float | None,
        routine_before: float | None,
        now: float,
    ) -> tuple[int, int, int, int, int]:
        """Delete recordings, delivered notifications and routine events older than the given
        times (None keeps them) and expired logins; the counts, in that order."""
        db = self._db
        recordings = windows = notifications = routine = 0
        if recordings_before is not None:
            recordings = db.execute(
                "DELETE FROM recordings WHERE trip_event_id IN (SELECT r.trip_event_id FROM "
                "recordings r JOIN events e ON e.id = r.window_event_id WHERE e.received_at < ?)",
                (recordings_before,),
            ).rowcount
            windows = self._cut_windows(recordings_before)
            db.execute(
                "UPDATE events SET has_window = 0 WHERE has_window <> 0 AND received_at < ? "
                "AND id NOT IN (SELECT trip_event_id FROM recordings)",
                (recordings_before,),
            )
        if notifications_before is not None:
            notifications = db.execute(
                "DELETE FROM notifications WHERE status IN ('sent', 'failed') AND created_at < ?",
                (notifications_before,),
            ).rowcount
        if routine_before is not None:
            routine = db.execute(
                "DELETE FROM events WHERE severity = 'info' AND incident IS NULL "
                "AND received_at < ? AND id NOT IN (SELECT last_event_id FROM devices "
                "WHERE last_event_id IS NOT NULL)",
                (routine_before,),
            ).rowcount
        logins = db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,)).rowcount
        return recordings, windows, notifications, routine, logins

    def _cut_windows(self, before: float) -> int:
        """Cut the IMU window out of older monitors' event payloads received before ``before``;
        how many were cut. Done here rather than in SQL, whose JSON functions differ between
        the engines; a payload that is not a JSON object is left as it is."""
        rows = self._db.execute(
            "SELECT id, payload FROM events WHERE has_window <> 0 AND received_at < ?", (before,)
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
        return cut
