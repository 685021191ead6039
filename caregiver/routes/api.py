"""JSON for the dashboard's scripts: the fleet, and an event's plot series."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver import plot
from caregiver.auth import Session
from caregiver.routes.site import Site


def routes(site: Site) -> list[BaseRoute]:
    store = site.backend.store

    def window_of(event_id: str, session: Session) -> object | None:
        event = store.event(event_id)
        if event is None or not session.may_see(event.device_id):
            return None
        return store.imu_window(event_id)

    @site.authed
    async def event_plot(request: Request) -> Response:
        window = await run_in_threadpool(
            window_of, request.path_params["event_id"], request.state.session
        )
        if not plot.valid_window(window):
            return JSONResponse({"error": "this event carries no IMU window"}, status_code=404)
        return JSONResponse(plot.series(window))

    @site.authed
    async def fleet_json(request: Request) -> Response:
        session: Session = request.state.session
        devices = await run_in_threadpool(store.devices)
        return JSONResponse({"devices": [d for d in devices if session.may_see(d["device_id"])]})

    return [
        Route("/api/events/{event_id}/plot", event_plot, methods=["GET"]),
        Route("/api/fleet", fleet_json, methods=["GET"]),
    ]
