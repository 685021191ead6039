"""Commands a caregiver sends a device from its page: a test alarm, and a self-test.

``POST /devices/<id>/test-alarm`` (CSRF, and only for a device this caregiver
may see) publishes the device's ``test_alarm`` command: the device chirps its
buzzer and publishes a ``test`` event, which the service pages to every contact
as a TEST — the whole path a real alarm takes. The request answers JSON to the
page's script and redirects a plain form post back to the device page; both say
what the caregiver can expect (:data:`OUTCOMES`, one wording for both): a device
that is offline is not sent anything (its command would wait in the broker and
chirp whenever it came back), and a service without contacts says that no phone
will ring.

``POST /devices/<id>/self-test`` (the same checks) publishes the device's
``self_test`` command — read-only on the device, it never arms or touches the
relay — recorded as asked; ingest stores the answer, and the page shows it
(:mod:`caregiver.self_test`). ``GET /devices/<id>/self-test`` is the page's
script asking how it stands (JSON: the state and the result's HTML), every few
seconds while it waits; a check unanswered for
:data:`caregiver.self_test.ANSWER_TIMEOUT_S` says so there. No request waits for
the device.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver.auth import Session
from caregiver.routes.site import Site
from caregiver.self_test import view_of
from caregiver.storage.records import Device
from caregiver.story import device_link

OUTCOMES: dict[str, str] = {
    "sent": "Test alarm sent: listen for the chirp, and check that every phone got the TEST "
    "notification.",
    "sent-no-contacts": "Test alarm sent: listen for the chirp. No contacts are set up on "
    "this service, so no phone will be notified.",
    "offline": "The treadmill is offline, so the test alarm cannot reach it: nothing was "
    "sent. Try again when it is back online.",
}
"""What a test alarm's request came to, by the key the device page is redirected with."""

SELF_TEST_OUTCOMES: dict[str, str] = {
    "sent": "Checking the treadmill: its answer shows below in a few seconds.",
    "offline": "The treadmill is offline, so it cannot be checked: nothing was sent. Try "
    "again when it is back online.",
}
"""What a self-test's request came to, by the key the device page is redirected with."""


def routes(site: Site) -> list[BaseRoute]:
    backend = site.backend
    site.templates.env.globals["test_alarm_outcomes"] = OUTCOMES  # device.html says it too
    site.templates.env.globals["self_test_outcomes"] = SELF_TEST_OUTCOMES

    async def visible_device(request: Request, device_id: str) -> Device | None:
        """The device's row when this caregiver may see it, else None (answered as not found:
        a device of another account is not told apart from one that does not exist)."""
        if not site.may_see(request, device_id):
            return None
        return await run_in_threadpool(backend.store.device, device_id)

    @site.authed
    async def test_alarm(request: Request) -> Response:
        session: Session = request.state.session
        device_id = request.path_params["device_id"]
        device = await visible_device(request, device_id)
        if device is None:
            return site.not_found("device")
        wants_json = "application/json" in request.headers.get("accept", "")
        if device["availability"] == "offline":  # "unknown": never said; it may well hear
            if wants_json:
                return JSONResponse({"ok": False, "message": OUTCOMES["offline"]}, 409)
            return RedirectResponse(f"{device_link(device_id)}?test_alarm=offline", status_code=303)
        try:
            request_id = await run_in_threadpool(backend.test_alarm, device_id, session.username)
        except RuntimeError as exc:
            return PlainTextResponse(f"could not send the test alarm: {exc}", 503)
        outcome = "sent" if backend.config.contacts else "sent-no-contacts"
        if wants_json:
            return JSONResponse(
                {"ok": True, "request_id": request_id, "message": OUTCOMES[outcome]}
            )
        return RedirectResponse(f"{device_link(device_id)}?test_alarm={outcome}", status_code=303)

    def self_test_html(device_id: str) -> tuple[str, str]:
        """The device's self-test as of now: its state and the page's result fragment."""
        checked = view_of(backend.store.self_test(device_id), backend.clock())
        return checked.state, site.fragment("_self_test.html", st=checked)

    @site.authed
    async def self_test(request: Request) -> Response:
        session: Session = request.state.session
        device_id = request.path_params["device_id"]
        device = await visible_device(request, device_id)
        if device is None:
            return site.not_found("device")
        if request.method == "GET":
            state, html = await run_in_threadpool(self_test_html, device_id)
            return JSONResponse({"state": state, "html": html})
        wants_json = "application/json" in request.headers.get("accept", "")
        if device["availability"] == "offline":  # as the test alarm: it would wait for ever
            if wants_json:
                return JSONResponse({"ok": False, "message": SELF_TEST_OUTCOMES["offline"]}, 409)
            return RedirectResponse(
                f"{device_link(device_id)}?self_test=offline#self-test", status_code=303
            )
        try:
            request_id = await run_in_threadpool(backend.self_test, device_id, session.username)
        except RuntimeError as exc:
            return PlainTextResponse(f"could not ask for the self-test: {exc}", 503)
        if wants_json:
            state, html = await run_in_threadpool(self_test_html, device_id)
            return JSONResponse(
                {
                    "ok": True,
                    "request_id": request_id,
                    "message": SELF_TEST_OUTCOMES["sent"],
                    "state": state,
                    "html": html,
                }
            )
        return RedirectResponse(
            f"{device_link(device_id)}?self_test=sent#self-test", status_code=303
        )

    return [
        Route("/devices/{device_id}/test-alarm", test_alarm, methods=["POST"]),
        Route("/devices/{device_id}/self-test", self_test, methods=["GET", "POST"]),
    ]
