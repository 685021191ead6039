"""What every route shares: the service interface, templates, the session and CSRF checks.

Everything but the login page (and its stylesheet) needs a session; pages
redirect to the login, anything else gets 401. Every POST needs the session's
CSRF token (form field ``csrf`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from caregiver import story
from caregiver.auth import Accounts, LoginThrottle, Session, same_token
from caregiver.config import CaregiverConfig
from caregiver.hub import Hub
from caregiver.storage import Store

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
COOKIE = "rg_session"
LOGIN_COOKIE = "rg_login"

Handler = Callable[[Request], Awaitable[Response]]


class Backend(Protocol):
    """What the dashboard needs from the caregiver service (which the web layer never imports:
    :class:`caregiver.service.CaregiverService` is one)."""

    @property
    def config(self) -> CaregiverConfig: ...

    @property
    def store(self) -> Store: ...

    @property
    def accounts(self) -> Accounts: ...

    @property
    def limiter(self) -> LoginThrottle: ...

    @property
    def hub(self) -> Hub: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    def device_name(self, device_id: str) -> str: ...

    def acknowledge(self, device_id: str, event_id: str | None, by: str) -> None:
        """Send the device's ack command and record it (network and disk: not on the loop)."""


class Site:
    """The templates and the request checks, bound to one service."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        self.templates.env.globals["device_name"] = backend.device_name
        self.templates.env.globals["card_story"] = lambda d: story.card(d, backend.clock())
        self.templates.env.filters["iso"] = iso_utc
        self.templates.env.globals["incident_headline"] = lambda i: story.headline(
            i, f"/events/{i.first_event_id}"
        )

    async def session_of(self, request: Request) -> Session | None:
        return await run_in_threadpool(self.backend.accounts.session, request.cookies.get(COOKIE))

    def authed(self, handler: Handler) -> Handler:
        """Only with a session (pages redirect to the login), and POSTs only with its CSRF
        token; the handler finds the session in ``request.state.session``."""

        async def wrapper(request: Request) -> Response:
            session = await self.session_of(request)
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

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> Response:
        session: Session | None = getattr(request.state, "session", None)
        context.setdefault("user", session.username if session else None)
        context.setdefault("csrf", session.csrf if session else "")
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)

    def fragment(self, name: str, **context: Any) -> str:
        """A partial template (a card, a timeline row) as the live feed sends it."""
        return self.templates.env.get_template(name).render(**context)


def iso_utc(epoch: float) -> str:
    """An epoch time as ISO 8601 UTC, for a ``<time class="local">`` the page's script shows
    in the reader's time zone."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")
