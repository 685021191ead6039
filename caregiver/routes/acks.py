"""Acknowledging: one event (from its page or the timeline), or every open alert of a device
(from its card). The service sends the device's ack command and records who answered; the
request answers JSON to the scripts and redirects a plain form post."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver.auth import Session
from caregiver.routes.site import Site


def routes(site: Site) -> list[BaseRoute]:
    backend = site.backend
    store = backend.store

    def answer(request: Request, location: str) -> Response:
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"ok": True})
        return RedirectResponse(location, status_code=303)

    @site.authed
    async def ack_event(request: Request) -> Response:
        session: Session = request.state.session
        event = await run_in_threadpool(store.event, request.path_params["event_id"])
        if event is None or not site.may_see(request, event.device_id):
            return site.not_found("event")
        try:
            await run_in_threadpool(
                backend.acknowledge, event.device_id, event.id, session.username
            )
        except RuntimeError as exc:
            return PlainTextResponse(f"could not send the acknowledgement: {exc}", 503)
        return answer(request, f"/events/{event.id}")

    @site.authed
    async def ack_device(request: Request) -> Response:
        session: Session = request.state.session
        device_id = request.path_params["device_id"]
        if not site.may_see(request, device_id) or (
            await run_in_threadpool(store.device, device_id) is None
        ):
            return site.not_found("device")
        try:
            await run_in_threadpool(backend.acknowledge, device_id, None, session.username)
        except RuntimeError as exc:
            return PlainTextResponse(f"could not send the acknowledgement: {exc}", 503)
        return answer(request, f"/devices/{device_id}")

    return [
        Route("/devices/{device_id}/ack", ack_device, methods=["POST"]),
        Route("/events/{event_id}/ack", ack_event, methods=["POST"]),
    ]
