"""JSON for the dashboard's scripts: the fleet, an event's plot series, and the alarms a page
whose live feed broke missed."""

from __future__ import annotations

import logging

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver import plot
from caregiver.auth import Session
from caregiver.routes.site import Site, missed_alarms
from caregiver.storage import Part, StorageFault, Store, Table, Use
from core.protocol.messages import ImuRecording

log = logging.getLogger(__name__)


def event_plot_series(store: Store, event_id: str) -> plot.PlotSeries | None:
    """The plot for an event: its incident's recording, or an older monitor's window; None
    without either (or with one that cannot be read: the page says so, nothing crashes).
    A recordings table that cannot be read is a recording not shown, said where the banner
    and /healthz read it (:attr:`Store.side_faults`), not the page's 500."""
    event = store.event(event_id)
    if event is None:
        return None
    try:
        found = store.recording_for(event)
    except StorageFault as exc:
        log.warning("the recording for %s unread: %s", event_id, exc)
        store.side_faults.failed(Part.RECORDINGS, exc, Use.READ, (Table.RECORDINGS,))
        found = None
    else:
        store.side_faults.works(Part.RECORDINGS, Use.READ, (Table.RECORDINGS,))
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
        found = await run_in_threadpool(
            missed_alarms,
            store,
            session,
            site.backend.device_name,
            site.backend.config.zone,
            site.backend.config.policy,
            site.backend.clock(),
        )
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
