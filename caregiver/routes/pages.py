"""The dashboard's pages: the fleet (a card per treadmill, recent alerts), a device's
timeline, one event (with its IMU plot)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from caregiver.alerts import ALERT_TYPES
from caregiver.auth import Session
from caregiver.routes.site import Site
from caregiver.storage import Device, StoredEvent


def routes(site: Site) -> list[BaseRoute]:
    store = site.backend.store

    def fleet_data(session: Session) -> tuple[list[Device], list[StoredEvent]]:
        devices = [d for d in store.devices() if session.may_see(d["device_id"])]
        events = store.recent_events(ALERT_TYPES, limit=10, devices=session.devices)
        return devices, events

    @site.authed
    async def fleet(request: Request) -> Response:
        devices, events = await run_in_threadpool(fleet_data, request.state.session)
        return site.render(request, "fleet.html", devices=devices, events=events)

    def device_data(device_id: str) -> tuple[Device | None, list[StoredEvent]]:
        device = store.device(device_id)
        return device, store.events_for(device_id) if device is not None else []

    @site.authed
    async def device_page(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        if not site.may_see(request, device_id):
            return site.not_found("device")
        device, events = await run_in_threadpool(device_data, device_id)
        if device is None:
            return site.not_found("device")
        return site.render(request, "device.html", device=device, events=events)

    @site.authed
    async def event_page(request: Request) -> Response:
        event = await run_in_threadpool(store.event, request.path_params["event_id"])
        if event is None or not site.may_see(request, event.device_id):
            return site.not_found("event")
        return site.render(request, "event.html", event=event)

    return [
        Route("/", fleet, methods=["GET"]),
        Route("/devices/{device_id}", device_page, methods=["GET"]),
        Route("/events/{event_id}", event_page, methods=["GET"]),
    ]
