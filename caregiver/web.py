"""The dashboard: a Starlette app with Jinja2 templates, a server-sent-events feed and uPlot.

Everything but the login page (and its stylesheet) needs a session; pages
redirect to the login, anything else gets 401. Every POST needs the session's
CSRF token (form field ``csrf`` or header ``X-CSRF-Token``), the login form a
double-submit token. Cards and timeline rows are rendered by the same Jinja
templates for the first page load and for the live feed (``/stream``), so the
browser only swaps HTML fragments in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caregiver import plot
from caregiver.alerts import ALERT_TYPES
from caregiver.auth import Session, same_token
from caregiver.progress import progress_view
from caregiver.storage import Device

if TYPE_CHECKING:
    from caregiver.service import CaregiverService

HERE = Path(__file__).resolve().parent
COOKIE = "rg_session"
LOGIN_COOKIE = "rg_login"
PUBLIC_STATIC = {"/app.css"}
"""Static files served without a session (the login page's stylesheet only)."""

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

Handler = Callable[[Request], Awaitable[Response]]


class Hub:
    """Fans change messages out to every open ``/stream`` (thread-safe :meth:`publish`)."""

    def __init__(self, max_queue: int = 1000) -> None:
        self._clients: set[asyncio.Queue[str | None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._max = max_queue

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, message: dict[str, Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        text = json.dumps(message, separators=(",", ":"))
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self._fanout, text)

    def _fanout(self, text: str | None) -> None:
        for queue in list(self._clients):
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:  # a stalled browser: drop it, it reconnects and reloads
                self._clients.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)

    def close(self) -> None:
        """End every stream (from the event loop)."""
        self._fanout(None)

    def shutdown(self) -> None:
        """End every stream (from any thread), so the server can stop without waiting."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._fanout, None)

    async def stream(self) -> AsyncIterator[str]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(self._max)
        self._clients.add(queue)
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    text = await asyncio.wait_for(queue.get(), timeout=15.0)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if text is None:
                    return
                yield f"data: {text}\n\n"
        finally:
            self._clients.discard(queue)

    @property
    def clients(self) -> int:
        return len(self._clients)


class SecurityHeaders:
    """Adds CSP, no-sniff, no-framing and no-store (health data) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(service: CaregiverService) -> ASGIApp:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.globals["device_name"] = service.alerting.device_name
    env.filters["level"] = card_level
    config = service.config
    accounts = service.accounts
    limiter = service.limiter

    def session_of(request: Request) -> Session | None:
        return accounts.session(request.cookies.get(COOKIE))

    def authed(handler: Handler) -> Handler:
        async def wrapper(request: Request) -> Response:
            session = session_of(request)
            if session is None:
                wants_html = "text/html" in request.headers.get("accept", "")
                if request.method == "GET" and wants_html:
                    return RedirectResponse(
                        "/login?next=" + quote(request.url.path, safe="/"), status_code=303
                    )
                return PlainTextResponse("authentication required", status_code=401)
            if request.method not in ("GET", "HEAD"):
                token = request.headers.get("x-csrf-token")
                if token is None:
                    form = await request.form()
                    value = form.get("csrf")
                    token = value if isinstance(value, str) else None
                if not same_token(token, session.csrf):
                    return PlainTextResponse("missing or wrong CSRF token", status_code=403)
            request.state.session = session
            return await handler(request)

        return wrapper

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        session: Session | None = getattr(request.state, "session", None)
        context.setdefault("user", session.username if session else None)
        context.setdefault("csrf", session.csrf if session else "")
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    # ------------------------------------------------------------ login

    def login_page(request: Request, error: str = "", status_code: int = 200) -> Response:
        token = secrets.token_urlsafe(32)
        nxt = request.query_params.get("next", "/")
        response = render(
            request, "login.html", status_code, login_csrf=token, error=error, next=_safe_next(nxt)
        )
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=config.server.secure_cookies,
            max_age=3600,
        )
        return response

    async def login_get(request: Request) -> Response:
        if session_of(request) is not None:
            return RedirectResponse("/", status_code=303)
        return login_page(request)

    async def login_post(request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username", ""))[:64]
        password = str(form.get("password", ""))[:1024]
        if not same_token(str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE)):
            return PlainTextResponse("missing or wrong CSRF token", status_code=403)
        client = request.client.host if request.client else "?"
        keys = (f"user:{username.lower()}", f"ip:{client}")
        if limiter.blocked(*keys):
            return login_page(
                request, "Too many failed attempts. Wait a few minutes and try again.", 429
            )
        if not accounts.verify(username, password):
            limiter.failed(*keys)
            return login_page(request, "Wrong user name or password.", 401)
        limiter.succeeded(keys[0])
        token, _ = accounts.create_session(username, config.server.session_hours)
        response = RedirectResponse(_safe_next(str(form.get("next", "/"))), status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=config.server.secure_cookies,
            max_age=int(config.server.session_hours * 3600),
        )
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @authed
    async def logout(request: Request) -> Response:
        accounts.end_session(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # ------------------------------------------------------------ pages

    @authed
    async def fleet(request: Request) -> Response:
        devices = service.store.devices()
        events = service.store.recent_events(ALERT_TYPES, limit=10)
        return render(request, "fleet.html", devices=devices, events=events)

    @authed
    async def device_page(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        device = service.store.device(device_id)
        if device is None:
            return PlainTextResponse("no such device", status_code=404)
        events = service.store.events_for(device_id)
        return render(request, "device.html", device=device, events=events)

    @authed
    async def progress_page(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        device = service.store.device(device_id)
        if device is None:
            return PlainTextResponse("no such device", status_code=404)
        sessions = service.store.walk_sessions(device_id)
        view = progress_view(sessions, service.clock())
        return render(request, "progress.html", device=device, sessions=sessions, **view)

    @authed
    async def progress_json(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        if service.store.device(device_id) is None:
            return JSONResponse({"error": "no such device"}, status_code=404)
        view = progress_view(service.store.walk_sessions(device_id), service.clock())
        return JSONResponse(view["chart"])

    @authed
    async def event_page(request: Request) -> Response:
        event = service.store.event(request.path_params["event_id"])
        if event is None:
            return PlainTextResponse("no such event", status_code=404)
        return render(request, "event.html", event=event)

    @authed
    async def event_plot(request: Request) -> Response:
        window = service.store.imu_window(request.path_params["event_id"])
        if not plot.valid_window(window):
            return JSONResponse({"error": "this event carries no IMU window"}, status_code=404)
        return JSONResponse(plot.series(window))

    @authed
    async def fleet_json(request: Request) -> Response:
        return JSONResponse({"devices": service.store.devices()})

    @authed
    async def stream(request: Request) -> Response:
        return StreamingResponse(
            service.hub.stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    @authed
    async def ack_event(request: Request) -> Response:
        session: Session = request.state.session
        event = service.store.event(request.path_params["event_id"])
        if event is None:
            return PlainTextResponse("no such event", status_code=404)
        try:
            service.acknowledge(event.device_id, event.id, session.username)
        except RuntimeError as exc:
            return PlainTextResponse(f"could not send the acknowledgement: {exc}", 503)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"ok": True})
        return RedirectResponse(f"/events/{event.id}", status_code=303)

    @authed
    async def ack_device(request: Request) -> Response:
        session: Session = request.state.session
        device_id = request.path_params["device_id"]
        if service.store.device(device_id) is None:
            return PlainTextResponse("no such device", status_code=404)
        try:
            service.acknowledge(device_id, None, session.username)
        except RuntimeError as exc:
            return PlainTextResponse(f"could not send the acknowledgement: {exc}", 503)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"ok": True})
        return RedirectResponse(f"/devices/{device_id}", status_code=303)

    static = StaticFiles(directory=str(HERE / "static"))

    async def guarded_static(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if scope.get("path", "") not in PUBLIC_STATIC and session_of(request) is None:
            response = PlainTextResponse("authentication required", status_code=401)
            await response(scope, receive, send)
            return
        await static(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.hub.attach(asyncio.get_running_loop())
        service.web_started.set()
        try:
            yield
        finally:
            service.hub.close()

    routes = [
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", fleet, methods=["GET"]),
        Route("/devices/{device_id}", device_page, methods=["GET"]),
        Route("/devices/{device_id}/ack", ack_device, methods=["POST"]),
        Route("/devices/{device_id}/progress", progress_page, methods=["GET"]),
        Route("/api/devices/{device_id}/progress", progress_json, methods=["GET"]),
        Route("/events/{event_id}", event_page, methods=["GET"]),
        Route("/events/{event_id}/ack", ack_event, methods=["POST"]),
        Route("/api/events/{event_id}/plot", event_plot, methods=["GET"]),
        Route("/api/fleet", fleet_json, methods=["GET"]),
        Route("/stream", stream, methods=["GET"]),
        Mount("/static", app=guarded_static),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    service.render_fragment = lambda name, **ctx: env.get_template(name).render(**ctx)
    return SecurityHeaders(app)


def _safe_next(value: str) -> str:
    """Only a local path (never ``//host`` or a URL) may follow a login."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def card_level(device: Device) -> str:
    """The card colour: danger (tripped, or an open fall alert), warn, ok, idle or offline."""
    last = device["last_event"]
    if device["state"] == "TRIPPED" or (
        device["open_alerts"] and last is not None and last["severity"] == "critical"
    ):
        return "danger"
    if device["availability"] == "offline":
        return "offline"
    if device["state"] == "FAULT" or device["open_alerts"]:
        return "warn"
    if device["state"] == "ARMED":
        return "ok"
    return "idle"
