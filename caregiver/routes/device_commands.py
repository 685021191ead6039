"""Commands a caregiver sends a device from its page: a test alarm.

``POST /devices/<id>/test-alarm`` (CSRF, and only for a device this caregiver
may see) publishes the device's ``test_alarm`` command: the device chirps its
buzzer and publishes a ``test`` event, which the service pages to every contact
as a TEST — the whole path a real alarm takes. The request answers JSON to the
page's script and redirects a plain form post back to the device page.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver.auth import Session
from caregiver.routes.site import Site


def routes(site: Site) -> list[BaseRoute]:
    backend = site.backend

    @site.authed
    async def test_alarm(request: Request) -> Response:
        session: Session = request.state.session
        device_id = request.path_params["device_id"]
        if not site.may_see(request, device_id) or (
            await run_in_threadpool(backend.store.device, device_id) is None
        ):
            return site.not_found("device")
        try:
            request_id = await run_in_threadpool(backend.test_alarm, device_id, session.username)
        except RuntimeError as exc:
            return PlainTextResponse(f"could not send the test alarm: {exc}", 503)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"ok": True, "request_id": request_id})
        return RedirectResponse(f"/devices/{device_id}?test_alarm=sent", status_code=303)

    return [Route("/devices/{device_id}/test-alarm", test_alarm, methods=["POST"])]
