"""Alerts: the per-kind policy, escalation and the follow-ups, on an injectable clock.

An alert is opened for a stumble, fall, no-recovery or fault event, and for a
device that goes offline while its last state was ARMED. What happens next is
the policy of its kind (``[policy]``):

* ``page``: the first contact is notified at once;
* ``page_unless_reset``: the alert is *held* for ``reset_grace_s``; a reset
  from the device in that time (the walker pressed the button: "I'm OK") closes
  it as *logged* without paging anyone; otherwise it pages;
* ``log``: recorded and shown on the dashboard, never paged.

A paging alert not acknowledged within ``ack_timeout_s`` is sent again to the
same contact (``resends`` times), then to the next contact in the list; past the
last contact everyone is reminded every ``ack_timeout_s``. It stops when a
caregiver acknowledges it on the dashboard, when the walker resets the device
(the contacts already paged get an "I'm OK" follow-up) or, for an offline
alert, when the device is back online.

Nothing here does network I/O: a message to send is a row in ``notifications``
written in the caller's transaction, and the :class:`~caregiver.notify.Notifier`
delivers it on its own thread. So a slow or failing notification service never
holds up ingestion. All times come from ``clock`` (seconds), so the tests drive
escalation by moving a fake clock and calling :meth:`Alerting.tick`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from caregiver.config import CaregiverConfig
from caregiver.store import Store

log = logging.getLogger(__name__)

Clock = Callable[[], float]

ALERT_TYPES = ("stumble", "fall", "no_recovery", "fault")
OPEN = ("held", "paging")

_WHAT = {
    "stumble": "Stumble",
    "fall": "FALL",
    "no_recovery": "NO RECOVERY after a fall",
    "fault": "Monitor fault",
    "offline": "Monitor went OFFLINE while armed",
}


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: str
    device_id: str
    event_id: str | None
    status: str
    created_at: float
    next_at: float | None
    contact: int
    sends: int
    paged: list[int]
    closed_by: str | None


_ALERT_COLUMNS = (
    "id, kind, device_id, event_id, status, created_at, next_at, contact, sends, paged, closed_by"
)


def _alert(row: tuple[Any, ...]) -> Alert:
    return Alert(
        id=row[0],
        kind=row[1],
        device_id=row[2],
        event_id=row[3],
        status=row[4],
        created_at=row[5],
        next_at=row[6],
        contact=row[7],
        sends=row[8],
        paged=json.loads(row[9]),
        closed_by=row[10],
    )


class Alerting:
    def __init__(
        self,
        store: Store,
        config: CaregiverConfig,
        clock: Clock = time.time,
        wake_notifier: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.wake_notifier = wake_notifier
        if not config.contacts:
            log.warning("no [[contacts]] configured: alerts are shown on the dashboard only")

    # ----------------------------------------------------------- naming

    def device_name(self, device_id: str) -> str:
        return self.config.devices.get(device_id, device_id)

    def _event_text(self, event: dict[str, Any], kind: str) -> tuple[str, str]:
        device = event["device_id"]
        name = self.device_name(device)
        when = str(event.get("wall_time", ""))[:19].replace("T", " ")
        what = _WHAT.get(kind, kind)
        title = f"RetroGuard: {what} - {name}"
        label = name if name == device else f"{name} ({device})"
        if kind == "offline":
            body = (
                f"{what}: {label} stopped reporting at {when} UTC while armed. "
                f"Check on the walker. Dashboard: {self.config.base_url}/devices/{device}"
            )
        else:
            body = (
                f"{what} on {label} at {when} UTC: {event.get('reason', '')}. "
                f"Treadmill state: {event.get('state', '?')}. "
                f"Open and acknowledge: {self.config.base_url}/events/{event['id']}"
            )
        return title, body

    # ------------------------------------------------------------ opening

    def on_event(self, db: sqlite3.Connection, event: dict[str, Any]) -> None:
        """A newly stored event (inside the ingest transaction)."""
        kind = event["type"]
        now = self.clock()
        if kind == "reset":
            self._walker_reset(db, event, now)
            return
        if kind not in ALERT_TYPES:
            return
        action = getattr(self.config.policy, kind)
        self._open(db, kind, event["device_id"], event["id"], action, now, event)

    def on_offline(self, db: sqlite3.Connection, device_id: str, wall_time: str) -> None:
        """The device went offline while its last state was ARMED."""
        now = self.clock()
        open_ = db.execute(
            "SELECT 1 FROM alerts WHERE device_id = ? AND kind = 'offline' AND status IN (?, ?)",
            (device_id, *OPEN),
        ).fetchone()
        if open_:
            return
        fake_event = {"id": "", "device_id": device_id, "wall_time": wall_time}
        self._open(
            db, "offline", device_id, None, self.config.policy.offline_while_armed, now, fake_event
        )

    def on_online(self, db: sqlite3.Connection, device_id: str) -> None:
        """Back online: offline alerts close, and whoever was paged hears so."""
        name = self.device_name(device_id)
        for alert in self._open_alerts(db, device_id, kinds=("offline",)):
            self._close(db, alert, "resolved", "device back online")
            self._follow_up(
                db,
                alert,
                f"RetroGuard: {name} back online",
                f"{name} is reporting again; the offline alert is closed.",
            )

    def _open(
        self,
        db: sqlite3.Connection,
        kind: str,
        device_id: str,
        event_id: str | None,
        action: str,
        now: float,
        event: dict[str, Any],
    ) -> None:
        if action == "log":
            db.execute(
                "INSERT INTO alerts (kind, device_id, event_id, status, created_at, closed_by, "
                "closed_at) VALUES (?, ?, ?, 'logged', ?, 'policy: log', ?)",
                (kind, device_id, event_id, now, now),
            )
            return
        if action == "page_unless_reset":
            db.execute(
                "INSERT INTO alerts (kind, device_id, event_id, status, created_at, next_at) "
                "VALUES (?, ?, ?, 'held', ?, ?)",
                (kind, device_id, event_id, now, now + self.config.policy.reset_grace_s),
            )
            return
        cur = db.execute(
            "INSERT INTO alerts (kind, device_id, event_id, status, created_at, next_at, sends) "
            "VALUES (?, ?, ?, 'paging', ?, ?, 1)",
            (kind, device_id, event_id, now, now + self.config.escalation.ack_timeout_s),
        )
        assert cur.lastrowid is not None
        title, body = self._event_text(event, kind)
        self._page(db, cur.lastrowid, [0], title, body, now)

    # ----------------------------------------------------------- closing

    def _open_alerts(
        self, db: sqlite3.Connection, device_id: str, kinds: tuple[str, ...] = ALERT_TYPES
    ) -> list[Alert]:
        marks = ",".join("?" * len(kinds))
        rows = db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE device_id = ? AND status IN (?, ?) "
            f"AND kind IN ({marks})",
            (device_id, *OPEN, *kinds),
        ).fetchall()
        return [_alert(r) for r in rows]

    def _close(self, db: sqlite3.Connection, alert: Alert, status: str, by: str) -> None:
        db.execute(
            "UPDATE alerts SET status = ?, closed_by = ?, closed_at = ?, next_at = NULL "
            "WHERE id = ?",
            (status, by, self.clock(), alert.id),
        )

    def _follow_up(self, db: sqlite3.Connection, alert: Alert, title: str, body: str) -> None:
        if alert.paged:
            self._page(db, alert.id, alert.paged, title, body, self.clock(), record=False)

    def _walker_reset(self, db: sqlite3.Connection, event: dict[str, Any], now: float) -> None:
        """The walker pressed reset after a trip: "I'm OK". Held alerts become logged (never
        paged); paging alerts stop escalating and the contacts already paged are told."""
        device = event["device_id"]
        name = self.device_name(device)
        when = str(event.get("wall_time", ""))[:19].replace("T", " ")
        for alert in self._open_alerts(db, device):
            if alert.status == "held":
                self._close(db, alert, "logged", "walker reset (I'm OK) within the grace time")
                continue
            self._close(db, alert, "resolved", "walker reset (I'm OK)")
            self._follow_up(
                db,
                alert,
                f"RetroGuard: I'm OK - {name}",
                f"I'm OK: the walker on {name} pressed reset at {when} UTC after the "
                f"{_WHAT.get(alert.kind, alert.kind).lower()}. No further reminders. "
                f"Details: {self.config.base_url}/devices/{device}",
            )

    def acknowledge(
        self, db: sqlite3.Connection, device_id: str, event_id: str | None, by: str
    ) -> int:
        """A caregiver acknowledged one event (or, with ``event_id`` None, every open alert of the
        device). Returns how many alerts closed; the other contacts paged are told who answered."""
        closed = 0
        name = self.device_name(device_id)
        for alert in self._open_alerts(db, device_id, kinds=(*ALERT_TYPES, "offline")):
            if event_id is not None and alert.event_id != event_id:
                continue
            self._close(db, alert, "acknowledged", by)
            closed += 1
            self._follow_up(
                db,
                alert,
                f"RetroGuard: acknowledged - {name}",
                f"{by} acknowledged the {_WHAT.get(alert.kind, alert.kind).lower()} alert "
                f"on {name}. No further reminders.",
            )
        return closed

    # --------------------------------------------------------- escalation

    def tick(self) -> int:
        """Act on every alert that is due (held past its grace, or paging past its timeout).
        Returns how many alerts were acted on. The service calls this every second."""
        now = self.clock()
        acted = 0
        with self.store.transaction() as db:
            rows = db.execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE status IN (?, ?) AND next_at <= ? "
                "ORDER BY id",
                (*OPEN, now),
            ).fetchall()
            for alert in (_alert(r) for r in rows):
                self._escalate(db, alert, now)
                acted += 1
        if acted:
            self.wake_notifier()
        return acted

    def _escalate(self, db: sqlite3.Connection, alert: Alert, now: float) -> None:
        event = self._event_for(db, alert)
        title, body = self._event_text(event, alert.kind)
        timeout = self.config.escalation.ack_timeout_s
        if alert.status == "held":  # the grace ran out without a reset: page
            db.execute(
                "UPDATE alerts SET status = 'paging', sends = 1, contact = 0, next_at = ? "
                "WHERE id = ?",
                (now + timeout, alert.id),
            )
            self._page(db, alert.id, [0], title, body, now)
            return
        contacts = len(self.config.contacts)
        contact, sends = alert.contact, alert.sends
        minutes = (now - alert.created_at) / 60.0
        if sends <= self.config.escalation.resends or contacts == 0:
            sends += 1
            targets = [contact]
            prefix = f"REMINDER, not acknowledged after {minutes:.0f} min: "
        elif contact + 1 < contacts:
            contact, sends = contact + 1, 1
            targets = [contact]
            prefix = f"ESCALATED, nobody acknowledged within {minutes:.0f} min: "
        else:
            sends += 1
            targets = list(range(contacts))
            prefix = f"STILL NOT ACKNOWLEDGED after {minutes:.0f} min: "
        db.execute(
            "UPDATE alerts SET contact = ?, sends = ?, next_at = ? WHERE id = ?",
            (contact, sends, now + timeout, alert.id),
        )
        self._page(db, alert.id, targets, title, prefix + body, now)

    def _event_for(self, db: sqlite3.Connection, alert: Alert) -> dict[str, Any]:
        if alert.event_id:
            row = db.execute(
                "SELECT id, device_id, wall_time, reason, state FROM events WHERE id = ?",
                (alert.event_id,),
            ).fetchone()
            if row:
                return dict(
                    zip(("id", "device_id", "wall_time", "reason", "state"), row, strict=True)
                )
        return {"id": alert.event_id or "", "device_id": alert.device_id, "wall_time": ""}

    # ------------------------------------------------------------ sending

    def _page(
        self,
        db: sqlite3.Connection,
        alert_id: int,
        contact_indexes: list[int],
        title: str,
        body: str,
        now: float,
        record: bool = True,
    ) -> None:
        """Queue the message for every URL of those contacts (delivered by the notifier)."""
        contacts = self.config.contacts
        for index in contact_indexes:
            if index >= len(contacts):
                continue
            contact = contacts[index]
            for url_index in range(len(contact.urls)):
                db.execute(
                    "INSERT INTO notifications (alert_id, contact, contact_index, url_index, "
                    "title, body, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        alert_id,
                        contact.name or f"contact {index + 1}",
                        index,
                        url_index,
                        title,
                        body,
                        now,
                        now,
                    ),
                )
        if record:
            row = db.execute("SELECT paged FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            paged = sorted(
                set(json.loads(row[0])) | {i for i in contact_indexes if i < len(contacts)}
            )
            db.execute("UPDATE alerts SET paged = ? WHERE id = ?", (json.dumps(paged), alert_id))

    # ------------------------------------------------------------ reading

    def alerts(self, device_id: str | None = None) -> list[Alert]:
        if device_id is None:
            rows = self.store.query(f"SELECT {_ALERT_COLUMNS} FROM alerts ORDER BY id")
        else:
            rows = self.store.query(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE device_id = ? ORDER BY id", (device_id,)
            )
        return [_alert(r) for r in rows]
