"""The live feed: ``/stream`` (server-sent events) and what goes down it.

Cards and timeline rows go as data (:mod:`caregiver.feed`): the first page load is
rendered by the templates, the browser builds what changes after it in the same
markup (``static/app.js``). :class:`LiveFeed` reads the store and words the story on
its own thread (never the event loop's, nor ingest's); :class:`caregiver.hub.Hub`
carries the result over.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from caregiver import feed, story, walkers
from caregiver.auth import Session
from caregiver.broker_link import BrokerLink, Connected, broker_address
from caregiver.changes import Change, DeviceChanged, EventStored, SessionStored, StageChanged
from caregiver.progress import PlanLine, plan_line, plan_read
from caregiver.routes.site import Site
from caregiver.storage import Device, Incident, Part, StorageFault, Store, StoredEvent, Use

log = logging.getLogger(__name__)


def routes(site: Site) -> list[BaseRoute]:
    hub = site.backend.hub

    @site.authed
    async def stream(request: Request) -> Response:
        session: Session = request.state.session
        return StreamingResponse(
            hub.stream(session.may_see),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    return [Route("/stream", stream, methods=["GET"])]


class LiveFeed:
    """Words the card or timeline row a change concerns and pushes it to every browser.

    The work runs on the feed's own thread, never on the thread that made the change:
    ingest goes on with the next message meanwhile. Events go first: each new event's
    row is sent as soon as the feed sees it (from the row ingest stored, without reading
    it back), and a changed card waits until no event is queued, so a burst's events
    reach the browsers at the pace they are stored, not behind a card per device. Cards
    are coalesced while they wait — a device changed ten times during a burst costs one
    card (read and worded from the store as it is then), not ten; the waiting cards are
    read at once (:class:`_Snapshot`: three statements, not a round trip per card). Rows and session
    notices go in order; a row changed twice in one take (a trip, then its recording)
    is sent once.

    A card's plan line (:func:`caregiver.progress.plan_line`) changes only when a session is
    stored or a walker's stage changes (a plan or progression assigned, a stage moved on, held
    or released): those changes send the device's card too (the line said the old plan until
    the belt's next change), and the line is kept per device in between, so the card sent for
    each change of the belt reads neither the sessions nor the stages again (three or four
    statements a card, on the feed's one thread).
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self._pending: list[Change] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._banner_lock = threading.Lock()
        self._link: BrokerLink | None = None
        self._storage: tuple[str, float] | None = None
        """Ingest's database fault and when it began (wall time), or None: it works."""
        self._plan_changes: dict[str, int] = {}
        """Per device, how many changes of its plan line (a session stored, a stage changed)
        were published: a kept line read before the latest is read again (:meth:`_plan`)."""
        self._plans_unheard = 0
        """How many times the other instances' changes went unheard (:meth:`forget_plans`):
        every line kept before is read again."""
        self._plans: dict[str, tuple[tuple[int, int], PlanLine | None]] = {}
        """Per device, its plan line as last read (feed thread only), and
        :attr:`_plans_unheard` and :attr:`_plan_changes` as they stood before that read."""

    def publish(self, change: Change) -> None:
        """After a commit (any thread but the event loop's): queue it for the browsers."""
        hub = self.site.backend.hub
        hub.changed(change.device_id)  # first: a stream opening after this knows of it (hello)
        if isinstance(change, SessionStored | StageChanged):
            with self._cond:  # counted with no browser open too: the kept line is stale
                device_id = change.device_id
                self._plan_changes[device_id] = self._plan_changes.get(device_id, 0) + 1
        if hub.clients == 0:
            return
        with self._cond:
            if self._closed:
                return
            self._pending.append(change)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="caregiver-feed", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    @property
    def thread(self) -> threading.Thread | None:
        """The thread that sends changes to the browsers (None until a change finds one open,
        and once closed): dead, no page shows a new alert until it is reloaded."""
        with self._cond:
            return None if self._closed else self._thread

    def forget_plans(self) -> None:
        """The other instances' changes went unheard for a while (the database's listener
        was lost): a session or stage one of them stored meanwhile was not counted, so every
        kept plan line is read again with its device's next card."""
        with self._cond:
            self._plans_unheard += 1

    def broker(self, link: BrokerLink) -> None:
        """The broker link changed (paho's thread): the pages' banner says it at once. Worded
        here, not on the feed's thread: a few words, no store, and never behind a burst."""
        with self._banner_lock:
            self._link = link
            self._say_banner()

    def storage(self, fault: str | None) -> None:
        """Ingest's database refuses writes (``fault``) or works again (None): while the
        broker link is up the banner says that instead — nothing a device sends is stored,
        shown or paged meanwhile (it waits with the broker and on the devices)."""
        with self._banner_lock:
            if fault is None:
                self._storage = None
            elif self._storage is None or self._storage[0] != fault:  # said again: same since
                self._storage = (fault, time.time())
            self._say_banner()

    def side_faults_changed(self) -> None:
        """A part of the database the service goes on without failed or works again (any
        thread, perhaps with the store's lock held: reads only :attr:`Store.side_faults`):
        while the broker and the database's alerts work, the banner says it."""
        with self._banner_lock:
            self._say_banner()

    def _say_banner(self) -> None:
        link, storage = self._link, self._storage
        if link is None:
            return
        side = self.site.backend.store.side_faults.now()
        if storage is None and isinstance(link, Connected) and link.held is not None:
            message = feed.held_message(link.held, self.site.moment)  # it may be a fall
        elif side and storage is None and isinstance(link, Connected):
            message = feed.side_message(side, self.site.moment)
        elif storage is None or not isinstance(link, Connected):
            mqtt = self.site.backend.config.mqtt
            where = broker_address(mqtt.host, mqtt.port)
            message = feed.broker_message(link, where, self.site.moment)
        else:
            fault, since = storage
            message = feed.BrokerMessage(
                True,
                "Not storing alerts from the treadmills",
                f"the service's database refuses writes ({fault})",
                self.site.moment(since, "minute"),
                "Falls wait with the broker and on the treadmills, and will not be shown or "
                "notified until it takes writes again.",
            )
        self.site.backend.hub.broker_changed(message)

    def close(self) -> None:
        """Stop the feed's thread (what is still queued is dropped: the browsers reload)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _run(self) -> None:
        cards: dict[str, None] = {}
        """Devices whose card is still to send, in the order they changed."""
        older: dict[tuple[str, str], None] = {}
        """(device, incident): rows of "Recent alerts" still to send besides the cards' (an
        older incident's close the treadmill confirmed: :attr:`DeviceChanged.incident`)."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed or cards)
                if self._closed:
                    return
                batch, self._pending = self._pending, []
            store = self.site.backend.store
            rows: set[str] = set()
            unread: list[Change] = [c for c in batch if isinstance(c, EventStored) and not c.row]
            try:
                seen = _Snapshot.read(store, unread)  # events ingest did not hand over
            except Exception:
                log.exception("could not read a batch of changes for the dashboard")
                self._lost()
                continue
            out: list[feed.FeedMessage] = []
            for change in batch:
                if isinstance(change, DeviceChanged):
                    cards[change.device_id] = None
                    if change.incident is not None:
                        older[(change.device_id, change.incident)] = None
                elif isinstance(change, EventStored):
                    if change.event_id not in rows:  # a trip and its recording: one row
                        rows.add(change.event_id)
                        self._push(change, seen, out)
                else:
                    self._push(change, seen, out)
                    cards[change.device_id] = None  # its plan line changed: the card says it
            self._hand_over(out)  # this take's rows, before any card
            if cards and not self._pending:  # events first: the cards once none is queued
                waiting: list[Change] = [DeviceChanged(device_id) for device_id in cards]
                waiting += [DeviceChanged(device_id, incident) for device_id, incident in older]
                cards.clear()
                older.clear()
                try:
                    seen = _Snapshot.read(store, waiting)
                except Exception:
                    log.exception("could not read the changed cards for the dashboard")
                    self._lost()
                    continue
                out = []
                for change in waiting:
                    self._push(change, seen, out)
                self._hand_over(out)

    def _lost(self) -> None:
        """A take could not be read: its changes never reach the browsers. Every stream
        ends, so each page reconnects, its hello's marker (moved on by these changes) differs
        from the page's, and the page fetches itself and asks for the alarms it missed
        (before: the take was dropped, no stream ended, and another instance's fall — whose
        row this feed always reads — never alarmed)."""
        self.site.backend.hub.shutdown()

    def _hand_over(self, messages: list[feed.FeedMessage]) -> None:
        """To the hub, in one go: one wake-up of the web server's event loop for the take
        (however long: the hub puts it on the browsers' queues a chunk at a time)."""
        try:
            self.site.backend.hub.publish_all(messages)
        except Exception:
            log.exception("could not push changes to the dashboard")

    def _plan(self, device_id: str) -> PlanLine | None:
        """The device's plan line, as kept since its last session or stage change, else read
        (and kept). One the store cannot read is left out of this card, logged, and read again
        for the next (:func:`caregiver.progress.card_plan`'s rule: the line is information)."""
        # as they stand before the read: a change during it leaves the line kept stale, read
        # again next time
        changes = (self._plans_unheard, self._plan_changes.get(device_id, 0))
        kept = self._plans.get(device_id)
        if kept is not None and kept[0] == changes:
            return kept[1]
        store = self.site.backend.store
        try:
            line = plan_line(store, device_id)
        except StorageFault as exc:
            log.warning("the card of %s goes without its plan line: %s", device_id, exc)
            store.side_faults.failed(
                Part.PLANS, exc, Use.READ, Part.PLANS.tables
            )  # the banner and /healthz say it
            return None
        store.side_faults.works(Part.PLANS, Use.READ, plan_read(line))  # only what it read
        self._plans[device_id] = (changes, line)
        return line

    def _push(self, change: Change, seen: _Snapshot, out: list[feed.FeedMessage]) -> None:
        """Word one change and add its messages to ``out`` (from what was read at once)."""
        backend = self.site.backend
        site = self.site
        try:
            if isinstance(change, DeviceChanged) and change.incident is not None:
                self._push_row(change.device_id, change.incident, seen, out)
            elif isinstance(change, DeviceChanged):
                device = seen.devices.get(change.device_id)
                if device is None:
                    return
                name = backend.device_name(change.device_id)
                latest = device["incident"]
                walker = latest and latest["walker"]
                line = self._plan(change.device_id)  # the card says it, live too
                # the walkers' names, read once for the incident's walker and the plan's
                known = (
                    walkers.walkers_shown(backend.store, change.device_id)
                    if walker is not None or line is not None
                    else []
                )
                who = walkers.named(walker, known)
                plan = line.said(known) if line is not None else ""
                card = feed.card(device, name, backend.clock(), site.moment, who, plan)
                out.append(feed.DeviceMessage(change.device_id, card.level, card))
                incident = seen.incidents.get(latest["id"]) if latest else None
                if incident is not None and latest:  # its line in the fleet's list of incidents
                    opened = story.incident_stamped(incident)
                    received = (
                        site.moment(opened.received_at, opened.received_format)
                        if opened.late
                        else None
                    )
                    row = feed.incident_row(
                        incident, name, site.moment(opened.at), who, received, latest["told"]
                    )
                    out.append(feed.IncidentMessage(change.device_id, incident.id, row))
            elif isinstance(change, SessionStored):  # the progress page reloads itself
                out.append(feed.SessionMessage(change.device_id, change.session_id))
            elif isinstance(change, StageChanged):  # the plan and progress pages follow
                out.append(feed.StageChangedMessage(change.device_id, change.walker))
            elif isinstance(change, EventStored):
                event = change.row or seen.events.get(change.event_id)
                if event is None:
                    return
                name = backend.device_name(change.device_id)
                who = None
                if event.severity == "critical":  # its alarm names whose incident it is
                    incident = backend.store.incident(event.incident or event.id)
                    if incident is not None:
                        who = walkers.who_shown(backend.store, event.device_id, incident.walker)
                when = story.event_stamped(event)
                received = (
                    site.moment(when.received_at, when.received_format) if when.late else None
                )
                out.append(feed.event_message(event, name, site.moment(when.at), who, received))
        except Exception:
            log.exception("could not push a change to the dashboard")

    def _push_row(
        self, device_id: str, incident_id: str, seen: _Snapshot, out: list[feed.FeedMessage]
    ) -> None:
        """The "Recent alerts" row of an incident of ``device_id`` that is not its card's
        newest (that one goes with the card), as the page renders it: its close confirmed by
        the treadmill after a newer incident opened was said only once the page was loaded
        again."""
        device = seen.devices.get(device_id)
        latest = device["incident"] if device is not None else None
        if latest is not None and latest["id"] == incident_id:
            return  # the card's: sent with it
        incident = seen.listed.get(incident_id)
        if incident is None or incident.device_id != device_id:
            return
        site = self.site
        backend = site.backend
        name = backend.device_name(device_id)
        who = walkers.who_shown(backend.store, device_id, incident.walker)
        opened = story.incident_stamped(incident)
        received = site.moment(opened.received_at, opened.received_format) if opened.late else None
        told = incident.told if incident.told is not None else True
        row = feed.incident_row(incident, name, site.moment(opened.at), who, received, told)
        out.append(feed.IncidentMessage(device_id, incident.id, row))


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What a batch of changes renders, read from the store at once: three statements for
    the batch, not a round trip or three per change (on PostgreSQL the feed otherwise spent
    most of a burst waiting on them)."""

    events: dict[str, StoredEvent]
    devices: dict[str, Device]
    incidents: dict[str, Incident]
    listed: dict[str, Incident]
    """Incidents whose row is sent besides their card's (:attr:`DeviceChanged.incident`), read
    as "Recent alerts" lists them."""

    @classmethod
    def read(cls, store: Store, batch: list[Change]) -> _Snapshot:
        events = store.events_by_id({c.event_id for c in batch if isinstance(c, EventStored)})
        devices = store.devices_by_id({c.device_id for c in batch if isinstance(c, DeviceChanged)})
        incidents = store.incidents_by_id(
            {d["incident"]["id"] for d in devices.values() if d["incident"] is not None}
        )
        rows = {c.incident for c in batch if isinstance(c, DeviceChanged) and c.incident}
        listed = store.incidents_by_id(rows, listed=True) if rows else {}
        return cls(events, devices, incidents, listed)
