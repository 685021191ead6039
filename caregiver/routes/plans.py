"""A physio's plan for a device: a form on the dashboard that publishes the ``plan`` command.

``GET /devices/<id>/plan`` shows the plans and progressions sent to the device
with the device's answer to each (pending, accepted, refused with the reason
naming the field, or no answer: :mod:`caregiver.plan_answers`; the page's
script follows a pending one through ``GET /api/devices/<id>/plan-commands``)
and, to a physio, the presets and a custom plan's rows (direction, minutes,
speed note). ``POST`` (CSRF, only for a device this caregiver may see, and only
by a physio: a caregiver's is refused with 403) checks the plan with the wire
contract's own rules (:func:`core.protocol.plan.plan_from_builtins`: a bad one
is shown again with the problem naming the field, and nothing is sent) and
publishes it. The device stores it and uses it from the walker's next session
start; it never starts, stops or restarts anything (docs/sessions.md).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver.auth import Session
from caregiver.plan_answers import CommandView, view_of
from caregiver.routes.site import Site
from caregiver.walkers import for_plans, weeks_zone, who
from core.plan_presets import PRESETS, PROGRESSIONS
from core.progress import prescribed_in, week_of
from core.protocol.commands import (
    PROGRESSION_ACTIONS,
    AssignProgression,
    ChangeProgression,
    Command,
)
from core.protocol.plan import DEFAULT_SPEED, DIRECTIONS, Plan, PlanInvalid, plan_from_builtins
from core.protocol.walker import DEFAULT_WALKER_ID, is_walker_id

FORM_ROWS = 16
"""Interval rows the custom form offers (a plan may hold more: send it with the CLI)."""


@dataclass(frozen=True, slots=True)
class InForce:
    """What the plan page says is in force for everyone who may see it."""

    latest_plan: str | None
    """The plan the device's latest session walked (None: no session yet)."""
    prescribed: int
    """Sessions prescribed this week to :attr:`walker`, by their own progression's stage."""
    walker: str | None
    """Whom the two are about: the name of the walker of the latest session, the default
    walker's too on a shared treadmill; None for the default walker of a treadmill with one
    walker, or no session yet: "the walker"."""


def plan_from_form(form: FormData) -> Plan:
    """The plan a form describes: a preset by name, else the custom rows with minutes filled in.

    Field names in problems are the plan's (``intervals[1].minutes``), led by the form's
    row they came from as the page numbers it ("row 4: intervals[1].minutes: ..."): blank rows
    are left out, so ``intervals[1]`` is not row 2 when a row above it was left blank, and a
    physio reading "intervals[1]" against rows numbered from 1 looked at the wrong one.
    """
    preset = str(form.get("preset") or "")
    if preset:
        if preset not in PRESETS:
            raise PlanInvalid([f"preset: no preset called {preset!r}"])
        return PRESETS[preset]
    intervals: list[dict[str, Any]] = []
    rows: list[int] = []  # the form's row (from 1, as the page numbers them) of each kept
    not_numbers: list[str] = []
    for row, (direction, minutes, speed) in enumerate(
        zip(
            form.getlist("direction"),
            form.getlist("minutes"),
            form.getlist("speed"),
            strict=False,
        ),
        1,
    ):
        text = str(minutes).strip()
        if not text:
            continue
        rows.append(row)
        value = _minutes(text)
        if value is None:
            not_numbers.append(
                f"row {row}: intervals[{len(intervals)}].minutes: {text[:20]!r} is not a number "
                "of minutes (such as 2 or 2.5)"
            )
            value = 1.0  # the other rows are still checked, so every problem is said at once
        interval = {"direction": str(direction), "minutes": value}
        if str(speed).strip():
            interval["speed"] = str(speed).strip()
        intervals.append(interval)
    name = str(form.get("name") or "").strip()
    problems = [] if name else [f"name: give the plan a name, such as {_NAME_EXAMPLE!r}"]
    problems += not_numbers
    try:
        plan = plan_from_builtins({"name": name or _NAME_EXAMPLE, "intervals": intervals})
    except PlanInvalid as exc:
        problems += [_with_row(p, rows) for p in exc.problems]
    if problems:
        raise PlanInvalid(problems)
    return plan


_NAME_EXAMPLE = "Anna, week 3"
"""The form's placeholder, and the example a blank name's problem gives."""

_DECIMAL_COMMA = re.compile(r"\s*[0-9]*,[0-9]+\s*")


def _minutes(text: str) -> float | None:
    """A minutes cell as a number, None when it is none. A decimal comma is a decimal point:
    the field's ``inputmode="decimal"`` keypad on a phone in a German or French locale types
    "2,5", which was refused as "expected `float`, got `str`" (and a plan's minutes never
    run to thousands, so "1,000" is no thousands separator)."""
    if _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
    try:
        return float(text)
    except ValueError:
        return None


_INTERVAL = re.compile(r"^intervals\[(?P<n>[0-9]+)\]")


def _with_row(problem: str, rows: list[int]) -> str:
    """``problem`` led by the form row its ``intervals[n]`` came from (unchanged when it names
    no interval, such as the name or the plan's total)."""
    match = _INTERVAL.match(problem)
    if match is None or int(match["n"]) >= len(rows):
        return problem
    return f"row {rows[int(match['n'])]}: {problem}"


def walker_from_form(form: FormData) -> str:
    """The walker the form names (a walker id of the treadmill; blank: the default walker).
    The device refuses one it does not have; walkers are added only at the treadmill."""
    walker = str(form.get("walker") or DEFAULT_WALKER_ID).strip()
    if not is_walker_id(walker):
        raise PlanInvalid([f"walker: {walker[:40]!r} is not a walker id (retroguard walker list)"])
    return walker


def progression_command_from_form(form: FormData, by: str) -> Command:
    """A preset progression to assign (at a 1-based stage), or a hold, release or step back."""
    walker = walker_from_form(form)
    action = str(form.get("action") or "")
    if action:
        if action not in PROGRESSION_ACTIONS:
            raise PlanInvalid([f"action: must be one of {', '.join(PROGRESSION_ACTIONS)}"])
        return ChangeProgression(action, by, walker)
    name = str(form.get("progression") or "")
    if name not in PROGRESSIONS:
        raise PlanInvalid([f"progression: no preset progression called {name!r}"])
    progression = PROGRESSIONS[name]
    try:
        stage = int(str(form.get("stage") or "1"))
    except ValueError:
        stage = 0
    if not 1 <= stage <= len(progression.stages):
        raise PlanInvalid([f"stage: must be 1 to {len(progression.stages)}"])
    return AssignProgression(progression, stage - 1, by, walker)


def routes(site: Site) -> list[BaseRoute]:
    backend = site.backend

    async def visible(request: Request) -> str | None:
        device_id: str = request.path_params["device_id"]
        if not site.may_see(request, device_id) or (
            await run_in_threadpool(backend.store.device, device_id) is None
        ):
            return None
        return device_id

    def answers(device_id: str) -> list[CommandView]:
        now = backend.clock()
        return [view_of(c, now) for c in backend.store.sent_commands(device_id)]

    def in_force(device_id: str) -> InForce:
        """The plan of the device's latest session, and the sessions prescribed this week to
        its walker (as the device's progress message said for them:
        :func:`core.progress.prescribed_in`; progressions are per walker)."""
        zone = weeks_zone(backend.store, device_id, backend.config.zone)  # the device's week
        week = week_of(dt.datetime.fromtimestamp(backend.clock(), zone), zone)
        latest = backend.store.walk_sessions(device_id, 1)
        walker = latest[0].walker if latest else DEFAULT_WALKER_ID  # their prescription
        prescribed = prescribed_in(week, backend.store.prescribed_weeks(device_id, walker))
        # named as the dashboard names a walker (caregiver.walkers.named): the default walker
        # too on a shared treadmill, where "prescribed to the walker" said nobody's name
        name = who(backend.store, device_id, walker) if latest else None
        return InForce(latest[0].plan if latest else None, prescribed, name)

    def may_prescribe(request: Request) -> bool:
        session: Session = request.state.session
        return session.may_prescribe

    async def page(request: Request, device_id: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("form", {})
        return site.render(
            request,
            "plan.html",
            status_code=status,
            device_id=device_id,
            presets=list(PRESETS.values()),
            progressions=PROGRESSIONS,
            directions=DIRECTIONS,
            rows=FORM_ROWS,
            default_speed=DEFAULT_SPEED,
            sent=request.query_params.get("sent"),
            may_prescribe=may_prescribe(request),
            answers=await run_in_threadpool(answers, device_id),
            walkers=await run_in_threadpool(for_plans, backend.store, device_id),
            in_force=await run_in_threadpool(in_force, device_id),
            **context,
        )

    def forbidden() -> Response:
        return PlainTextResponse(
            "only a physio sets plans and progressions (retroguard caregiver set-role)", 403
        )

    @site.authed
    async def plan_page(request: Request) -> Response:
        device_id = await visible(request)
        if device_id is None:
            return site.not_found("device")
        return await page(request, device_id)

    @site.authed
    async def answers_json(request: Request) -> Response:
        device_id = await visible(request)
        if device_id is None:
            return JSONResponse({"error": "no such device"}, status_code=404)
        found = await run_in_threadpool(answers, device_id)
        return JSONResponse({"commands": [a.as_json() for a in found]})

    async def prescription(request: Request) -> tuple[str, FormData] | Response:
        """A physio's POST for a device they may see: the device and the form; else the
        answer (404, or 403 for anyone who may not prescribe)."""
        device_id = await visible(request)
        if device_id is None:
            return site.not_found("device")
        if not may_prescribe(request):
            return forbidden()
        return device_id, await request.form()

    @site.authed
    async def plan_post(request: Request) -> Response:
        session: Session = request.state.session
        allowed = await prescription(request)
        if isinstance(allowed, Response):
            return allowed
        device_id, form = allowed
        try:
            plan = plan_from_form(form)
            walker = walker_from_form(form)
        except PlanInvalid as exc:
            return await page(request, device_id, 400, problems=exc.problems, form=form)
        try:
            request_id = await run_in_threadpool(
                backend.assign_plan, device_id, plan, session.username, walker
            )
        except RuntimeError as exc:
            return PlainTextResponse(f"could not send the plan: {exc}", 503)
        return RedirectResponse(f"/devices/{device_id}/plan?sent={request_id}", status_code=303)

    @site.authed
    async def progression_post(request: Request) -> Response:
        session: Session = request.state.session
        allowed = await prescription(request)
        if isinstance(allowed, Response):
            return allowed
        device_id, form = allowed
        try:
            command = progression_command_from_form(form, session.username[:64] or "caregiver")
        except PlanInvalid as exc:
            return await page(request, device_id, 400, problems=exc.problems)
        try:
            request_id = await run_in_threadpool(backend.send_command, device_id, command)
        except RuntimeError as exc:
            return PlainTextResponse(f"could not send the progression: {exc}", 503)
        return RedirectResponse(f"/devices/{device_id}/plan?sent={request_id}", status_code=303)

    return [
        Route("/devices/{device_id}/plan", plan_page, methods=["GET"]),
        Route("/devices/{device_id}/plan", plan_post, methods=["POST"]),
        Route("/devices/{device_id}/progression", progression_post, methods=["POST"]),
        Route("/api/devices/{device_id}/plan-commands", answers_json, methods=["GET"]),
    ]
