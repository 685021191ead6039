"""What changed in the store, as ingestion and acknowledgements report it to the live feed.

Ingestion calls ``on_change`` after each commit; the dashboard's feed
(:mod:`caregiver.routes.stream`) renders the card or timeline row it concerns and
pushes it to every open browser.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeviceChanged:
    """The device's card changed (availability, state, latest event, open alerts, ack)."""

    device_id: str


@dataclass(frozen=True, slots=True)
class EventStored:
    """A new event, or an event's acknowledgement."""

    device_id: str
    event_id: str


@dataclass(frozen=True, slots=True)
class SessionStored:
    """A guided-session summary stored or replaced (the progress page reloads)."""

    device_id: str
    session_id: str


Change = DeviceChanged | EventStored | SessionStored
