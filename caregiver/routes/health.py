"""``GET /healthz`` and ``GET /healthz/receiving``: whether this instance works, and whether
falls reach it, for a load balancer or an uptime monitor (:mod:`caregiver.health` says why
two). No login; 200 when the answer is yes, 503 when no, the same JSON body either way."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from caregiver.health import Health
from caregiver.routes.site import Site


def _answer(health: Health, ok: bool) -> Response:
    body = msgspec.json.encode({"status": health.status, **msgspec.structs.asdict(health)})
    return Response(body, status_code=200 if ok else 503, media_type="application/json")


def routes(site: Site) -> list[BaseRoute]:
    backend = site.backend

    async def healthz(request: Request) -> Response:
        """Alive: every part that shows or pages an alert turns (this answer is the
        dashboard's); a load balancer's question."""
        health = backend.health()
        return _answer(health, health.alive)

    async def receiving(request: Request) -> Response:
        """Alive, receiving from the broker and storing what it receives: falls reach
        caregivers; an uptime monitor's question."""
        health = backend.health()
        return _answer(health, health.reaching)

    return [Route("/healthz", healthz), Route("/healthz/receiving", receiving)]
