"""Signing in and out.

The login form has no session yet, so it is protected by a double-submit token
(a cookie and a form field that must match). Failed logins count against the
account and the client address (:class:`caregiver.auth.LoginThrottle`, kept on
the event loop); the Argon2 check and the session row run in a worker thread.
"""

from __future__ import annotations

import math
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver.auth import same_token
from caregiver.routes.site import COOKIE, LOGIN_COOKIE, Site, caregiver_of


def routes(site: Site) -> list[BaseRoute]:
    backend = site.backend
    server = backend.config.server
    accounts = backend.accounts
    limiter = backend.limiter

    def login_page(
        request: Request,
        error: str = "",
        status_code: int = 200,
        *,
        nxt: str | None = None,
        username: str = "",
    ) -> Response:
        """The form; after a refused attempt (``error``) with the page it leads to (``nxt``,
        the form's: a POST has no ?next=) and the user name kept. A caregiver who opened a
        notification's link and mistyped the password was taken to the dashboard, not the
        alert, and typed the name again."""
        token = secrets.token_urlsafe(32)
        nxt = request.query_params.get("next", "/") if nxt is None else nxt
        response = site.render(
            request,
            "login.html",
            status_code,
            login_csrf=token,
            error=error,
            next=safe_next(nxt),
            username=username,
        )
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=server.secure_cookies,
            max_age=3600,
        )
        return response

    async def login_get(request: Request) -> Response:
        if caregiver_of(request) is not None:
            return RedirectResponse("/", status_code=303)
        return login_page(request)

    async def login_post(request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username", ""))[:64]
        password = str(form.get("password", ""))[:1024]
        if not same_token(str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE)):
            return PlainTextResponse("missing or wrong CSRF token", status_code=403)
        client = request.client.host if request.client else "?"
        account = username.lower()
        again = {"nxt": str(form.get("next", "/")), "username": username}
        wait = limiter.wait_s(account, client)
        if wait > 0:
            return login_page(
                request,
                f"Too many failed attempts for this account from here. Try again in "
                f"{math.ceil(wait)} s.",
                429,
                **again,
            )

        def sign_in() -> str | None:
            if not accounts.verify(username, password):
                return None
            token, _ = accounts.create_session(username, server.session_hours)
            return token

        token = await run_in_threadpool(sign_in)
        if token is None:
            limiter.failed(account, client)
            return login_page(request, "Wrong user name or password.", 401, **again)
        limiter.succeeded(account, client)
        response = RedirectResponse(safe_next(str(form.get("next", "/"))), status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=server.secure_cookies,
            max_age=int(server.session_hours * 3600),
        )
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @site.authed
    async def logout(request: Request) -> Response:
        await run_in_threadpool(accounts.end_session, request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    return [
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def safe_next(value: str) -> str:
    """Only a local path (never ``//host`` or a URL) may follow a login."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"
