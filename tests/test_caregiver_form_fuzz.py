"""The dashboard's forms and query strings: bad input gets a 4xx with a message, never a 500.

A seeded fuzzer (``random.Random``, fixed seed) mutates the real forms a physio posts —
plan, progression, acknowledge, test alarm — and the query strings pages read: fields
dropped, repeated, reordered, given odd values (empty, 100 kB, NaN, lookalike letters,
non-UTF-8 percent escapes, a lone surrogate), bodies cut short. Every answer must be below
500. Real service, real SQLite, real Mosquitto.

What it found: a CSRF token (form field, ``X-CSRF-Token`` header or login form) with a
character outside ASCII answered 500 (:func:`hmac.compare_digest` raises ``TypeError`` for
such a ``str``); it is now refused as a wrong token, 403.
"""

from __future__ import annotations

import http.client
import random
import re
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caregiver.routes import plans
from caregiver.service import CaregiverService
from tests.caregiver_support import (
    WAIT,
    Http,
    SimDevice,
    ack_fields,
    make_config,
    running_service,
)
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
ODD = (
    "", " ", "x" * 100_000, "nan", "inf", "-1", "0", "1e999", "9" * 5000, "\x00",
    "%", "%ZZ", "%FF", "%ED%A0%80", "alternate-2-2", "toward-10-minutes", "hold",
    "backward", "\uff42\uff41\uff43\uff4b", "default", "Default", "../..", "<script>",
    "latest", "0" * 32, "1", "13", "\u0663", " 2 ", "2.5", "\ud800", "\u00e9",
)  # fmt: skip
"""Field values: the ``%`` ones are sent as written (a malformed or non-UTF-8 escape)."""
REQUEST_HEAD_LIMIT = 16 * 1024
"""h11's ``max_incomplete_event_size`` (uvicorn's default): a longer request head is refused."""
FIELDS = ("preset", "name", "direction", "minutes", "speed", "walker", "stage", "action")
FIELDS += ("progression", "csrf", "incident", "seen", "alerts", "z")
FIELDS += ("schedule_name", "schedule", "schedule_stage")


def _quoted(value: str) -> str:
    if value.startswith("%"):
        return value
    return urllib.parse.quote_plus(value.encode("utf-8", "surrogatepass"))


@pytest.fixture
def dashboard(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[CaregiverService, Http]]:
    """The service with a device that fell, and Ann (a physio) logged in."""
    with running_service(make_config(mosquitto, tmp_path), background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        try:
            device.online()
            device.fall()
            assert service.ingestor.wait_for(lambda: service.ingestor.events_stored >= 1)
            ann = Http(service.port)
            assert ann.login() == 303
            yield service, ann
        finally:
            device.close()


def _post(ann: Http, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", ann.port, timeout=WAIT)
    cookies = "; ".join(f"{k}={v}" for k, v in ann.cookies.items())
    sent = {"accept": "text/html", "cookie": cookies, **(headers or {})}
    sent["content-type"] = "application/x-www-form-urlencoded"
    try:
        conn.request("POST", path, body=body, headers=sent)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_csrf_token_outside_ascii_is_refused_not_a_server_error(
    dashboard: tuple[CaregiverService, Http],
) -> None:
    """Before: 500 Internal Server Error for each of these."""
    _, ann = dashboard
    plan = f"/devices/{DEVICE}/plan"
    for token in ("\u00e9", "\uff42", "%ED%A0%80", "%FF"):
        assert _post(ann, plan, f"csrf={_quoted(token)}&preset=alternate-2-2".encode()) == 403
    status = _post(ann, plan, b"preset=alternate-2-2", {"x-csrf-token": "\u00e9"})
    assert status == 403
    fresh = Http(ann.port)
    fresh.request("GET", "/login")  # its login cookie
    status, _, body = fresh.request(
        "POST", "/login", {"csrf": "\u00e9", "username": "ann", "password": "x"}
    )
    assert status == 403 and "CSRF" in body


def test_mutated_dashboard_forms_and_queries_never_answer_500(
    dashboard: tuple[CaregiverService, Http],
) -> None:
    service, ann = dashboard
    _, _, page = ann.request("GET", f"/devices/{DEVICE}/plan")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    csrf = token[1]
    _, _, device_page = ann.request("GET", f"/devices/{DEVICE}")
    ack = list(ack_fields(device_page, f"/devices/{DEVICE}/ack").items())
    (event,) = service.store.events_for(DEVICE)
    forms: dict[str, list[list[tuple[str, str]]]] = {
        f"/devices/{DEVICE}/plan": [
            [("csrf", csrf), ("preset", "alternate-2-2")],
            [("csrf", csrf), ("name", "p"), ("direction", "backward"), ("minutes", "2"),
             ("speed", "0.5 mph"), ("direction", "rest"), ("minutes", "1"), ("speed", ""),
             ("walker", "default")],
        ],
        f"/devices/{DEVICE}/progression": [
            [("csrf", csrf), ("progression", "toward-10-minutes"), ("stage", "2")],
            [("csrf", csrf), ("action", "hold"), ("walker", "default")],
            [("csrf", csrf), ("schedule_name", "S"), ("schedule", "2/2 x7 | 2 weeks\n3/2"),
             ("schedule_stage", "2")],
        ],
        f"/devices/{DEVICE}/ack": [ack],
        f"/events/{event.id}/ack": [ack],
        f"/devices/{DEVICE}/test-alarm": [[("csrf", csrf)]],
    }  # fmt: skip
    queries = [
        f"/devices/{DEVICE}/plan?sent=", f"/devices/{DEVICE}/progress?walker=",
        f"/api/devices/{DEVICE}/progress?walker=", f"/api/devices/{DEVICE}/trends?walker=",
        f"/devices/{DEVICE}/report.csv?walker=", "/?open=", f"/devices/{DEVICE}?open=",
        "/login?next=", f"/events/{event.id}?open=", f"/api/events/{event.id}/plot?x=",
    ]  # fmt: skip
    rng = random.Random(18)
    answers: list[tuple[int, str, bytes]] = []
    for _ in range(150):
        path = rng.choice(list(forms))
        fields = list(rng.choice(forms[path]))
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(5)
            if op == 0 and fields:
                fields.pop(rng.randrange(len(fields)))
            elif op == 1 and fields:
                fields.append(fields[rng.randrange(len(fields))])
            elif op == 2 and fields:
                i = rng.randrange(len(fields))
                fields[i] = (fields[i][0], rng.choice(ODD))
            elif op == 3:
                fields.append((rng.choice(FIELDS), rng.choice(ODD)))
            else:
                fields.reverse()
        body = "&".join(f"{_quoted(k)}={_quoted(v)}" for k, v in fields).encode()
        if rng.random() < 0.1:
            body = body[: rng.randrange(len(body) + 1)]
        if rng.random() < 0.05:
            body += b"\xff\xfe&%"
        answers.append((_post(ann, path, body), path, body[:200]))
    for _ in range(50):
        path = rng.choice(queries) + _quoted(rng.choice(ODD))
        try:
            status, _, _ = ann.download("GET", path)
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            # uvicorn (h11) refuses a request head over its limit with a 400 and closes the
            # connection: a client still sending the 100 kB line may see the close as a reset
            # before it reads the 400 (it did on a loaded machine). Refused, not a 500.
            assert len(path) > REQUEST_HEAD_LIMIT, path[:200]
            status = 400
        answers.append((status, path[:200], b""))
    assert [a for a in answers if a[0] >= 500] == []
    assert {a[0] for a in answers} >= {303, 400, 403}  # accepted, refused, forged: all seen


def test_a_progression_form_is_read_off_the_event_loop(
    dashboard: tuple[CaregiverService, Http], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a progression form (a schedule pasted in: up to about 1.3 s of CPU for the
    worst a form may hold) ran on the event loop, where every other page, the live feed and
    the alarms waited for it. It runs on a worker thread now, as the routes' other blocking
    work; a refused form is refused all the same."""
    _, ann = dashboard
    readers: list[str] = []
    real = plans.progression_command_from_form

    def noting(form: Any, by: str) -> Any:
        readers.append(threading.current_thread().name)
        return real(form, by)

    monkeypatch.setattr(plans, "progression_command_from_form", noting)
    _, _, page = ann.request("GET", f"/devices/{DEVICE}/plan")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    url = f"/devices/{DEVICE}/progression"
    schedule = [
        ("schedule_name", "S"),
        ("schedule", "2/2 x7 | 2 weeks\n3/2"),
        ("schedule_stage", "0"),
    ]
    status, _, refused = ann.request("POST", url, [("csrf", token[1]), *schedule])
    assert status == 400 and "stage" in refused
    status, _, _ = ann.request("POST", url, [("csrf", token[1]), ("action", "hold")])
    assert status == 303
    assert len(readers) == 2
    assert "caregiver-web" not in readers  # uvicorn's thread runs the event loop
