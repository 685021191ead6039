"""JSON for the dashboard's scripts: the fleet, an event's plot series, and the alarms a page
whose live feed broke missed."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver import plot, story, walkers
from caregiver.auth import Session
from caregiver.priority import urgency_of
from caregiver.routes.site import OPEN_ALARMS, Site
from caregiver.storage import Store, Urgency
from core.protocol.messages import ImuRecording


class MissedAlarm(msgspec.Struct, frozen=True):
    """An open incident with a critical event (``/api/alarms``): its :attr:`text` is worded
    as the live feed's alarm for that event (:func:`caregiver.story.alarm`), so a fall
    reads the same whether the page heard it or caught up on it. The page alarms for it
    unless it rendered or heard :attr:`event` already."""

    device_id: str
    device_name: str
    incident: str
    text: str
    link: str
    event: str
    """Its newest critical event's id; for an alert without a critical event, its own event's
    id, or ``alert-<id>`` for one without an event (offline while armed): what the page
    remembers it heard by."""
    urgent: bool = True
    """A fall, no recovery or call for help (the alarm's red); False for an alert that pages
    without one — offline while armed, a stumble not reset, a fault (amber: listed as still
    open, in the notice's amber, never the banner's beeping)."""


def missed_alarms(store: Store, session: Session, name: Callable[[str], str]) -> list[MissedAlarm]:
    """The open (unacknowledged) incidents with a critical event, of the devices ``session``
    may see, newest first: a page whose feed broke alarms for those whose newest critical
    event it has not rendered nor heard. Then the other alerts paging now (offline while
    armed, a stumble not reset, a fault; not urgent), each once, newest first: the "Still
    open" notice lists every alert that pages, and said "Still open: HELP" while a monitor
    gone offline paged too. No times: each instance's clock, the events' arrival times and a
    page's bearings need not agree."""
    found = store.open_critical(session.devices, OPEN_ALARMS)
    events = store.events_by_id([event for _, event in found]) if found else {}
    alarms = []
    for incident, event in found:
        stored = events.get(event)
        kind = stored.type if stored is not None else incident.severity
        device_name = name(incident.device_id)
        alarms.append(
            MissedAlarm(
                incident.device_id,
                device_name,
                incident.id,
                story.alarm(
                    kind, device_name, walkers.who(store, incident.device_id, incident.walker)
                ),
                f"/events/{incident.first_event_id}",
                event,
            )
        )
    # What else pages (issue: "Still open: HELP" while an offline-while-armed alert paged too)
    listed = {incident.id for incident, _ in found}
    for alert in store.paging_alerts(session.devices, OPEN_ALARMS):
        if alert.incident is not None and alert.incident in listed:
            continue
        if alert.incident is not None:
            listed.add(alert.incident)
        device_name = name(alert.device_id)
        # the alert's incident's first event is its page (an older alert: its own event)
        link = (
            f"/events/{alert.event_id}"
            if alert.event_id
            else f"/devices/{quote(alert.device_id, safe='')}"
        )
        alarms.append(
            MissedAlarm(
                alert.device_id,
                device_name,
                alert.incident or "",
                story.alarm(alert.kind, device_name),
                link,
                alert.event_id or f"alert-{alert.id}",
                urgent=urgency_of(alert.kind) is Urgency.CRITICAL,
            )
        )
    return alarms


def event_plot_series(store: Store, event_id: str) -> plot.PlotSeries | None:
    """The plot for an event: its incident's recording, or an older monitor's window; None
    without either (or with one that cannot be read: the page says so, nothing crashes)."""
    event = store.event(event_id)
    if event is None:
        return None
    found = store.recording_for(event)
    if found is not None:
        try:
            recording = msgspec.msgpack.decode(found[1], type=ImuRecording)
            return plot.recording_series(recording)
        except (msgspec.DecodeError, ValueError):
            return None
    window = store.imu_window(event_id)
    return plot.window_series(window) if plot.valid_window(window) else None


def routes(site: Site) -> list[BaseRoute]:
    store = site.backend.store

    def plot_for(event_id: str, session: Session) -> plot.PlotSeries | None:
        event = store.event(event_id)
        if event is None or not session.may_see(event.device_id):
            return None
        return event_plot_series(store, event_id)

    @site.authed
    async def event_plot(request: Request) -> Response:
        series = await run_in_threadpool(
            plot_for, request.path_params["event_id"], request.state.session
        )
        if series is None:
            return JSONResponse({"error": "this event has no IMU recording"}, status_code=404)
        return Response(msgspec.json.encode(series), media_type="application/json")

    @site.authed
    async def fleet_json(request: Request) -> Response:
        session: Session = request.state.session
        devices = await run_in_threadpool(store.devices)
        return JSONResponse({"devices": [d for d in devices if session.may_see(d["device_id"])]})

    @site.authed
    async def alarms_json(request: Request) -> Response:
        """What :func:`missed_alarms` finds (``static/app.js`` asks once its feed is back
        after a break)."""
        session: Session = request.state.session
        found = await run_in_threadpool(missed_alarms, store, session, site.backend.device_name)
        return Response(
            msgspec.json.encode({"alarms": found}),
            media_type="application/json",
            headers={"cache-control": "no-store"},
        )

    return [
        Route("/api/events/{event_id}/plot", event_plot, methods=["GET"]),
        Route("/api/fleet", fleet_json, methods=["GET"]),
        Route("/api/alarms", alarms_json, methods=["GET"]),
    ]
