"""A walker's progress: the guided sessions against the weekly goal, as a page and as the
chart's JSON (figures from :func:`caregiver.progress.progress_view`)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver.progress import progress_view
from caregiver.routes.site import Site
from caregiver.storage import Device, WalkSession


def routes(site: Site) -> list[BaseRoute]:
    backend = site.backend
    store = backend.store

    def sessions_of(device_id: str) -> tuple[Device | None, list[WalkSession]]:
        device = store.device(device_id)
        return device, store.walk_sessions(device_id) if device is not None else []

    @site.authed
    async def progress_page(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        if not site.may_see(request, device_id):
            return site.not_found("device")
        device, sessions = await run_in_threadpool(sessions_of, device_id)
        if device is None:
            return site.not_found("device")
        view = progress_view(sessions, backend.clock(), backend.config.zone)
        return site.render(request, "progress.html", device=device, sessions=sessions, **view)

    @site.authed
    async def progress_json(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        device, sessions = (
            await run_in_threadpool(sessions_of, device_id)
            if site.may_see(request, device_id)
            else (None, [])
        )
        if device is None:
            return JSONResponse({"error": "no such device"}, status_code=404)
        return JSONResponse(progress_view(sessions, backend.clock(), backend.config.zone)["chart"])

    return [
        Route("/devices/{device_id}/progress", progress_page, methods=["GET"]),
        Route("/api/devices/{device_id}/progress", progress_json, methods=["GET"]),
    ]
