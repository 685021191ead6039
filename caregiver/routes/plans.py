"""A physio's plan for a device: a form on the dashboard that publishes the ``plan`` command.

``GET /devices/<id>/plan`` is one walker's (``?walker=``, the page's walker select; else the
walker who walked last): what is in force for them (their latest plan, this week's
prescription, their progression as the device publishes it — its retained ``stage/<walker>``,
which a stage the device moved on by itself reaches too — else as the treadmill last answered
a command, their last sessions), and the plans and progressions sent to the device for that
walker with the device's answer to each (pending, accepted, refused with the reason naming the
field, or no answer: :mod:`caregiver.plan_answers`; the page's script follows a pending one
through ``GET /api/devices/<id>/plan-commands``) and, to a physio, the presets and a custom
plan's rows (direction, minutes, speed note). ``POST`` (CSRF, only for a device this caregiver
may see, and only by a physio: a caregiver's is refused with 403) checks the plan with the
wire contract's own rules (:func:`core.protocol.plan.plan_from_builtins`: a bad one is shown
again with the problem naming the field, and nothing is sent) and publishes it. The device
stores it and uses it from the walker's next session start; it never starts, stops or restarts
anything (docs/sessions.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver.auth import Session
from caregiver.plan_answers import CommandView, view_of
from caregiver.progress import session_walks, status_words
from caregiver.routes.site import Site
from caregiver.schedule_form import NAME_EXAMPLE as SCHEDULE_NAME_EXAMPLE
from caregiver.schedule_form import STAGES_EXAMPLE, schedule_command
from caregiver.storage import WalkSession
from caregiver.story import device_link
from caregiver.walkers import (
    UnknownWalker,
    by_name,
    for_plans,
    named,
    offered,
    walkers_shown,
    weeks_zone,
)
from core.plan_presets import PRESETS, PROGRESSIONS, stage_words
from core.progress import prescribed_in, utc_of, week_of
from core.protocol.commands import (
    PROGRESSION_ACTIONS,
    AssignProgression,
    ChangeProgression,
    Command,
)
from core.protocol.messages import StageMessage
from core.protocol.plan import (
    DEFAULT_SPEED,
    DIRECTIONS,
    IntervalWalk,
    Plan,
    PlanInvalid,
    plan_from_builtins,
    plan_words,
)
from core.protocol.walker import DEFAULT_WALKER_ID, is_walker_id

FORM_ROWS = 16
"""Interval rows the custom form offers (a plan may hold more: send it with the CLI)."""


LAST_SESSIONS = 5
"""The chosen walker's newest sessions the plan page lists (their progress page has them all)."""


@dataclass(frozen=True, slots=True)
class InForce:
    """What the plan page says is in force for the walker chosen (``?walker=``, else the one
    who walked last): a physio prescribing for one of five walkers of a treadmill reads that
    walker's plan, stage and sessions, not whoever walked the treadmill last."""

    walker: str
    """The walker's id: the forms' walker select has them chosen."""
    name: str
    """Their name as the selector offers it."""
    who: str | None
    """How the sentences name them (:func:`caregiver.walkers.named`): None for the default
    walker of a treadmill with one walker ("the walker"), the default walker's name too on a
    shared one."""
    walkers: list[tuple[str, str]]
    """Every walker of the device, ``(id, name)`` (:func:`caregiver.walkers.offered`), by name:
    the page's walker selector (:func:`caregiver.walkers.by_name`)."""
    sessions: list[WalkSession]
    """Their newest :data:`LAST_SESSIONS` sessions, newest first."""
    prescribed: int
    """Sessions prescribed to them this week (the treadmill's week), by their own progression's
    stage as the device said it (its stage message for them, else its progress message); 3
    without one."""
    stage: StageMessage | None
    """Their progression as the treadmill keeps it (its retained ``stage/<walker>``): the stage
    it moved on to by itself too. None: no progression, or a device that does not send it (the
    page then says the treadmill's last answer, :attr:`progression`)."""
    progression: CommandView | None
    """Their newest progression command the treadmill accepted (assign, hold, release, step
    back): its answer says the stage then; the treadmill moves it on by itself."""
    plan_since: CommandView | None
    """A plan set by hand for them, accepted after that progression answer (it holds the
    progression: its answer says so), else None."""
    walks: dict[str, tuple[IntervalWalk, ...]]
    """Session id -> the plan it walked (:func:`caregiver.progress.session_walks`): the rows
    and "in force" say it in words beside its name."""
    next_plan: CommandView | None = None
    """The plan the treadmill runs at their next session start when it is not the one their
    latest session walked (:func:`next_by_hand`): "in force" said only the latest session's
    plan, with this week's prescription after it, as if it were what they walk next."""
    answers: list[CommandView] = field(default_factory=list)
    """What was sent to the treadmill for them (and before commands kept their walker), newest
    first: the page's "Sent to the treadmill for ..." table."""

    @property
    def next_words(self) -> str:
        """What :attr:`next_plan` was, as its row says it ("plan alternate-2-2: ... (30 min in
        all)"), without the row's ", for Carla Díaz": the sentence names them."""
        if self.next_plan is None:
            return ""
        said = self.next_plan.sent.summary
        for suffix in (f", for {self.who}", f", for walker {self.walker}"):
            said = said.removesuffix(suffix)
        return said

    @property
    def latest_plan(self) -> str | None:
        """The plan their latest session walked (None: no session yet)."""
        return self.sessions[0].plan if self.sessions else None

    @property
    def latest_words(self) -> str:
        """What that plan prescribes, with this week's prescribed sessions ("" when its
        summary had no intervals)."""
        if not self.sessions:
            return ""
        # the week's prescription is the next plan's when another plan is next, not this one's
        per_week = None if self.next_plan is not None else self.prescribed
        return plan_words(self.walks.get(self.sessions[0].id, ()), per_week)

    @property
    def stage_words(self) -> str:
        """What the stage's plan prescribes ("" without a stage, or one not known here)."""
        return stage_words(self.stage) if self.stage is not None else ""


def began_here(session: WalkSession, received_at: float) -> float:
    """When ``session`` began by this service's clock: when its summary first reached the
    service (``received_at``) less how long it lasted by the treadmill's clock (a difference
    of two of its readings, right whether or not that clock was ever set; ``done_s`` for a
    session without an end). Its ``started_wall`` is the treadmill's own clock, days or
    months off before network time (a Pi after a power cut), and was compared with when the
    service recorded a plan's answer."""
    lasted = session.done_s
    if session.ended_wall:
        with contextlib.suppress(ValueError):  # an end it cannot read: what it walked
            lasted = (utc_of(session.ended_wall) - utc_of(session.started_wall)).total_seconds()
    return received_at - max(0.0, lasted)


def next_by_hand(
    theirs: list[CommandView],
    progression: CommandView | None,
    stage: StageMessage | None,
    began: float | None,
) -> CommandView | None:
    """The plan sent from this page that the treadmill runs at the walker's next session start,
    when their latest session did not walk it: their newest plan the treadmill accepted
    (``theirs``: their accepted commands, newest first), sent after their newest accepted
    progression command (``progression``), accepted after their latest session began
    (``began``, by this service's clock as its answer's time is: :func:`began_here`; None: no
    session yet; a session since walked it: what it walked says it), while their progression
    as the treadmill keeps it (``stage``) is none or held (a plan set by hand holds it; one
    moving on by itself again was released or assigned since: the stage's plan is next, and
    "in force" says it). None otherwise."""
    plan = next((c for c in theirs if c.sent.command == "plan"), None)
    if plan is None or plan.sent.answered_at is None:
        return None
    if progression is not None and progression.sent.sent_at > plan.sent.sent_at:
        return None
    if stage is not None and stage.status != "held":
        return None
    if began is not None and began >= plan.sent.answered_at:
        return None
    return plan


def plan_from_form(form: FormData) -> Plan:
    """The plan a form describes: a preset by name, else the custom rows with minutes filled in;
    both (a preset chosen and a custom plan's name or minutes typed) is refused, not guessed.

    Field names in problems are the plan's (``intervals[1].minutes``), led by the form's
    row they came from as the page numbers it ("row 4: intervals[1].minutes: ..."): blank rows
    are left out, so ``intervals[1]`` is not row 2 when a row above it was left blank, and a
    physio reading "intervals[1]" against rows numbered from 1 looked at the wrong one.
    """
    preset = str(form.get("preset") or "")
    if preset:
        if preset not in PRESETS:
            raise PlanInvalid([f"preset: no preset called {preset!r}"])
        typed = str(form.get("name") or "").strip() or any(
            str(m).strip() for m in form.getlist("minutes")
        )
        if typed:  # the preset sent and the rows dropped without a word: ask which is meant
            raise PlanInvalid(
                [
                    f"preset: {preset} is chosen and a custom plan is typed below: choose "
                    "'(a custom plan, below)' to send the custom plan, or clear its name and "
                    "minutes to send the preset"
                ]
            )
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
    if not intervals:  # said as the form has it: the plan's "intervals" is no field here
        problems.append(
            "rows: no row has its minutes filled in: give each interval's minutes, or choose "
            "a preset"
        )
        raise PlanInvalid(problems)
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
        raise PlanInvalid(
            [f"walker: {walker[:40]!r} is not a walker id: choose one at the top of the page"]
        )
    return walker


def progression_command_from_form(form: FormData, by: str) -> Command:
    """A preset progression to assign (at a 1-based stage), the physio's own schedule typed a
    stage a line (:mod:`caregiver.schedule_form`), or a hold, release or step back."""
    walker = walker_from_form(form)
    if "schedule" in form:
        return schedule_command(
            str(form.get("schedule_name") or ""),
            str(form.get("schedule") or ""),
            str(form.get("schedule_stage") or ""),
            by,
            walker,
        )
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

    def answers(device_id: str, walker: str | None = None) -> list[CommandView]:
        """What was sent to the device, newest first (``walker``: for them; see
        :meth:`caregiver.storage.Store.sent_commands`), as the page says it."""
        now = backend.clock()
        device = backend.store.device(device_id)
        # offline since it was last heard (its last message before the broker said it was
        # offline; never heard: all along): what was sent since never reached it (its
        # session is clean: plan_answers.view_of)
        offline = device is not None and device["availability"] == "offline"
        since = (device["last_seen"] or 0.0) if device and offline else None
        sent = backend.store.sent_commands(device_id, walker=walker)
        # each answer naming its walker as the page does, by the names read now (none
        # readable: by the id the treadmill said)
        names = walkers_shown(backend.store, device_id) if sent else []
        return [view_of(c, now, offline_since=since, who=named(c.walker, names)) for c in sent]

    def in_force(device_id: str, asked: str | None) -> InForce:
        """What is in force for the walker ``asked`` (else the one who walked last): their
        latest sessions, the sessions prescribed to them this week (as the device's stage or
        progress message said for them: :func:`core.progress.prescribed_in`; progressions are
        per walker), their progression as the device publishes it and as the treadmill last
        answered; :class:`UnknownWalker` for a walker the device does not have."""
        store = backend.store
        walkers = offered(store, device_id)
        walker, name = walkers.pick(asked)
        zone = weeks_zone(store, device_id, backend.config.zone)  # the device's week
        week = week_of(dt.datetime.fromtimestamp(backend.clock(), zone), zone)
        prescribed = prescribed_in(week, store.prescribed_weeks(device_id, walker))
        # read for them: on a shared treadmill another walker's newest commands would hide
        # theirs among the device's newest few
        mine = answers(device_id, walker)
        theirs = [c for c in mine if c.sent.walker == walker and c.state == "accepted"]
        progression = next((c for c in theirs if c.sent.command == "progression"), None)
        plan_since = next(
            (
                c
                for c in theirs
                if c.sent.command == "plan"
                and progression is not None
                and c.sent.sent_at > progression.sent.sent_at
            ),
            None,
        )
        sessions = store.walk_sessions(device_id, LAST_SESSIONS, walker)
        stage = store.walker_stage(device_id, walker)
        # when their latest session began by this service's clock, as the answers' times are
        received = store.walk_session_received(sessions[0].id) if sessions else None
        began = began_here(sessions[0], received) if sessions and received is not None else None
        return InForce(
            walker,
            name,
            # named as the dashboard names a walker: the default walker too on a shared
            # treadmill, where "prescribed to the walker" said nobody's name
            named(walker, walkers.walkers),
            by_name(walkers.walkers),
            sessions,
            prescribed,
            stage,
            progression,
            plan_since,
            session_walks(store.walk_session_payloads(device_id, LAST_SESSIONS, walker)),
            next_by_hand(theirs, progression, stage, began),
            mine,
        )

    def may_prescribe(request: Request) -> bool:
        session: Session = request.state.session
        return session.may_prescribe

    async def page(
        request: Request,
        device_id: str,
        status: int = 200,
        walker: str | None = None,
        **context: Any,
    ) -> Response:
        """The plan page for ``walker`` (else ``?walker=``, else the one who walked last);
        404 for a walker the device does not have (:meth:`Site.missing_walker`)."""
        context.setdefault("form", {})
        just_sent = request.query_params.get("sent")
        # after a send (?sent=<request id>), the walker it was for: their plan in force
        asked = walker or request.query_params.get("walker")
        if asked is None and just_sent:
            sent = await run_in_threadpool(backend.store.sent_commands, device_id)
            asked = next((c.walker for c in sent if c.request_id == just_sent), None)
        try:
            shown = await run_in_threadpool(in_force, device_id, asked)
        except UnknownWalker:
            if walker is None:  # a link's ?walker=: not another walker's plan in their place
                return site.missing_walker(request, device_id, str(asked), "plan")
            # a refused form's walker the device does not have: its problems are what to show
            shown = await run_in_threadpool(in_force, device_id, None)
        return site.render(
            request,
            "plan.html",
            status_code=status,
            device_id=device_id,
            presets=list(PRESETS.values()),
            progressions=PROGRESSIONS,
            schedule_name_example=SCHEDULE_NAME_EXAMPLE,
            stages_example=STAGES_EXAMPLE,
            directions=DIRECTIONS,
            rows=FORM_ROWS,
            default_speed=DEFAULT_SPEED,
            sent=request.query_params.get("sent"),
            may_prescribe=may_prescribe(request),
            # what was sent for the walker shown (and any command sent before commands kept
            # their walker, schema 23: whose it was is not known); every walker's were listed
            answers=shown.answers,
            walkers=await run_in_threadpool(for_plans, backend.store, device_id),
            in_force=shown,
            status_words={s.id: status_words(s) for s in shown.sessions},
            walker_query="?" + urlencode({"walker": shown.walker}),
            **context,
        )

    def forbidden() -> Response:
        return PlainTextResponse(
            "Only a physio sets plans and progression schedules. Ask whoever runs this dashboard "
            "to give your account the physio role.",
            403,
        )

    @site.authed
    async def plan_page(request: Request) -> Response:
        device_id = await visible(request)
        if device_id is None:
            return site.missing_page(request, "treadmill")
        return await page(request, device_id)

    @site.authed
    async def answers_json(request: Request) -> Response:
        device_id = await visible(request)
        if device_id is None:
            return JSONResponse({"error": "no such device"}, status_code=404)
        asked = request.query_params.get("walker")
        if asked is None:  # every walker's newest (an address without one: a page from before)
            found = await run_in_threadpool(answers, device_id)
            return JSONResponse({"commands": [a.as_json() for a in found]})
        # ``?walker=``: their newest, as their page lists them (the plan page's script asks
        # this): the device's newest over every walker left out a row still pending for them
        # after twenty sent since for another, and their page waited on it for good
        try:
            walker, _ = await run_in_threadpool(
                lambda: offered(backend.store, device_id).pick(asked)
            )
        except UnknownWalker:
            return JSONResponse({"error": f"no walker {asked[:40]!r} on this device"}, 404)
        found = await run_in_threadpool(answers, device_id, walker)
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
            walker = walker_from_form(form)
        except PlanInvalid as exc:
            return await page(request, device_id, 400, problems=exc.problems, form=form)
        try:
            plan = plan_from_form(form)
        except PlanInvalid as exc:  # shown again for the walker it was for
            return await page(request, device_id, 400, walker, problems=exc.problems, form=form)
        try:
            request_id = await run_in_threadpool(
                backend.assign_plan, device_id, plan, session.username, walker
            )
        except RuntimeError as exc:
            return PlainTextResponse(f"could not send the plan: {exc}", 503)
        return RedirectResponse(
            f"{device_link(device_id, '/plan')}?sent={request_id}", status_code=303
        )

    @site.authed
    async def progression_post(request: Request) -> Response:
        session: Session = request.state.session
        allowed = await prescription(request)
        if isinstance(allowed, Response):
            return allowed
        device_id, form = allowed
        try:
            # off the loop: a schedule pasted in is up to about 1.3 s of CPU to read (the
            # worst a form may hold), which every page, the live feed and the alarms waited for
            command = await run_in_threadpool(
                progression_command_from_form, form, session.username[:64] or "caregiver"
            )
        except PlanInvalid as exc:
            asked = str(form.get("walker") or "").strip()  # shown again for that walker
            walker = asked if is_walker_id(asked) else None
            # shown again as typed, for that walker: a stage field back at 1 after "stage:
            # must be 1 to 9" put the walker at stage 1 at the physio's next press
            return await page(
                request,
                device_id,
                400,
                walker,
                problems=exc.problems,
                problems_about="progression schedule",
                form=form,
            )
        try:
            request_id = await run_in_threadpool(backend.send_command, device_id, command)
        except RuntimeError as exc:
            return PlainTextResponse(f"could not send the progression: {exc}", 503)
        return RedirectResponse(
            f"{device_link(device_id, '/plan')}?sent={request_id}", status_code=303
        )

    return [
        Route("/devices/{device_id}/plan", plan_page, methods=["GET"]),
        Route("/devices/{device_id}/plan", plan_post, methods=["POST"]),
        Route("/devices/{device_id}/progression", progression_post, methods=["POST"]),
        Route("/api/devices/{device_id}/plan-commands", answers_json, methods=["GET"]),
    ]
