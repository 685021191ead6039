"""The dashboard's pages: the fleet (a card per treadmill, recent alerts), a device's
timeline, one event (with its IMU plot)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from caregiver import plot, seen, story, walkers
from caregiver.auth import Session
from caregiver.progress import card_plan
from caregiver.routes.api import event_plot_series
from caregiver.routes.site import Site
from caregiver.self_test import SelfTestView
from caregiver.self_test import view_of as self_test_view
from caregiver.storage import Device, Part, StorageFault, Store, StoredEvent
from core.protocol.words import event_said


def event_page_data(store: Store, event_id: str, device: str) -> dict[str, Any] | None:
    """The event page's context: the event, its incident told in words, facts and plot;
    ``device``: the treadmill's name, said in the headline (:func:`story.headline`'s ``on``)."""
    event = store.event(event_id)
    if event is None:
        return None
    incident = store.incident(event.incident) if event.incident else None
    events = store.incident_events(incident.id) if incident is not None else [event]
    series = event_plot_series(store, event_id)
    after = plot.after_the_fall(series) if series is not None else None
    newest = seen.newest_alert(events) if incident is not None else event
    return {
        "event": event,
        # what its Acknowledge says the page showed: the incident's newest alert event
        "ack_seen": newest.id if newest is not None else "",
        "headline": (
            story.headline(
                incident,
                f"/events/{event.id}",
                walkers.who_shown(store, incident.device_id, incident.walker),
                device,
                story.told(incident, events),
            )
            if incident
            else None
        ),
        # the recording's own page (no incident) is headed in words, not "IMU"
        "step_text": (
            story.steps([event], None)[0].text
            if event.type != "window"
            else event_said(event.type).step
        ),
        # when, said as the steps say it: by the device's clock (story.stamped)
        "moment": story.page_moment(event, incident, events),
        # a caregiver's close the treadmill has not confirmed: the page, live, takes itself
        # again once its card no longer says so (app.js)
        # (its card's headline link: the incident's first event)
        "untold": (
            f"/events/{incident.first_event_id}"
            if incident is not None and not story.told(incident, events)
            else ""
        ),
        "steps": story.steps(events, incident) if incident is not None else [],
        "facts": story.facts(event, events, after),
        "details": story.details(events),
        "has_plot": series is not None,
        # the lines the charts label, said under the heading (a stumble's has no impact)
        "plot_marks": [m.label for m in series.marks] if series is not None else [],
        # what 0 s is: an older monitor's window counts from the detection, not the belt
        "plot_zero": series.zero if series is not None else "",
        # a recording the device sent that its table refused (the alert was stored without
        # it), or one that cannot be read now: said, not just absent
        "recording_missing": recording_missing(store, event, events) if series is None else "",
    }


RECORDING_UNSTORED = (
    "The sensor recording around this trip could not be stored: part of the service's "
    "database refused it. The alert itself was stored and notified without it."
)
RECORDING_UNREAD = (
    "The sensor recording cannot be read now: part of the service's database cannot be used "
    "(the banner above says since when)."
)


RECENT_ALERTS = 10
"""The incidents the fleet's "Recent alerts" lists, newest first (its live feed adds none older
than all of them to a full list: app.js onIncident)."""

RECORDED_TYPES = frozenset({"stumble", "fall", "window"})
"""The events a recording is sent for or with: the trips that stop the belt (the monitor
sends the IMU around each in a ``window`` event) and the recording's own event. A call for
help, a fault, an "I'm OK" has none."""


def recording_missing(
    store: Store, event: StoredEvent, events: list[StoredEvent] | None = None
) -> str:
    """Why ``event``'s page shows no recording, when one was sent: it could not be stored
    (:meth:`Store.recording_unstored`), or the recordings cannot be read now. "" otherwise
    (an event with none, as most). ``events``: its incident's (the plot shows the incident's
    recording, :meth:`Store.recording_for`); "cannot be read now" is said only where one is
    or would be (a trip, a recording event, one stored), not of a call for help."""
    try:
        if store.recording_unstored(event):
            return RECORDING_UNSTORED
    except StorageFault:
        pass  # the events table: the page's own reads say that fault
    unread = store.side_faults.unread()  # a write refused: what was stored still reads
    recorded = event.type == "window" or (
        event.incident is not None
        and any(e.has_window or e.type in RECORDED_TYPES for e in (events or [event]))
    )
    if Part.RECORDINGS in unread and recorded:
        return RECORDING_UNREAD
    return ""


def routes(site: Site) -> list[BaseRoute]:
    store = site.backend.store

    def cards_who(devices: list[Device]) -> dict[str, str | None]:
        """Each card's walker to name (``_card.html``): whose incident it tells."""
        return {
            d["device_id"]: walkers.who_shown(store, d["device_id"], d["incident"]["walker"])
            for d in devices
            if d["incident"] is not None
        }

    def fleet_data(session: Session) -> dict[str, Any]:
        seen_devices = [d for d in store.devices() if session.may_see(d["device_id"])]
        who = cards_who(seen_devices)
        now = site.backend.clock()
        # Urgent cards first in the page itself, not only on screen (the stylesheet's order):
        # a screen reader and the Tab key follow the document, which was in name order.
        devices = sorted(
            seen_devices,
            key=lambda d: story.URGENCY.get(story.card(d, now, who.get(d["device_id"])).level, 2),
        )
        incidents = store.recent_incidents(limit=RECENT_ALERTS, devices=session.devices)
        known: dict[str, list[tuple[str, str]]] = {}  # each device's walkers, read once
        incidents_who = {}
        for i in incidents:
            if i.walker is not None:
                if i.device_id not in known:
                    known[i.device_id] = walkers.walkers_shown(store, i.device_id)
                incidents_who[i.id] = walkers.named(i.walker, known[i.device_id])
        return {
            "amber": any(
                story.card(d, now, who.get(d["device_id"])).level == "warn" for d in devices
            ),
            "devices": devices,
            "incidents": incidents,
            "incidents_limit": RECENT_ALERTS,
            "who": who,
            "plans": {d["device_id"]: card_plan(store, d["device_id"]) for d in devices},
            "incidents_who": incidents_who,
        }

    @site.authed
    async def fleet(request: Request) -> Response:
        page = await run_in_threadpool(fleet_data, request.state.session)
        # an amber card: the amber notice is rendered with it (Site.amber_rendered)
        request.state.amber = page.pop("amber")
        if request.state.amber:
            await site.amber_rendered(request)
        return site.render(request, "fleet.html", **page)

    def device_data(
        device_id: str,
    ) -> tuple[
        Device | None, list[StoredEvent], dict[str, str | None], SelfTestView, dict[str, str]
    ]:
        device = store.device(device_id)
        checked = self_test_view(store.self_test(device_id), site.backend.clock())
        if device is None:
            return None, [], {}, checked, {}
        plans = {device_id: card_plan(store, device_id)}
        return device, store.events_for(device_id), cards_who([device]), checked, plans

    @site.authed
    async def device_page(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        if not site.may_see(request, device_id):
            return site.missing_page(request, "treadmill")
        device, events, who, checked, plans = await run_in_threadpool(device_data, device_id)
        if device is None:
            return site.missing_page(request, "treadmill")
        # an amber card: the amber notice is rendered with it (Site.amber_rendered)
        card = story.card(device, site.backend.clock(), who.get(device_id))
        request.state.amber = card.level == "warn"
        if request.state.amber:
            await site.amber_rendered(request)
        return site.render(
            request,
            "device.html",
            device=device,
            events=events,
            who=who,
            self_test=checked,
            plans=plans,
        )

    @site.authed
    async def event_page(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        event = await run_in_threadpool(store.event, event_id)
        if event is None or not site.may_see(request, event.device_id):
            return site.missing_page(request, "alert")
        page = await run_in_threadpool(
            event_page_data, store, event_id, site.backend.device_name(event.device_id)
        )
        if page is None:
            return site.missing_page(request, "alert")
        return site.render(request, "event.html", **page)

    return [
        Route("/", fleet, methods=["GET"]),
        Route("/devices/{device_id}", device_page, methods=["GET"]),
        Route("/events/{event_id}", event_page, methods=["GET"]),
    ]
