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

import logging
import time
from collections.abc import Callable
from typing import NamedTuple

from caregiver.config import CaregiverConfig
from caregiver.storage import OPEN_STATUSES, Alert, Store, Transaction
from core.protocol.events import INCIDENT_TYPES, EventType
from core.protocol.messages import EventMessage

log = logging.getLogger(__name__)

Clock = Callable[[], float]

ALERT_TYPES = tuple(sorted(t.value for t in INCIDENT_TYPES))
"""Event types that open an alert: the protocol's incident types (alerts, help, faults)."""
OPEN = OPEN_STATUSES

_WHAT = {
    "stumble": "Stumble",
    "fall": "FALL",
    "no_recovery": "NO RECOVERY after a fall",
    "fault": "Monitor fault",
    "offline": "Monitor went OFFLINE while armed",
}

__all__ = ["ALERT_TYPES", "OPEN", "Alert", "Alerting"]


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

    def _event_text(self, device: str, kind: str, told: _Told) -> tuple[str, str]:
        name = self.device_name(device)
        what = _WHAT.get(kind, kind)
        label = name if name == device else f"{name} ({device})"
        body = (
            f"{what} on {label} at {_when(told.wall_time)} UTC: {told.reason}. "
            f"Treadmill state: {told.state}. "
            f"Open and acknowledge: {self.config.base_url}/events/{told.event_id}"
        )
        return f"RetroGuard: {what} - {name}", body

    def _offline_text(self, device: str, wall_time: str) -> tuple[str, str]:
        name = self.device_name(device)
        what = _WHAT["offline"]
        label = name if name == device else f"{name} ({device})"
        body = (
            f"{what}: {label} stopped reporting at {_when(wall_time)} UTC while armed. "
            f"Check on the walker. Dashboard: {self.config.base_url}/devices/{device}"
        )
        return f"RetroGuard: {what} - {name}", body

    # ------------------------------------------------------------ opening

    def on_event(self, tx: Transaction, device_id: str, event: EventMessage) -> None:
        """A newly stored event of ``device_id`` (inside the ingest transaction)."""
        kind = event.type.value
        now = self.clock()
        if event.type is EventType.RESET:
            self._walker_reset(tx, device_id, event.wall_time, now)
            return
        if kind not in ALERT_TYPES:
            return
        action = getattr(self.config.policy, kind)
        told = _Told(event.id, event.wall_time, event.reason, event.state.value)
        self._open(
            tx,
            kind,
            device_id,
            event.id,
            action,
            now,
            lambda: self._event_text(device_id, kind, told),
        )

    def on_offline(self, tx: Transaction, device_id: str, wall_time: str) -> None:
        """The device went offline while its last state was ARMED."""
        now = self.clock()
        if tx.open_alerts(device_id, ("offline",)):
            return
        self._open(
            tx,
            "offline",
            device_id,
            None,
            self.config.policy.offline_while_armed,
            now,
            lambda: self._offline_text(device_id, wall_time),
        )

    def on_online(self, tx: Transaction, device_id: str) -> None:
        """Back online: offline alerts close, and whoever was paged hears so."""
        name = self.device_name(device_id)
        for alert in tx.open_alerts(device_id, ("offline",)):
            self._close(tx, alert, "resolved", "device back online")
            self._follow_up(
                tx,
                alert,
                f"RetroGuard: {name} back online",
                f"{name} is reporting again; the offline alert is closed.",
            )

    def _open(
        self,
        tx: Transaction,
        kind: str,
        device_id: str,
        event_id: str | None,
        action: str,
        now: float,
        text: Callable[[], tuple[str, str]],
    ) -> None:
        if action == "log":
            tx.log_alert(kind, device_id, event_id, now)
            return
        if action == "page_unless_reset":
            tx.hold_alert(kind, device_id, event_id, now, now + self.config.policy.reset_grace_s)
            return
        alert_id = tx.page_alert(
            kind, device_id, event_id, now, now + self.config.escalation.ack_timeout_s
        )
        title, body = text()
        self._page(tx, alert_id, [0], title, body, now)

    # ----------------------------------------------------------- closing

    def _close(self, tx: Transaction, alert: Alert, status: str, by: str) -> None:
        tx.close_alert(alert.id, status, by, self.clock())

    def _follow_up(self, tx: Transaction, alert: Alert, title: str, body: str) -> None:
        if alert.paged:
            self._page(tx, alert.id, alert.paged, title, body, self.clock(), record=False)

    def _walker_reset(self, tx: Transaction, device: str, wall_time: str, now: float) -> None:
        """The walker pressed reset after a trip: "I'm OK". Held alerts become logged (never
        paged); paging alerts stop escalating and the contacts already paged are told."""
        name = self.device_name(device)
        when = _when(wall_time)
        for alert in tx.open_alerts(device, ALERT_TYPES):
            if alert.status == "held":
                self._close(tx, alert, "logged", "walker reset (I'm OK) within the grace time")
                continue
            self._close(tx, alert, "resolved", "walker reset (I'm OK)")
            self._follow_up(
                tx,
                alert,
                f"RetroGuard: I'm OK - {name}",
                f"I'm OK: the walker on {name} pressed reset at {when} UTC after the "
                f"{_WHAT.get(alert.kind, alert.kind).lower()}. No further reminders. "
                f"Details: {self.config.base_url}/devices/{device}",
            )

    def acknowledge(self, tx: Transaction, device_id: str, event_id: str | None, by: str) -> int:
        """A caregiver acknowledged one event (or, with ``event_id`` None, every open alert of the
        device). Returns how many alerts closed; the other contacts paged are told who answered."""
        closed = 0
        name = self.device_name(device_id)
        for alert in tx.open_alerts(device_id, (*ALERT_TYPES, "offline")):
            if event_id is not None and alert.event_id != event_id:
                continue
            self._close(tx, alert, "acknowledged", by)
            closed += 1
            self._follow_up(
                tx,
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
        with self.store.transaction() as tx:
            for alert in tx.open_alerts_due(now):
                self._escalate(tx, alert, now)
                acted += 1
        if acted:
            self.wake_notifier()
        return acted

    def _escalate(self, tx: Transaction, alert: Alert, now: float) -> None:
        if alert.kind == "offline":
            title, body = self._offline_text(alert.device_id, "")
        else:
            title, body = self._event_text(alert.device_id, alert.kind, self._told(tx, alert))
        timeout = self.config.escalation.ack_timeout_s
        if alert.status == "held":  # the grace ran out without a reset: page
            tx.start_paging(alert.id, now + timeout)
            self._page(tx, alert.id, [0], title, body, now)
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
        tx.reschedule_alert(alert.id, contact, sends, now + timeout)
        self._page(tx, alert.id, targets, title, prefix + body, now)

    def _told(self, tx: Transaction, alert: Alert) -> _Told:
        if alert.event_id:
            event = tx.event(alert.event_id)
            if event is not None:
                return _Told(event.id, event.wall_time, event.reason, event.state)
        return _Told(alert.event_id or "", "", "", "?")

    # ------------------------------------------------------------ sending

    def _page(
        self,
        tx: Transaction,
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
                name = contact.name or f"contact {index + 1}"
                tx.queue_notification(alert_id, name, index, url_index, title, body, now)
        if record:
            tx.mark_paged(alert_id, [i for i in contact_indexes if i < len(contacts)])

    # ------------------------------------------------------------ reading

    def alerts(self, device_id: str | None = None) -> list[Alert]:
        return self.store.alerts(device_id)


def _when(wall_time: str) -> str:
    """ "2026-12-01T21:00:00.123+00:00" -> "2026-12-01 21:00:00" (display only)."""
    return wall_time[:19].replace("T", " ")


class _Told(NamedTuple):
    """What a page says about the event behind an alert."""

    event_id: str
    wall_time: str
    reason: str
    state: str
