"""Acknowledging what a page showed: an event's incident (from its page), or what a device's
card showed. Each form says what its page showed (:mod:`caregiver.seen`); the service closes
only that — an alert that arrived after the page was shown stays open and escalating — sends
the device's ack command and records who answered. The request answers JSON to the page's
script (409 with the words when something stayed open) and redirects a plain form post back
to the page, which then says the same in a notice. Without a broker link the alert still
closes here (the service's own database) and the answer says that the treadmill is told when
the connection is back (``"device": "waiting"``); 503 only when the service is not running
its MQTT client at all (starting or stopping: nothing closed)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver.auth import Session
from caregiver.routes.site import Site, missed_alarms
from caregiver.seen import Acknowledged, Seen, seen_from
from caregiver.story import device_link


def routes(site: Site) -> list[BaseRoute]:
    backend = site.backend
    store = backend.store

    async def acknowledge(
        request: Request, device_id: str, page: str, event_id: str | None = None
    ) -> Response:
        session: Session = request.state.session
        try:
            seen = seen_from(await request.form())
        except ValueError as exc:
            return PlainTextResponse(f"could not read the acknowledgement: {exc}", 400)
        if event_id is not None and seen.said and seen.event is None:
            seen = Seen(event=None, said=False)  # an event's page names the newest it showed
        try:
            done: Acknowledged = await run_in_threadpool(
                backend.acknowledge_seen, device_id, seen, session.username, event_id=event_id
            )
        except ValueError as exc:
            return PlainTextResponse(f"could not read the acknowledgement: {exc}", 400)
        except RuntimeError as exc:
            return PlainTextResponse(f"could not send the acknowledgement: {exc}", 503)
        # the moment it was answered: the page says it with the notice, and an address
        # reloaded or bookmarked later says nothing (caregiver.routes.site.ACK_NOTICE_S)
        at = f"at={int(backend.clock())}"
        back = f"{page}?{done.query()}&{at}" if done.noticed else page
        if not done.noticed and not _wants_json(request):
            # nothing to say of this one, but a page without scripts says what else pages
            # (another treadmill's fall, a monitor offline while armed), as the script does
            others = await run_in_threadpool(
                missed_alarms,
                store,
                request.state.session,
                backend.device_name,
                backend.config.zone,
                backend.config.policy,
                backend.clock(),
            )
            if others:
                back = f"{page}?ack=done&{at}"
        if _wants_json(request):
            answer = done.as_json()
            if done.outcome == "done":  # closed, perhaps not yet told to the device
                return JSONResponse({**answer, "location": back} if done.waiting else answer)
            return JSONResponse({**answer, "location": back}, status_code=409)
        return RedirectResponse(back, status_code=303)

    @site.authed
    async def ack_event(request: Request) -> Response:
        event = await run_in_threadpool(store.event, request.path_params["event_id"])
        if event is None or not site.may_see(request, event.device_id):
            return site.not_found("event")
        return await acknowledge(request, event.device_id, f"/events/{event.id}", event.id)

    @site.authed
    async def ack_device(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        if not site.may_see(request, device_id) or (
            await run_in_threadpool(store.device, device_id) is None
        ):
            return site.not_found("device")
        return await acknowledge(request, device_id, device_link(device_id))

    return [
        Route("/devices/{device_id}/ack", ack_device, methods=["POST"]),
        Route("/events/{event_id}/ack", ack_event, methods=["POST"]),
    ]


def _wants_json(request: Request) -> bool:
    """The page's script posted it (a plain form post is sent back to the page)."""
    return "application/json" in request.headers.get("accept", "")
