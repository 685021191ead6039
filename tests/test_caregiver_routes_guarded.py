"""Every route of the dashboard, as the app lists them, is guarded: a new one cannot slip out.

For each route and method (read from the running app, not from a list kept here): without
a login a phone's page request is sent to the login page and anything else gets 401 — never
a server error; every state-changing request without the session's CSRF token is refused
(403); and a caregiver limited to one treadmill gets 404 for every route naming another
treadmill, or an event of it, with nothing of it in the answer and no command sent to it.
Real service, real SQLite, real Mosquitto.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import Mount, Route

from caregiver.service import CaregiverService
from tests.caregiver_support import Http, SimDevice, make_config, running_service
from tools.broker import Mosquitto

PUBLIC = {"/login", "/healthz", "/healthz/receiving"}
"""Routes anyone may reach: the login itself and the health checks (which name no one)."""
KNOWN_PARAMETERS = {"device_id", "event_id"}
PHONE_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
"""What a phone's browser asks for when a caregiver taps a link in a notification."""
HIDDEN, SHOWN = "treadmill-1", "treadmill-2"


def _routes(service: CaregiverService) -> list[tuple[str, str, set[str]]]:
    """(path, method, parameters) of every route the dashboard serves (HEAD goes with GET)."""
    app = service.app.app  # type: ignore[attr-defined]  # inside the security headers
    found: list[tuple[str, str, set[str]]] = []
    for route in app.routes:
        if isinstance(route, Mount):
            continue  # static files: below
        assert isinstance(route, Route), route
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            found.append((route.path, method, set(route.param_convertors)))
    return found


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[CaregiverService]:
    with running_service(make_config(mosquitto, tmp_path), background=False) as running:
        yield running


def _path(path: str, device_id: str, event_id: str) -> str:
    return path.replace("{device_id}", device_id).replace("{event_id}", event_id)


def test_every_route_needs_a_login_a_csrf_token_and_a_device_the_caregiver_may_see(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    routes = _routes(service)
    guarded = [r for r in routes if r[0] not in PUBLIC]
    assert len(guarded) >= 20 and any(m == "POST" for _, m, _ in guarded)
    for path, _, parameters in guarded:
        assert parameters <= KNOWN_PARAMETERS, f"{path}: say here what its parameters name"

    service.accounts.add_user("bob", "another good password")
    assert service.accounts.limit("bob", [SHOWN])
    hidden_device, shown_device = SimDevice(mosquitto, HIDDEN), SimDevice(mosquitto, SHOWN)
    for device in (hidden_device, shown_device):
        device.online()
    hidden, shown = hidden_device.fall(), shown_device.fall()
    store = service.store
    assert service.ingestor.wait_for(
        lambda: store.event(hidden["id"]) is not None and store.event(shown["id"]) is not None
    )

    anonymous = Http(service.port)
    for path, method, _ in guarded:
        url = _path(path, HIDDEN, hidden["id"])
        status, headers, body = anonymous.request(
            method, url, {} if method != "GET" else None, headers={"accept": PHONE_ACCEPT}
        )
        if method == "GET":
            assert status == 303 and headers["location"].startswith("/login"), (url, status)
        else:
            assert status == 401 and "authentication required" in body, (method, url, status)
    status, _, _ = anonymous.request("GET", "/static/app.js", headers={"accept": PHONE_ACCEPT})
    assert status == 401
    status, _, login_page = anonymous.request("GET", "/login", headers={"accept": PHONE_ACCEPT})
    assert status == 200 and 'name="password"' in login_page

    ann = Http(service.port)
    assert ann.login() == 303
    for path, method, _ in guarded:
        if method == "GET":
            continue
        url = _path(path, SHOWN, shown["id"])
        for form in ({}, {"csrf": "not the token"}):
            status, _, body = ann.request(method, url, form)
            assert status == 403 and "CSRF" in body, (method, url, form, status)
    assert ann.request("GET", "/", headers={"accept": PHONE_ACCEPT})[0] == 200  # still in

    bob = Http(service.port)
    assert bob.login("bob", "another good password") == 303
    _, _, page = bob.request("GET", f"/devices/{SHOWN}")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    naming = [(p, m) for p, m, parameters in guarded if parameters]
    assert len(naming) >= 15
    for path, method in naming:
        url = _path(path, HIDDEN, hidden["id"])
        form = {"csrf": token[1]} if method != "GET" else None
        status, _, body = bob.request(method, url, form, headers={"accept": "*/*"})
        assert status == 404, (method, url, status)
        assert HIDDEN not in body and "Dad" not in body and "impact" not in body, url
    for path, method in naming:  # his own treadmill's pages are there: the 404s are not blanket
        if method == "GET":
            url = _path(path, SHOWN, shown["id"])
            status = bob.download(method, url, headers={"accept": "*/*"})[0]  # a PDF too
            assert status != 404, (url, status)
    assert store.event(hidden["id"]).acked_by is None  # type: ignore[union-attr]
    assert hidden_device.commands == []
    hidden_device.close()
    shown_device.close()
