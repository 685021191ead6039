"""A transaction's operations on alerts: logging, holding, paging, their timers.

One of the parts :class:`caregiver.storage.store.Transaction` is made of (one per area of
the schema); it holds no state of its own.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from caregiver.storage.engines import Cursor
from caregiver.storage.records import Alert, ClockFrame, Urgency
from caregiver.storage.rows import _alert, _paged_order
from caregiver.storage.sql import (
    _ALERT_COLUMNS,
    _HELD_ALERT_COLUMNS,
    _INTO_FRAME,
    _LOGGED_ALERT_COLUMNS,
    _OPEN,
    _PAGING_ALERT_COLUMNS,
    _into_frame,
    _marks,
)
from caregiver.storage.tx_base import _TxBase
from core.clock import CLOCK_STEP_S


class TxAlerts(_TxBase):
    """A transaction's operations on alerts: logging, holding, paging, their timers."""

    # ------------------------------------------------------------- alerts

    def log_alert(
        self,
        kind: str,
        device_id: str,
        event_id: str | None,
        now: float,
        incident: str | None = None,
    ) -> None:
        """An alert the policy only records: closed as it opens."""
        row = (kind, device_id, event_id, "logged", now, "policy: log", now, incident)
        if self._prepared is not None:  # a batch's: with its others, in one statement
            self._db.defer("alerts", _LOGGED_ALERT_COLUMNS, row)
            return
        self._db.execute(
            "INSERT INTO alerts (kind, device_id, event_id, status, created_at, closed_by, "
            "closed_at, incident) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    def hold_alert(
        self,
        kind: str,
        device_id: str,
        event_id: str | None,
        now: float,
        until: float,
        incident: str | None = None,
        *,
        frame: ClockFrame,
    ) -> None:
        """An alert that pages at ``until`` unless the walker resets first; ``now`` and
        ``until`` are wall times in ``frame``."""
        row = (kind, device_id, event_id, "held", now, until, incident, frame.of, frame.offset)
        if self._prepared is not None:  # a batch's: with its others, in one statement
            self._db.defer("alerts", _HELD_ALERT_COLUMNS, row)
            return
        self._db.execute(
            "INSERT INTO alerts (kind, device_id, event_id, status, created_at, next_at, "
            "incident, frame_of, frame_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    def page_alert(
        self,
        kind: str,
        device_id: str,
        event_id: str | None,
        now: float,
        next_at: float,
        incident: str | None = None,
        *,
        frame: ClockFrame,
    ) -> int:
        """An alert paging its first contact now (one send); returns its id (in a batch, one
        it reserved: nothing to wait for, and inserted with the batch's others in one
        statement). ``now`` and ``next_at`` are wall times in ``frame``."""
        reserved = self._prepared.alert_ids if self._prepared is not None else None
        if reserved:
            alert_id = reserved.popleft()
            row = (alert_id, kind, device_id, event_id, "paging", now, next_at, 1, incident)
            self._db.defer("alerts", _PAGING_ALERT_COLUMNS, (*row, frame.of, frame.offset))
            return alert_id
        (alert_id,) = self._db.execute(
            "INSERT INTO alerts (kind, device_id, event_id, status, created_at, next_at, sends, "
            "incident, frame_of, frame_offset) VALUES (?, ?, ?, 'paging', ?, ?, 1, ?, ?, ?) "
            "RETURNING id",
            (kind, device_id, event_id, now, next_at, incident, frame.of, frame.offset),
        ).fetchone()
        return int(alert_id)

    def open_alert_of(self, incident: str) -> Alert | None:
        row = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE incident = ? AND status IN {_OPEN} "
            "ORDER BY id DESC LIMIT 1",
            (incident,),
        ).fetchone()
        return _alert(row) if row else None

    def worsen_alert(self, alert_id: int, kind: str, event_id: str) -> None:
        """The incident behind an open alert got worse: the alert now speaks of that event."""
        self._db.execute(
            "UPDATE alerts SET kind = ?, event_id = ? WHERE id = ?", (kind, event_id, alert_id)
        )

    # ------------------------------------------------- alerts' timers and pages

    def open_alerts(self, device_id: str, kinds: Sequence[str]) -> list[Alert]:
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE device_id = ? AND status IN {_OPEN} "
            f"AND kind IN ({_marks(kinds)})",
            (device_id, *kinds),
        ).fetchall()
        return [_alert(r) for r in rows]

    def paging_alerts(
        self, devices: Collection[str] | None, limit: int, held: bool = False
    ) -> list[Alert]:
        """Alerts paging now (of ``devices`` only, unless None), newest first, at most
        ``limit``: what the dashboard's "Still open" lists beside the open critical incidents
        (a monitor gone offline while armed, a stumble not reset in time, a fault). ``held``:
        with the alerts not yet paging, held for the walker's reset (a stumble within its
        grace: it was listed nowhere a caregiver looks)."""
        if devices is not None and not devices:
            return []
        # the open ones' condition (alerts_open_now's) in both: read through that index
        where = f"status IN {_OPEN}" + ("" if held else " AND status = 'paging'")
        args: list[object] = []
        if devices is not None:
            where += f" AND device_id IN ({_marks(list(devices))})"
            args += list(devices)
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE {where} "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_alert(r) for r in rows]

    def open_alerts_due(self, now: float) -> list[Alert]:
        """Open alerts whose next look is due (held past their grace, paging past a timeout).

        Where rows are locked (PostgreSQL), their devices' rows are taken first, in id order
        (:meth:`hold_devices`), and the alerts read again: the escalation that writes them
        queues behind a batch of those devices' messages instead of forming a lock cycle
        with it, and sees what that batch did (an alert it closed is no longer due)."""
        due = self._alerts_due(now)
        if not due or not self._db.row_locks:
            return due
        devices = {alert.device_id for alert in due}
        self.hold_devices(devices)
        return [alert for alert in self._alerts_due(now) if alert.device_id in devices]

    def _alerts_due(self, now: float) -> list[Alert]:
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE status IN {_OPEN} AND next_at <= ? "
            "ORDER BY id",
            (now,),
        ).fetchall()
        return [_alert(r) for r in rows]

    def shift_timers(self, frame: ClockFrame, step: float) -> None:
        """Bring every open alert's timers into ``frame``, the wall clock now as the escalation
        ticker measured it (:meth:`caregiver.alerts.Alerting.tick`), so each still comes after
        the time it was set for; an open alert's opening moves too, so that its reminders say
        how long it has been open ("after 5 min", not "after -55 min").

        A timer written by this instance (``frame.of``) moves by the difference of its frame's
        offset and ``frame``'s: the steps since it was written, however many, and none before.
        Before schema 25 every timer moved by the ticker's measured ``step``, and one ingest
        wrote between the step and the ticker's look, already in the new clock, moved too:
        stepped forward an hour, a stumble's grace or a fall's reminder came an hour late;
        back, at once. A timer whose clock this instance cannot measure (another instance's
        on PostgreSQL, one from before a restart or before schema 25) moves by ``step`` as
        before, and is in ``frame`` from then on; that is exact when it was written before
        the step (on PostgreSQL the instances' clocks must agree: docs/provider.md).

        Run at every tick: the first statement writes nothing unless a step came since a row
        was written (rare), so it takes no device rows first: on PostgreSQL a deadlock with a
        batch fails the tick, which shifts at the next one. The notifications' retries are
        the notifier's to move (:meth:`Store.shift_notifications`)."""
        self._db.execute(
            f"UPDATE alerts SET next_at = next_at + (? - frame_offset), "
            f"created_at = created_at + (? - frame_offset), frame_offset = ? "
            f"WHERE status IN {_OPEN} AND next_at IS NOT NULL AND frame_of = ? "
            f"AND abs(? - frame_offset) >= ?",
            (frame.offset, frame.offset, frame.offset, frame.of, frame.offset, CLOCK_STEP_S),
        )
        if step:
            self._db.execute(
                f"UPDATE alerts SET next_at = next_at + ?, created_at = created_at + ?, "
                f"frame_of = ?, frame_offset = ? WHERE status IN {_OPEN} "
                f"AND next_at IS NOT NULL AND (frame_of IS NULL OR frame_of <> ?)",
                (step, step, frame.of, frame.offset, frame.of),
            )

    def bound_timers(self, now: float, grace_s: float, timeout_s: float, frame: ClockFrame) -> int:
        """Bring every open alert's timer that lies further ahead than its whole interval (a
        held stumble's ``grace_s``, a paging alert's ``timeout_s``) back to that interval from
        ``now``, its opening by as much, into ``frame`` (the escalation ticker's clock); how
        many. No timer is ever written further ahead (:class:`caregiver.alerts.Alerting`), so
        such a one was written in a wall clock ahead of this one, or moved by a step of this
        clock after it was already in the new one, and would come late by as much: on
        PostgreSQL only the escalation lease's holder measures steps, of its own clock, so a
        timer another machine's ingest wrote while its clock ran ahead of the holder's (not
        yet synchronised: an hour ahead, a fall's reminder and escalation came an hour late),
        or in the minutes between a step there and the same step on the holder's machine (then
        moved by the holder's step again), is brought to come within one interval of the
        holder's look. Run at every tick, after :meth:`shift_timers`; it writes nothing unless
        such a timer is there. A timer written in a clock behind is not told from one due and
        comes early (docs/caregiver.md, *Timers and the clock*)."""
        limit = "(CASE status WHEN 'held' THEN ? ELSE ? END)"
        cursor = self._db.execute(
            f"UPDATE alerts SET created_at = created_at + (? + {limit} - next_at), "
            f"next_at = ? + {limit}, frame_of = ?, frame_offset = ? "
            # one range of the alerts_open index a status: nothing is read between steps
            "WHERE (status = 'held' AND next_at > ?) OR (status = 'paging' AND next_at > ?)",
            (
                *(now, grace_s, timeout_s),
                *(now, grace_s, timeout_s),
                frame.of,
                frame.offset,
                # past a step's size: not one ingest wrote in the moment since the tick's look
                now + CLOCK_STEP_S + grace_s,
                now + CLOCK_STEP_S + timeout_s,
            ),
        )
        return max(0, cursor.rowcount)

    def start_paging(self, alert_id: int, next_at: float, frame: ClockFrame) -> None:
        """A held alert's grace ran out: it pages its first contact (one send); ``next_at`` is
        a wall time in ``frame``."""
        self._db.execute(
            f"UPDATE alerts SET status = 'paging', sends = 1, contact = 0, next_at = ?, "
            f"{_INTO_FRAME} WHERE id = ?",
            (next_at, *_into_frame(frame), alert_id),
        )

    def reschedule_alert(
        self, alert_id: int, contact: int, sends: int, next_at: float, frame: ClockFrame
    ) -> None:
        """``next_at``: a wall time in ``frame``."""
        self._db.execute(
            f"UPDATE alerts SET contact = ?, sends = ?, next_at = ?, {_INTO_FRAME} WHERE id = ?",
            (contact, sends, next_at, *_into_frame(frame), alert_id),
        )

    def close_alert(self, alert_id: int, status: str, by: str, now: float) -> None:
        """Close the alert, and drop its pages and reminders not yet delivered (a retry after
        a failure, a reminder queued as the answer came): sent after the answer, they told a
        caregiver "FALL" or "not acknowledged" of an alert already answered — after its
        follow-up, which whoever was paged gets instead. Follow-ups are the only messages
        queued at the normal urgency (:mod:`caregiver.priority`)."""
        self._db.execute(
            "UPDATE alerts SET status = ?, closed_by = ?, closed_at = ?, next_at = NULL "
            "WHERE id = ?",
            (status, by, now, alert_id),
        )
        self._db.execute(
            "UPDATE notifications SET status = 'failed', last_error = ? "
            "WHERE alert_id = ? AND status = 'pending' AND urgency <> ?",
            (f"not sent: the alert was closed first ({status})", alert_id, Urgency.NORMAL.value),
        )

    def mark_paged(self, alert_id: int, contacts: Sequence[str], reached: str | None) -> None:
        """Remember these contacts (:func:`caregiver.outbox.contact_id`) were paged for the
        alert (they get its follow-ups), and that it has reached ``reached`` (None: the
        contact it had reached, unchanged)."""
        if not contacts:
            return  # nobody new (no contacts configured): two round trips saved
        row = self._db.execute("SELECT paged FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        paged = sorted(set(json.loads(row[0])) | set(contacts), key=_paged_order)
        self._db.execute(
            "UPDATE alerts SET paged = ?, reached = COALESCE(?, reached) WHERE id = ?",
            (json.dumps(paged), reached, alert_id),
        )

    def alerts(self, device_id: str | None) -> list[Alert]:
        rows: Cursor
        if device_id is None:
            rows = self._db.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts ORDER BY id")
        else:
            rows = self._db.execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE device_id = ? ORDER BY id",
                (device_id,),
            )
        return [_alert(r) for r in rows.fetchall()]
