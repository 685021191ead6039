"""Alerts: one per incident, the per-kind policy, escalation and the follow-ups.

Events arrive grouped in *incidents* (docs/incidents.md): every event of one
bad moment on the belt carries the incident's id. An incident has one alert at
a time, whose kind is the incident's worst event so far: a stumble that turns
into a fall is one alert that now pages as a fall, not two. One
acknowledgement closes the incident — from the dashboard, a notification's
link, Home Assistant's button (the device relays it as a ``closed`` event) or
the walker's own re-arming press (``ok``) — and stops its escalation. An event
worse than the incident was when it was closed reopens it. Devices from before
incidents send events without one: each of their alerts is its own incident.
Alerts also open for a device that goes offline while its last state was
ARMED. What happens when an alert opens is the policy of its kind
(``[policy]``):

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
import secrets
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from caregiver.config import CaregiverConfig
from caregiver.localtime import readable
from caregiver.outbox import contact_id, url_key
from caregiver.priority import urgency_of
from caregiver.seen import Acknowledged, Seen, StillOpen, newer_alerts, newest_first
from caregiver.storage import (
    OPEN_STATUSES,
    Alert,
    ClockFrame,
    Store,
    StoredEvent,
    Transaction,
    Urgency,
)
from caregiver.story import (
    CLOCK_NOT_SET,
    belt,
    closed_earlier,
    closed_how,
    device_link,
    event_words,
    stamped,
)
from caregiver.walkers import who_shown
from core.clock import WallSteps, since_boot
from core.protocol.events import INCIDENT_TYPES, EventType, reopens, worse
from core.protocol.messages import EventMessage
from core.protocol.walker import DEFAULT_WALKER_ID
from core.protocol.words import ALERT_SAID, OFFLINE, alarm_words, alert_said

log = logging.getLogger(__name__)

Clock = Callable[[], float]

ALERT_TYPES = tuple(sorted(t.value for t in INCIDENT_TYPES))
"""Event types that open an alert: the protocol's incident types (alerts, help, faults)."""
OPEN = OPEN_STATUSES

__all__ = ["ALERT_TYPES", "OPEN", "Alert", "Alerting"]


class Alerting:
    def __init__(
        self,
        store: Store,
        config: CaregiverConfig,
        clock: Clock = time.time,
        wake_notifier: Callable[[], None] = lambda: None,
        may_escalate: Callable[[], bool] = lambda: True,
        monotonic: Clock | None = None,
        started_paging: Callable[[str], None] = lambda device_id: None,
        instance: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.monotonic = monotonic if monotonic is not None else since_boot
        """What :meth:`tick` measures a step of ``clock`` against: by default the time since
        boot, suspended time included (:func:`since_boot`)."""
        self._steps = WallSteps(clock, self.monotonic)
        """``clock`` against ``monotonic`` at the last tick that held the lease."""
        self.instance = instance if instance is not None else secrets.token_hex(8)
        """Whose clock the frames this process writes timers in are measured against
        (:meth:`_now`): the service gives its machine's boot (one clock for every process and
        restart in it), else its instance among those sharing a database."""
        self.wake_notifier = wake_notifier
        self.may_escalate = may_escalate
        """False while another instance holds the escalation lease (:mod:`caregiver.lease`)."""
        self.started_paging = started_paging
        """After :meth:`tick`'s commit, each device one of whose held alerts (a stumble not
        reset within the grace) started paging: the dashboard's live feed says it at once, as
        it says every other card change (it said it only at the next change or page load)."""

    # ----------------------------------------------------------- naming

    def device_name(self, device_id: str) -> str:
        return self.config.devices.get(device_id, device_id)

    def _when(self, wall_time: str | float) -> str:
        """A device's UTC time (or the service's epoch seconds) as the caregivers read it: in
        ``[server] timezone`` (default the system's), with the zone's name ("Sun 1 Mar 2026,
        14:05:12 CET")."""
        return readable(wall_time, self.config.zone)

    def _event_text(self, device: str, kind: str, told: _Told) -> tuple[str, str]:
        name = self.device_name(device)
        # the dashboard's alarm's words (story.alarm); a stumble paging at once (policy
        # "page") was not "not reset": nobody waited for a reset
        what = alarm_words(kind, at_once=self._action(kind) == "page")
        label = name if name == device else f"{name} ({device})"
        # In the dashboard's words (caregiver/story.py): the impact and posture in plain
        # words and what the belt is doing, not the detector's figures and the state's name
        # ("impact 5.1 g (0.30 g s), lying 83 deg. Treadmill state: TRIPPED").
        # A fault's reason is said once, in the words; a state unknown (the event not found)
        # is left out rather than said as "no report".
        words = event_words(kind, told.reason, told.figures)
        why = "" if told.state == "FAULT" else told.reason
        belt_now = f"{belt(told.state, why, offline=False)}. " if told.state else ""
        # a shared treadmill's page says who fell, as the dashboard does (story.alarm)
        whose = f" — {told.who}," if told.who else ""
        if told.received_at is None:  # the event not found: its time as kept
            at = f"at {self._when(told.wall_time)}"
        elif told.unsynced:  # the device's clock was not set: when it reached us, said as such
            at = f"received {self._when(told.received_at)} ({CLOCK_NOT_SET})"
        else:  # when it happened, as the dashboard's steps say it; its receipt if far apart
            when = stamped(told.wall_time, told.received_at, False)
            at = f"at {self._when(when.at)}"
            if when.late:  # the time of day, as "14:52:40 CET", unless a day apart
                received = self._when(when.received_at)
                if when.received_format == "time":
                    received = received.split(", ")[-1]
                at += f" (received {received}: {when.late})"
        body = (
            f"{what}{whose} on {label} {at}: {words}. {belt_now}"
            f"Open and acknowledge: {self.config.base_url}/events/{told.event_id}"
        )
        return f"RetroGuard: {what} - {_subject(told.who, name)}", body

    def _offline_text(self, device: str, wall_time: str | float) -> tuple[str, str]:
        """The offline page's words; ``wall_time``: when the service heard the monitor go
        (ISO 8601, or the alert's ``created_at`` for its reminders, the same moment)."""
        name = self.device_name(device)
        what = ALERT_SAID[OFFLINE].alarm
        label = name if name == device else f"{name} ({device})"
        body = (
            f"{what}: {label} stopped reporting at {self._when(wall_time)} while armed. "
            f"Check on the walker. Dashboard: {self.config.base_url}{device_link(device)}"
        )
        return f"RetroGuard: {what} - {name}", body

    # ------------------------------------------------------------ opening

    def on_event(self, tx: Transaction, device_id: str, event: EventMessage) -> None:
        """A newly stored event of ``device_id`` (inside the ingest transaction)."""
        now, frame = self._now()
        match event.type:
            case EventType.OK:
                self._close_incident(
                    tx, device_id, event.incident, event.by or "walker", "walker", event.seq
                )
            case EventType.CLOSED:
                self._close_incident(
                    tx,
                    device_id,
                    event.incident,
                    event.by or "caregiver",
                    event.via or "device",
                    event.seq,
                )
            case EventType.RESET if event.incident is not None:
                # the walker re-armed: the incident is over (an ok before it already closed it)
                self._close_incident(tx, device_id, event.incident, "walker", "walker", event.seq)
            case EventType.RESET:
                self._walker_reset(tx, device_id, event.wall_time, now)  # a device from before
            case EventType.TEST:
                self._test(tx, device_id, event, now, frame)
            case kind if kind in INCIDENT_TYPES:
                self._incident_event(tx, device_id, event, now, frame)

    def _now(self) -> tuple[float, ClockFrame]:
        """The wall clock now, and the frame it is in: what a timer written with it is stored
        with (:class:`~caregiver.storage.ClockFrame`), so that the ticker moves it by the steps
        of the clock after this look, never by one before it (:meth:`tick`)."""
        now = self.clock()
        return now, ClockFrame(self.instance, now - self.monotonic())

    def _incident_event(
        self,
        tx: Transaction,
        device_id: str,
        event: EventMessage,
        now: float,
        frame: ClockFrame,
    ) -> None:
        incident_id = event.incident or event.id  # before incidents: each alert its own
        kind = event.type.value
        incident = tx.incident(incident_id)
        # absent: the device's one walker; an incident's walker is the one it opened with
        opens_for = event.walker or DEFAULT_WALKER_ID
        walker = opens_for if incident is None else incident.walker

        def text() -> tuple[str, str]:
            whose = who_shown(self.store, device_id, walker)  # by id if unreadable: _whose
            told = _Told(
                event.id,
                event.wall_time,
                event.reason,
                event.state.value,
                event.figures,
                whose,
                now,
                event.wall_unsynced,
            )
            return self._event_text(device_id, kind, told)

        if incident is None:
            tx.open_incident(
                incident_id,
                device_id,
                kind,
                event.id,
                event.wall_time,
                now,
                opens_for,
                wall_unsynced=event.wall_unsynced,
            )
            action = self._action(kind)
            self._open(tx, kind, device_id, event.id, action, now, frame, text, incident_id)
            return
        if incident.open:
            if not worse(kind, incident.severity):
                tx.touch_incident(incident_id, now)
                return
            tx.worsen_incident(incident_id, kind, now)
            self._worsen(tx, device_id, incident_id, kind, event.id, now, frame, text)
            return
        if incident.closed_severity is not None and reopens(kind, incident.closed_severity):
            # closed as a stumble, now a fall; or a call for help, a fault after it was closed
            severity = kind if worse(kind, incident.severity) else incident.severity
            tx.reopen_incident(incident_id, severity, now)
            action = self._action(kind)
            self._open(tx, kind, device_id, event.id, action, now, frame, text, incident_id)
            return
        tx.touch_incident(incident_id, now)

    def _action(self, kind: str) -> str:
        action: str = getattr(self.config.policy, kind, "page")
        return action

    def _worsen(
        self,
        tx: Transaction,
        device_id: str,
        incident_id: str,
        kind: str,
        event_id: str,
        now: float,
        frame: ClockFrame,
        text: Callable[[], tuple[str, str]],
    ) -> None:
        """The incident got worse: its alert now speaks of the worse event, and pages if the
        new kind pages (a held stumble that became a fall pages at once)."""
        alert = tx.open_alert_of(incident_id)
        action = self._action(kind)
        if alert is None:  # the milder alert was only logged: a new one, by the worse policy
            self._open(tx, kind, device_id, event_id, action, now, frame, text, incident_id)
            return
        tx.worsen_alert(alert.id, kind, event_id)
        if action != "page":
            return
        timeout = self.config.escalation.ack_timeout_s
        title, body = text()
        if alert.status == "held":
            tx.start_paging(alert.id, now + timeout, frame)
            self._page(tx, alert.id, [0], title, body, now, urgency_of(kind), reached=0)
        else:  # already paging: whoever was told hears it is worse now, at once
            tx.reschedule_alert(alert.id, alert.contact, alert.sends, now + timeout, frame)
            targets = sorted({*self._paged(alert), self._reached(alert)})
            self._page(tx, alert.id, targets, title, body, now, urgency_of(kind))

    def _close_incident(
        self,
        tx: Transaction,
        device_id: str,
        incident_id: str | None,
        by: str,
        via: str,
        seq: int | None = None,
    ) -> None:
        """Close an incident everywhere it is open here: no more reminders, and whoever was
        paged hears who answered (or that the walker is OK). ``seq``: the monitor's closing
        event's sequence, when it closed it (what it answered came before that event)."""
        if incident_id is None:
            return
        now = self.clock()
        tx.close_incident(incident_id, by, via, now, seq)
        alert = tx.open_alert_of(incident_id)
        if alert is None:
            return
        name = self.device_name(device_id)
        whose = self._whose(tx, alert)
        if via == "walker":
            if alert.status == "held":
                self._close(tx, alert, "logged", "walker reset (I'm OK) within the grace time")
                return
            self._close(tx, alert, "resolved", "walker reset (I'm OK)")
            self._follow_up(
                tx,
                alert,
                f"RetroGuard: I'm OK - {_subject(whose, name)}",
                f"{whose or 'The walker'} pressed I'm OK on {name}: {_the_alert(alert)} is "
                f"closed. No further reminders. "
                f"Details: {self.config.base_url}{device_link(device_id)}",
            )
            return
        self._close(tx, alert, "acknowledged", f"{by} ({via})")
        self._follow_up(
            tx,
            alert,
            f"RetroGuard: acknowledged - {_subject(whose, name)}",
            # Passive, naming who answered: the acknowledger's own contact (if any) gets it
            # too — a contact is a name in the config, an account a login, and nothing ties
            # one to the other — so "ann acknowledged" read oddly on Ann's phone.
            f"{_upper_first(closed_how(by, via))}: {_the_alert(alert)}{_of(whose)} on {name} "
            f"is closed. No further reminders.",
        )

    def _test(
        self, tx: Transaction, device_id: str, event: EventMessage, now: float, frame: ClockFrame
    ) -> None:
        """A test alarm reached us from the device: tell every contact, as a test."""
        name = self.device_name(device_id)
        alert_id = tx.page_alert("test", device_id, event.id, now, now, frame=frame)
        tx.close_alert(alert_id, "logged", "test alarm", now)
        self._page(
            tx,
            alert_id,
            list(range(len(self.config.contacts))),
            f"RetroGuard TEST alarm - {name}",
            f"This is a test: {event.reason}. Nothing happened on the treadmill; no answer "
            "is needed.",
            now,
            Urgency.TEST,
        )

    def on_offline(self, tx: Transaction, device_id: str, wall_time: str) -> None:
        """The device went offline while its last state was ARMED."""
        now, frame = self._now()
        if tx.open_alerts(device_id, ("offline",)):
            return
        self._open(
            tx,
            "offline",
            device_id,
            None,
            self.config.policy.offline_while_armed,
            now,
            frame,
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
                # Said again: the offline page itself is dropped when it was not delivered
                # before the device came back (close_alert), and this is then all one hears.
                f"{name} is reporting again; it stopped reporting at "
                f"{self._when(alert.created_at)} while armed. The offline alert is closed.",
            )

    def _open(
        self,
        tx: Transaction,
        kind: str,
        device_id: str,
        event_id: str | None,
        action: str,
        now: float,
        frame: ClockFrame,
        text: Callable[[], tuple[str, str]],
        incident: str | None = None,
    ) -> None:
        """``now``: the wall clock in ``frame`` (:meth:`_now`), which the timers are written in."""
        if action == "log":
            tx.log_alert(kind, device_id, event_id, now, incident)
            return
        if action == "page_unless_reset":
            grace = now + self.config.policy.reset_grace_s
            tx.hold_alert(kind, device_id, event_id, now, grace, incident, frame=frame)
            return
        next_at = now + self.config.escalation.ack_timeout_s
        alert_id = tx.page_alert(kind, device_id, event_id, now, next_at, incident, frame=frame)
        # the page's words only for someone to page (without contacts: the dashboard only)
        title, body = text() if self.config.contacts else ("", "")
        self._page(tx, alert_id, [0], title, body, now, urgency_of(kind), reached=0)

    # ----------------------------------------------------------- closing

    def _close(self, tx: Transaction, alert: Alert, status: str, by: str) -> None:
        tx.close_alert(alert.id, status, by, self.clock())

    def _follow_up(self, tx: Transaction, alert: Alert, title: str, body: str) -> None:
        paged = self._paged(alert)
        if paged:
            self._page(tx, alert.id, paged, title, body, self.clock(), Urgency.NORMAL, record=False)

    def _walker_reset(self, tx: Transaction, device: str, wall_time: str, now: float) -> None:
        """The walker pressed reset after a trip: "I'm OK". Held alerts become logged (never
        paged); paging alerts stop escalating and the contacts already paged are told."""
        name = self.device_name(device)
        when = self._when(wall_time)
        for alert in tx.open_alerts(device, ALERT_TYPES):
            if alert.kind == EventType.HELP.value:
                continue  # newer than incidents: only a caregiver answers a call for help
            if alert.status == "held":
                self._close(tx, alert, "logged", "walker reset (I'm OK) within the grace time")
                continue
            self._close(tx, alert, "resolved", "walker reset (I'm OK)")
            whose = self._whose(tx, alert)
            self._follow_up(
                tx,
                alert,
                f"RetroGuard: I'm OK - {_subject(whose, name)}",
                f"{whose or 'The walker'} pressed I'm OK on {name} at {when}: "
                f"{_the_alert(alert)} is closed. No further reminders. "
                f"Details: {self.config.base_url}{device_link(device)}",
            )

    def pages(self, kind: str) -> bool:
        """Whether an event of ``kind`` pages someone under ``[policy]``, at once or when the
        walker does not reset in time: a call for help, a fall and no recovery always; a fault
        and a stumble unless their policy only logs them."""
        return kind in ALERT_TYPES and self._action(kind) != "log"

    def acknowledge_incident(
        self, tx: Transaction, device_id: str, incident_id: str, by: str, via: str
    ) -> None:
        """A caregiver closed an incident here (dashboard, a notification's link)."""
        self._close_incident(tx, device_id, incident_id, by, via)

    def acknowledge_seen(
        self,
        tx: Transaction,
        device_id: str,
        seen: Seen,
        by: str,
        via: str,
        event: StoredEvent | None = None,
    ) -> tuple[Acknowledged, list[str]]:
        """A caregiver acknowledged what a page showed (:mod:`caregiver.seen`): ``event``'s
        incident (an event's page), else the incident a card showed, and on a card the
        alerts outside incidents up to the newest it showed. An incident closes only if no
        event that :meth:`pages` joined it after the one seen; that, and on a card every
        other open alert of the device, stays open and escalating and is reported. Returns
        what closed and what stayed open, and the events to record as acknowledged.
        :class:`ValueError` for an incident that is not this device's."""
        closed: list[str] = []
        still: list[StillOpen] = []
        acked: list[str] = []
        target = (event.incident or event.id) if event is not None else seen.incident
        incident = tx.incident(target) if target is not None else None
        if target is not None and (
            (incident is None and event is None)
            or (incident is not None and incident.device_id != device_id)
        ):
            raise ValueError(f"incident: no incident {target} on this device")
        refused = False
        earlier = ""
        if incident is not None and not incident.open:  # closed first by someone else
            earlier = closed_earlier(incident.closed_by, incident.closed_via, by)
        if incident is not None and incident.open:
            events = tx.incident_events(incident.id)
            if not events:  # a monitor from before incidents: the alert is its own incident
                events = [e for e in (tx.event(incident.id),) if e is not None]
            newer = [e for e in newer_alerts(events, seen.event) if self.pages(e.type)]
            if newer:
                refused = True
                for e in sorted(newer, key=newest_first):
                    still.append(StillOpen(e.type, f"/events/{e.id}", incident.id))
            else:
                alert = tx.open_alert_of(incident.id)
                if alert is not None and alert.event_id:
                    acked.append(alert.event_id)
                self._close_incident(tx, device_id, incident.id, by, via)
                closed.append(incident.id)
        if event is not None and not refused:
            acked.append(event.id)
        if event is None:  # a card: the device's other open alerts were not what it showed
            for other in tx.open_incidents(device_id):
                alert = tx.open_alert_of(other.id) if other.id != target else None
                if alert is not None:
                    link = f"/events/{alert.event_id or other.first_event_id}"
                    still.append(StillOpen(alert.kind, link, other.id))
        outside = [
            a for a in tx.open_alerts(device_id, (*ALERT_TYPES, "offline")) if a.incident is None
        ]
        closed_alerts: list[int] = []
        for alert in sorted(outside, key=lambda a: a.id):
            shown = (
                alert.event_id == event.id
                if event is not None
                else seen.alerts is not None and alert.id <= seen.alerts
            )
            if shown:
                self._acknowledge_alert(tx, device_id, alert, by)
                closed_alerts.append(alert.id)
                if alert.event_id:
                    acked.append(alert.event_id)
            elif event is None:
                link = f"/events/{alert.event_id}" if alert.event_id else device_link(device_id)
                still.append(StillOpen(alert.kind, link))
        done = Acknowledged(
            closed,
            closed_alerts,
            still,
            earlier=earlier,
            earlier_incident=incident.id if earlier and incident is not None else "",
        )
        return done, list(dict.fromkeys(acked))

    def _acknowledge_alert(self, tx: Transaction, device_id: str, alert: Alert, by: str) -> None:
        """An alert outside any incident (offline while armed, or from before incidents)
        acknowledged; the other contacts paged are told who answered."""
        name = self.device_name(device_id)
        self._close(tx, alert, "acknowledged", by)
        whose = self._whose(tx, alert)
        self._follow_up(
            tx,
            alert,
            f"RetroGuard: acknowledged - {_subject(whose, name)}",
            f"Acknowledged by {by}: {_the_alert(alert)}{_of(whose)} on {name} is closed. "
            f"No further reminders.",
        )

    # --------------------------------------------------------- escalation

    def tick(self) -> int:
        """Act on every alert that is due (held past its grace, or paging past its timeout).
        Returns how many alerts were acted on. The service calls this every second; of several
        instances on one database, only the escalation lease's holder acts."""
        if not self.may_escalate():
            self._steps.forget()  # the holder's timers: a step seen here is not ours to apply
            return 0
        now, offset, step = self._steps.look()
        frame = ClockFrame(self.instance, offset)
        acted = 0
        paging: dict[str, None] = {}
        with self.store.transaction() as tx:
            tx.shift_timers(frame, step)  # by each timer's own frame: see Transaction's
            # none written more than its interval ahead: one is in a clock ahead of this one
            bounded = tx.bound_timers(
                now,
                self.config.policy.reset_grace_s,
                self.config.escalation.ack_timeout_s,
                frame,
            )
            for alert in tx.open_alerts_due(now):
                if alert.status == "held":  # the grace ran out: it pages from now on
                    paging[alert.device_id] = None
                self._escalate(tx, alert, now, frame)
                acted += 1
        self._steps.adopt(offset)  # after the commit: a failed shift is tried again
        for device_id in paging:  # committed: the dashboards may read it
            self.started_paging(device_id)
        if step:
            log.warning(
                "the wall clock was stepped %+.0f s: escalation timers moved with it",
                step,
            )
        if bounded:
            log.warning(
                "%d escalation timer(s) lay further ahead than their interval, written in a wall "
                "clock ahead of this one (another instance's, or before a step): brought to "
                "their interval from now (are the instances' clocks synchronised?)",
                bounded,
            )
        if acted or step:
            self.wake_notifier()
        return acted

    def _escalate(self, tx: Transaction, alert: Alert, now: float, frame: ClockFrame) -> None:
        if alert.kind == "offline":  # said when, as the first page did (not a blank)
            title, body = self._offline_text(alert.device_id, alert.created_at)
        else:
            title, body = self._event_text(alert.device_id, alert.kind, self._told(tx, alert))
        timeout = self.config.escalation.ack_timeout_s
        if alert.status == "held":  # the grace ran out without a reset: page
            tx.start_paging(alert.id, now + timeout, frame)
            self._page(tx, alert.id, [0], title, body, now, urgency_of(alert.kind), reached=0)
            return
        contacts = len(self.config.contacts)
        contact, sends = self._reached(alert), alert.sends
        minutes = (now - alert.created_at) / 60.0
        # a contact the config no longer has (removed since the alert reached them) is past
        # the last one: everyone is reminded, rather than "resending" to nobody
        if contacts == 0 or (sends <= self.config.escalation.resends and contact < contacts):
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
        tx.reschedule_alert(alert.id, contact, sends, now + timeout, frame)
        reached = contact if contact < contacts else None  # one removed: still past the end
        self._page(
            tx,
            alert.id,
            targets,
            title,
            prefix + body,
            now,
            urgency_of(alert.kind),
            reached=reached,
        )

    def _reached(self, alert: Alert) -> int:
        """The place in the config now of the contact ``alert`` has reached, found by its
        :func:`~caregiver.outbox.contact_id`; past the list's end when the config no longer
        has it (everyone is reminded next, as for a contact removed). Before schema 17 only
        the place was stored: a reordered config moved the escalation to whoever held it
        (Ann reached, Bob put first: Bob reminded, Ann never again, the next skipped)."""
        contacts = self.config.contacts
        if alert.reached is None:
            return alert.contact  # an alert from before schema 17: by place, as it was
        ids = [contact_id(c) for c in contacts]
        return ids.index(alert.reached) if alert.reached in ids else len(contacts)

    def _paged(self, alert: Alert) -> list[int]:
        """The places in the config now of the contacts paged for ``alert`` (its follow-ups'
        recipients), found by their ids; those no longer in the config are left out."""
        ids = [contact_id(c) for c in self.config.contacts]
        places: set[int] = set()
        for entry in alert.paged:
            if isinstance(entry, int):  # paged before schema 17: a place, as it was
                if entry < len(ids):
                    places.add(entry)
            elif entry in ids:
                places.add(ids.index(entry))
        return sorted(places)

    def _whose(self, tx: Transaction, alert: Alert) -> str | None:
        """The walker of ``alert``'s incident to name (:func:`caregiver.walkers.who_shown`):
        the page, its reminders and its follow-ups ("I'm OK", "acknowledged") say the same
        walker, else a caregiver told "FALL - Anna B." reads "I'm OK" of the treadmill and
        cannot tell whether Anna is the one who is OK. None for an alert of no incident (the
        monitor went offline: nobody fell) and a treadmill's one walker, as before.

        The names are read through the store, which reads inside ``tx`` but under a
        savepoint of their own (a :class:`~caregiver.storage.Store` read made in a
        transaction): a walkers table that cannot be read
        (damaged, missing, locked) costs the name, and the walker is named by the id their
        incident carries. Read with ``tx`` itself, its fault was the whole transaction's:
        the fall was neither stored nor paged, no reminder went out and no "I'm OK" closed
        it, for as long as the table stayed unreadable."""
        incident = tx.incident(alert.incident) if alert.incident else None
        if incident is None:
            return None
        return who_shown(self.store, alert.device_id, incident.walker)

    def _told(self, tx: Transaction, alert: Alert) -> _Told:
        whose = self._whose(tx, alert)
        if alert.event_id:
            event = tx.event(alert.event_id)
            if event is not None:
                return _Told(
                    event.id,
                    event.wall_time,
                    event.reason,
                    event.state,
                    event.figures,
                    whose,
                    event.received_at,
                    event.wall_unsynced,
                )
        return _Told(alert.event_id or "", "", "", "", {}, whose)

    # ------------------------------------------------------------ sending

    def _page(
        self,
        tx: Transaction,
        alert_id: int,
        contact_indexes: list[int],
        title: str,
        body: str,
        now: float,
        urgency: Urgency,
        record: bool = True,
        reached: int | None = None,
    ) -> None:
        """Queue the message for every URL of those contacts (delivered by the notifier), at
        ``urgency``: what gets a phone through Do Not Disturb is decided here, per message.
        ``record``: remember them as paged (by id), and the alert as having reached the
        contact at place ``reached`` (None: the one it had)."""
        contacts = self.config.contacts
        for index in contact_indexes:
            if index >= len(contacts):
                continue
            contact = contacts[index]
            name = contact.name or f"contact {index + 1}"
            for url_index, url in enumerate(contact.urls):
                # addressed by name and URL, not place: a reordered config still reaches them
                tx.queue_notification(
                    alert_id,
                    name,
                    index,
                    url_index,
                    title,
                    body,
                    now,
                    contact_key=contact.name,
                    url_key=url_key(url),
                    urgency=urgency,
                )
        if record:
            paged = [contact_id(contacts[i]) for i in contact_indexes if i < len(contacts)]
            to = contact_id(contacts[reached]) if reached is not None and paged else None
            tx.mark_paged(alert_id, paged, to)

    # ------------------------------------------------------------ reading

    def alerts(self, device_id: str | None = None) -> list[Alert]:
        return self.store.alerts(device_id)


def _subject(whose: str | None, name: str) -> str:
    """A message's title after its "what": the walker named first, as the page's title was
    ("Anna B., Dad's treadmill"), else the treadmill alone."""
    return f"{whose}, {name}" if whose else name


def _the_alert(alert: Alert) -> str:
    """The alert a follow-up closes, named as a closed incident's headline names it ("the
    alert 'Fall, not getting up'"). Its name lowered into the sentence read as the walker's
    state: "I'm OK: Anna pressed reset after the fall, not getting up" said, in a message
    that she is fine, that she is not getting up."""
    return f"the alert '{alert_said(alert.kind).name}'"


def _upper_first(text: str) -> str:
    """``text`` opening a sentence ("acknowledged by ann" -> "Acknowledged by ann"), the
    rest as it is (a name keeps its case)."""
    return text[:1].upper() + text[1:]


def _of(whose: str | None) -> str:
    """' of Anna B.' after what was acknowledged, or nothing for a walker not named."""
    return f" of {whose}" if whose else ""


class _Told(NamedTuple):
    """What a page says about the event behind an alert."""

    event_id: str
    wall_time: str
    reason: str
    state: str
    figures: Mapping[str, float]
    who: str | None = None
    """The walker whose incident it is, to name (:func:`caregiver.walkers.who_shown`)."""
    received_at: float | None = None
    """When the service received the event (None: not known, the event not found). The page
    says it, as received, instead of ``wall_time`` when the device's clock was not set
    (:attr:`unsynced`), and beside it when the two are more than a minute apart: a fall held
    in the treadmill's outbox through an outage (:func:`caregiver.story.stamped`)."""
    unsynced: bool = False
    """The device's clock was not set as it stamped the event (its ``wall_unsynced``)."""
