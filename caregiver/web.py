"""The dashboard: a Starlette app with Jinja2 templates, a server-sent-events feed and uPlot.

:func:`create_app` assembles the route modules (:mod:`caregiver.routes`) around
one service seen through :class:`~caregiver.routes.site.Backend`, adds Starlette's
authentication middleware (the session cookie, :class:`~caregiver.routes.site.
SessionCookieAuth`), the security headers and the static files, and hands back
the live feed the service pushes its changes into. Nothing here imports the service.

Static files: ``static/public/`` (the login page's stylesheet) is served to
anyone, everything else under ``/static`` only to a caregiver. Which is which is
decided by the routing (two mounts), never by comparing paths: a path compared
inside a mount changed meaning between Starlette 0.x and 1.x, and the login page
lost its stylesheet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caregiver.routes import (
    acks,
    api,
    device_commands,
    health,
    login,
    pages,
    plans,
    progress,
    reports,
    stream,
)
from caregiver.routes.site import Backend, SessionCookieAuth, Site, caregiver_of
from caregiver.routes.stream import LiveFeed

STATIC = Path(__file__).resolve().parent / "static"
PUBLIC_STATIC = STATIC / "public"
"""Static files served without a session (the login page's stylesheet), at /static/public/."""

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True, slots=True)
class Dashboard:
    app: ASGIApp
    """The ASGI application uvicorn serves."""
    feed: LiveFeed
    """Where the service reports its changes (:meth:`LiveFeed.publish`, from any thread)."""


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


def create_app(backend: Backend) -> Dashboard:
    site = Site(backend)
    static = StaticFiles(directory=str(STATIC))

    async def caregivers_only(scope: Scope, receive: Receive, send: Send) -> None:
        if caregiver_of(Request(scope)) is None:
            response = PlainTextResponse("authentication required", status_code=401)
            await response(scope, receive, send)
            return
        await static(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        backend.hub.attach(asyncio.get_running_loop())
        try:
            yield
        finally:
            backend.hub.close()

    routes = [
        *login.routes(site),
        *health.routes(site),
        *pages.routes(site),
        *acks.routes(site),
        *device_commands.routes(site),
        *plans.routes(site),
        *progress.routes(site),
        *reports.routes(site),
        *api.routes(site),
        *stream.routes(site),
        Mount("/static/public", app=StaticFiles(directory=str(PUBLIC_STATIC))),
        Mount("/static", app=caregivers_only),
    ]
    middleware = [Middleware(AuthenticationMiddleware, backend=SessionCookieAuth(backend.accounts))]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    return Dashboard(SecurityHeaders(app), LiveFeed(site))
