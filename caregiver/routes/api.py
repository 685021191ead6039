"""JSON for the dashboard's scripts: the fleet, and an event's plot series."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver import plot
from caregiver.routes.site import Site


def routes(site: Site) -> list[BaseRoute]:
    store = site.backend.store

    @site.authed
    async def event_plot(request: Request) -> Response:
        window = await run_in_threadpool(store.imu_window, request.path_params["event_id"])
        if not plot.valid_window(window):
            return JSONResponse({"error": "this event carries no IMU window"}, status_code=404)
        return JSONResponse(plot.series(window))

    @site.authed
    async def fleet_json(request: Request) -> Response:
        return JSONResponse({"devices": await run_in_threadpool(store.devices)})

    return [
        Route("/api/events/{event_id}/plot", event_plot, methods=["GET"]),
        Route("/api/fleet", fleet_json, methods=["GET"]),
    ]
