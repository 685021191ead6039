"""A walker's progress: the guided sessions against the weekly goal and the weekly trends of
balance and gait, as a page and as the charts' JSON (figures from
:func:`caregiver.progress.progress_view` and :func:`caregiver.trends.trends`)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver.progress import progress_view
from caregiver.routes.site import Site
from caregiver.storage import Device, WalkSession
from caregiver.trends import Trend, measures_of, trends, trends_json
from core.zones import zone_name


def routes(site: Site) -> list[BaseRoute]:
    backend = site.backend
    store = backend.store

    def sessions_of(device_id: str) -> tuple[Device | None, list[WalkSession], dict[str, int]]:
        """The device, its sessions and the sessions its progression prescribed by week."""
        device = store.device(device_id)
        if device is None:
            return None, [], {}
        return device, store.walk_sessions(device_id), store.prescribed_weeks(device_id)

    def trends_of(device_id: str) -> list[Trend]:
        return trends(measures_of(store.walk_session_payloads(device_id)), backend.config.zone)

    @site.authed
    async def progress_page(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        if not site.may_see(request, device_id):
            return site.not_found("device")
        device, sessions, prescribed = await run_in_threadpool(sessions_of, device_id)
        if device is None:
            return site.not_found("device")
        view = progress_view(sessions, backend.clock(), backend.config.zone, prescribed)
        found = await run_in_threadpool(trends_of, device_id)
        return site.render(
            request, "progress.html", device=device, sessions=sessions, trends=found, **view
        )

    @site.authed
    async def progress_json(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        device, sessions, prescribed = (
            await run_in_threadpool(sessions_of, device_id)
            if site.may_see(request, device_id)
            else (None, [], {})
        )
        if device is None:
            return JSONResponse({"error": "no such device"}, status_code=404)
        view = progress_view(sessions, backend.clock(), backend.config.zone, prescribed)
        return JSONResponse(view["chart"])

    @site.authed
    async def trends_api(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        device = (
            await run_in_threadpool(store.device, device_id)
            if site.may_see(request, device_id)
            else None
        )
        if device is None:
            return JSONResponse({"error": "no such device"}, status_code=404)
        found = await run_in_threadpool(trends_of, device_id)
        return JSONResponse({"zone": zone_name(backend.config.zone), "trends": trends_json(found)})

    return [
        Route("/devices/{device_id}/progress", progress_page, methods=["GET"]),
        Route("/api/devices/{device_id}/progress", progress_json, methods=["GET"]),
        Route("/api/devices/{device_id}/trends", trends_api, methods=["GET"]),
    ]
