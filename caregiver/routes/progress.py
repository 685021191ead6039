"""A walker's progress: the guided sessions against the weekly goal and the weekly trends of
balance and gait, as a page and as the charts' JSON (figures from
:func:`caregiver.progress.progress_view` and :func:`caregiver.trends.trends`).

A shared treadmill has several walkers: each page and chart is one walker's (``?walker=``,
a walker id; the page has a selector offering every walker on the device's roster and any seen
in sessions, :mod:`caregiver.walkers`), never a mix; without one, the walker who walked last;
a walker the device does not have answers 404 (the page: "No such walker", leading to the
walker's page it shows now; the charts' JSON: "no walker ... on ..."), not another's figures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver.earlier_weeks import RECENT_WEEKS, is_recent, shorten
from caregiver.progress import (
    HISTORY_SESSIONS,
    TABLE_SESSIONS,
    next_plan_stretch,
    progress_view,
    session_walks,
    week_stretches,
)
from caregiver.routes.site import Site
from caregiver.storage import Device, WalkSession
from caregiver.trends import Trend, measures_of, trends, trends_json
from caregiver.walkers import UnknownWalker, by_name, offered, weeks_zone
from core.plan_presets import stage_words
from core.progress import stretch_value, week_goal_parts, week_goal_words
from core.protocol.messages import StageMessage
from core.protocol.plan import IntervalWalk
from core.zones import zone_name

ALL_WEEKS = "all"
"""``?weeks=all``: the page lists every week and session (up to :data:`caregiver.progress.
TABLE_SESSIONS`), not the recent weeks and the earlier ones by month
(:mod:`caregiver.earlier_weeks`)."""


@dataclass(frozen=True, slots=True)
class Shown:
    """What the progress page and its chart show: one walker of one device."""

    device: Device
    walker: str
    walker_name: str
    walkers: list[tuple[str, str]]
    """Every walker of the device, ``(id, name)`` (:func:`caregiver.walkers.offered`), by name
    (:func:`caregiver.walkers.by_name`): the page's walker select."""
    sessions: list[WalkSession]
    prescribed: dict[str, int]
    zone: dt.tzinfo
    """The walker's weeks' zone: the treadmill's (:func:`caregiver.walkers.weeks_zone`)."""
    stage: StageMessage | None = None
    """Their progression as the treadmill keeps it (its retained ``stage/<walker>``; None: no
    progression, or a device that does not send it)."""


def routes(site: Site) -> list[BaseRoute]:
    backend = site.backend
    store = backend.store

    def walker_of(device_id: str, asked: str | None) -> tuple[str, str, list[tuple[str, str]]]:
        """The walker to show, ``id, name`` (the one asked for, else the one who walked last)
        and every walker of the device, ``(id, name)``; :class:`UnknownWalker` when the device
        has no walker ``asked``."""
        walkers = offered(store, device_id)
        return *walkers.pick(asked), walkers.walkers

    def sessions_of(device_id: str, asked: str | None) -> Shown | None:
        """The device, the walker shown, their sessions, the sessions their progression
        prescribed by week and their progression as the device publishes it."""
        device = store.device(device_id)
        if device is None:
            return None
        walker, name, walkers = walker_of(device_id, asked)
        return Shown(
            device,
            walker,
            name,
            by_name(walkers),
            store.walk_sessions(device_id, HISTORY_SESSIONS, walker),
            store.prescribed_weeks(device_id, walker),
            weeks_zone(store, device_id, backend.config.zone),
            store.walker_stage(device_id, walker),
        )

    def trends_of(
        device_id: str, walker: str
    ) -> tuple[list[Trend], dt.tzinfo, dict[str, tuple[IntervalWalk, ...]]]:
        """The walker's weekly trends, weeks in the treadmill's zone, that zone, and the plan
        each of the sessions the page lists walked (from the same stored summaries)."""
        payloads = store.walk_session_payloads(device_id, HISTORY_SESSIONS, walker)
        zone = weeks_zone(store, device_id, backend.config.zone)
        walks = session_walks(payloads)  # the earlier months' stretches need theirs too
        return trends(measures_of(payloads), zone), zone, walks

    @site.authed
    async def progress_page(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        if not site.may_see(request, device_id):
            return site.missing_page(request, "treadmill")
        asked = request.query_params.get("walker")
        try:
            shown = await run_in_threadpool(sessions_of, device_id, asked)
        except UnknownWalker:
            return site.missing_walker(request, device_id, asked or "", "progress")
        if shown is None:
            return site.missing_page(request, "treadmill")
        view = progress_view(shown.sessions, backend.clock(), shown.zone, shown.prescribed)
        found, _, walks = await run_in_threadpool(trends_of, device_id, shown.walker)
        this_week = view["this_week"]
        stretches = week_stretches(shown.sessions, walks, shown.zone)
        if not this_week.sessions:  # none walked yet: said against the plan walked next
            stretches[this_week.week] = next_plan_stretch(shown.stage, shown.sessions, walks)
        every = request.query_params.get("weeks") == ALL_WEEKS
        short = shorten(view["weeks"], shown.sessions, walks, this_week.week, shown.zone)
        weeks = view["weeks"] if every else short.weeks
        listed_sessions = shown.sessions if every else short.sessions
        query = {"walker": shown.walker}

        def listed(week: str) -> bool:
            """A trend's week has its table row (every one in the every-week view)."""
            return every or is_recent(week, short.since)

        return site.render(
            request,
            "progress.html",
            device=shown.device,
            sessions=listed_sessions[:TABLE_SESSIONS],
            # past the table's bound: counted in the weeks, the months and the reports only
            sessions_unlisted=max(0, len(listed_sessions) - TABLE_SESSIONS),
            sessions_total=len(shown.sessions),
            table_sessions=TABLE_SESSIONS,
            every_week=every,
            recent_weeks=RECENT_WEEKS,
            months=[] if every else short.months,
            earlier_weeks=len(view["weeks"]) - len(short.weeks),
            earlier_sessions=short.earlier_sessions,
            all_weeks_query="?" + urlencode({**query, "weeks": ALL_WEEKS}),
            listed=listed,
            # each trend's weeks before the recent ones: in its chart, not its table
            trends_unlisted={
                t.metric.key: sum(1 for w in t.weeks if not listed(w.week)) for t in found
            },
            trends=found,
            walker=shown.walker,
            walker_name=shown.walker_name,
            walkers=shown.walkers,
            walker_query="?" + urlencode(query),
            stage=shown.stage,
            stage_words=stage_words(shown.stage) if shown.stage is not None else "",
            walks=walks,
            # this week in the words the report, the session summary and retroguard sessions use
            week_said=week_goal_words(this_week, stretches.get(this_week.week)),
            weeks_said={wk.week: week_goal_parts(wk, stretches.get(wk.week)) for wk in weeks},
            stretch_said=stretch_value(
                this_week.longest_backward_s, stretches.get(this_week.week), this_week.sessions
            ),
            **{**view, "weeks": weeks},
        )

    @site.authed
    async def progress_json(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        asked = request.query_params.get("walker")
        try:
            shown = (
                await run_in_threadpool(sessions_of, device_id, asked)
                if site.may_see(request, device_id)
                else None
            )
        except UnknownWalker as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        if shown is None:
            return JSONResponse({"error": "no such device"}, status_code=404)
        view = progress_view(shown.sessions, backend.clock(), shown.zone, shown.prescribed)
        return JSONResponse(view["chart"])

    @site.authed
    async def trends_api(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        device = (
            await run_in_threadpool(store.device, device_id)
            if site.may_see(request, device_id)
            else None
        )
        if device is None:
            return JSONResponse({"error": "no such device"}, status_code=404)
        try:
            walker, _, _ = await run_in_threadpool(
                walker_of, device_id, request.query_params.get("walker")
            )
        except UnknownWalker as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        found, zone, _ = await run_in_threadpool(trends_of, device_id, walker)
        return JSONResponse({"zone": zone_name(zone), "trends": trends_json(found)})

    return [
        Route("/devices/{device_id}/progress", progress_page, methods=["GET"]),
        Route("/api/devices/{device_id}/progress", progress_json, methods=["GET"]),
        Route("/api/devices/{device_id}/trends", trends_api, methods=["GET"]),
    ]
