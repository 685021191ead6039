"""The live feed: ``/stream`` (server-sent events) and what goes down it.

Cards and timeline rows are rendered by the same templates as on the first page
load, so the browser only swaps HTML fragments in. :class:`LiveFeed` renders on
its own thread (never the event loop's, nor ingest's); :class:`caregiver.hub.Hub`
carries the result over.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from caregiver import story
from caregiver.auth import Session
from caregiver.changes import Change, DeviceChanged, EventStored, SessionStored
from caregiver.routes.site import Site
from caregiver.storage import Device, Incident, Store, StoredEvent

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
    """Renders the card or timeline row a change concerns and pushes it to every browser.

    The rendering runs on the feed's own thread, never on the thread that made the
    change: ingest goes on with the next message meanwhile. Changes are taken in
    batches; within one, rows and session notices go in order (a row changed twice
    — a trip, then its recording — is rendered once, from the store as it is then)
    and each changed card is rendered once, after them — a burst of ten events on
    one device costs one card, not ten.
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self._pending: list[Change] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def publish(self, change: Change) -> None:
        """After a commit (any thread but the event loop's): queue it for the browsers."""
        if self.site.backend.hub.clients == 0:
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

    def close(self) -> None:
        """Stop the feed's thread (what is still queued is dropped: the browsers reload)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if self._closed:
                    return
                batch, self._pending = self._pending, []
            cards: dict[str, None] = {}
            rows: set[str] = set()
            try:
                seen = _Snapshot.read(self.site.backend.store, batch)
            except Exception:
                log.exception("could not read a batch of changes for the dashboard")
                continue
            for change in batch:
                if isinstance(change, DeviceChanged):
                    cards[change.device_id] = None
                elif isinstance(change, EventStored):
                    if change.event_id not in rows:  # a trip and its recording: one row
                        rows.add(change.event_id)
                        self._push(change, seen)
                else:
                    self._push(change, seen)
            for device_id in cards:
                self._push(DeviceChanged(device_id), seen)

    def _push(self, change: Change, seen: _Snapshot) -> None:
        """Render one change and hand it to the hub (from what the batch read)."""
        backend = self.site.backend
        hub = backend.hub
        try:
            if isinstance(change, DeviceChanged):
                device = seen.devices.get(change.device_id)
                if device is None:
                    return
                html = self.site.fragment("_card.html", d=device)
                hub.publish(
                    {
                        "kind": "device",
                        "device_id": change.device_id,
                        "level": story.card(device, backend.clock()).level,
                        "html": html,
                    }
                )
                latest = device["incident"]
                incident = seen.incidents.get(latest["id"]) if latest else None
                if incident is not None:  # its line in the fleet's list of incidents
                    hub.publish(
                        {
                            "kind": "incident",
                            "device_id": change.device_id,
                            "incident": incident.id,
                            "html": self.site.fragment("_incident_row.html", i=incident),
                        }
                    )
            elif isinstance(change, SessionStored):  # the progress page reloads itself
                hub.publish(
                    {
                        "kind": "session",
                        "device_id": change.device_id,
                        "session_id": change.session_id,
                    }
                )
            elif isinstance(change, EventStored):
                event = seen.events.get(change.event_id)
                if event is None:
                    return
                html = self.site.fragment("_event_row.html", e=event)
                hub.publish(
                    {
                        "kind": "event",
                        "device_id": change.device_id,
                        "device_name": backend.device_name(change.device_id),
                        "event": event.as_json(),
                        "html": html,
                    }
                )
        except Exception:
            log.exception("could not push a change to the dashboard")


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What a batch of changes renders, read from the store at once: three statements for
    the batch, not a round trip or three per change (on PostgreSQL the feed otherwise spent
    most of a burst waiting on them)."""

    events: dict[str, StoredEvent]
    devices: dict[str, Device]
    incidents: dict[str, Incident]

    @classmethod
    def read(cls, store: Store, batch: list[Change]) -> _Snapshot:
        events = store.events_by_id({c.event_id for c in batch if isinstance(c, EventStored)})
        devices = store.devices_by_id({c.device_id for c in batch if isinstance(c, DeviceChanged)})
        incidents = store.incidents_by_id(
            {d["incident"]["id"] for d in devices.values() if d["incident"] is not None}
        )
        return cls(events, devices, incidents)
