"""The live feed: ``/stream`` (server-sent events) and what goes down it.

Cards and timeline rows are rendered by the same templates as on the first page
load, so the browser only swaps HTML fragments in. :class:`LiveFeed` runs on the
thread that made the change (MQTT ingest, an acknowledgement's worker thread),
never on the event loop; :class:`caregiver.hub.Hub` carries the result over.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from caregiver import story
from caregiver.changes import Change, DeviceChanged, EventStored, SessionStored
from caregiver.routes.site import Site

log = logging.getLogger(__name__)


def routes(site: Site) -> list[BaseRoute]:
    hub = site.backend.hub

    @site.authed
    async def stream(request: Request) -> Response:
        return StreamingResponse(
            hub.stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    return [Route("/stream", stream, methods=["GET"])]


class LiveFeed:
    """Renders the card or timeline row a change concerns and pushes it to every browser."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def publish(self, change: Change) -> None:
        """After a commit (any thread but the event loop's; reads the store)."""
        backend = self.site.backend
        hub = backend.hub
        if hub.clients == 0:
            return
        try:
            if isinstance(change, DeviceChanged):
                device = backend.store.device(change.device_id)
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
                incident = backend.store.incident(latest["id"]) if latest else None
                if incident is not None:  # its line in the fleet's list of incidents
                    hub.publish(
                        {
                            "kind": "incident",
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
                event = backend.store.event(change.event_id)
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
