"""Times as people read them: in a zone, with the zone said, from what the service stores.

The service stores and sends UTC (ISO 8601 wall times from the devices, epoch
seconds of its own). A person reads local time: notifications in ``[server] timezone``
(:attr:`caregiver.config.CaregiverConfig.zone`), a walker's weeks in their treadmill's zone
(:func:`caregiver.walkers.weeks_zone`),
the dashboard in each browser's own zone — the pages carry the UTC moment in
``<time datetime>`` and ``static/time.js`` rewrites the text, which is
:func:`readable` in the service's zone until then (or without JavaScript).
"""

from __future__ import annotations

import datetime as dt

from core.progress import in_wall_range, utc_of
from core.zones import zone_said

# zone_said lives in core.zones (the offline tools name zones as the pages do); kept here for
# the service's modules that import it with the rest of this one
__all__ = [
    "ZONE_JOIN",
    "clock_words",
    "iso_of",
    "iso_utc",
    "moment_of",
    "readable",
    "words",
    "zone_said",
]


def moment_of(value: str | float | None) -> dt.datetime | None:
    """An ISO 8601 time (naive: UTC) or epoch seconds as an aware UTC datetime; None for
    nothing or something unreadable, or outside the years a wall time is read in
    (:data:`core.progress.WALL_FIRST`: one within a day of the calendar's ends cannot be
    shown in every zone, and the text as received is shown instead)."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str):
            return utc_of(value)
        return in_wall_range(dt.datetime.fromtimestamp(float(value), dt.UTC))
    except (ValueError, OverflowError, OSError):
        return None


def readable(value: str | float | None, zone: dt.tzinfo, *, seconds: bool = True) -> str:
    """ "Sun 1 Mar 2026, 14:05:12\u00a0CET": the moment in ``zone``, with the zone's name (the
    text as it was received when it cannot be read as a time)."""
    moment = moment_of(value)
    if moment is None:
        return "" if value is None else str(value)
    return words(moment, zone, seconds=seconds)


ZONE_JOIN = "\u00a0"
"""What joins a time to its zone's name: a no-break space, so "09:00" never ends a line with
"UTC" on the next, read there as a time in no zone (a phone's notification, the PDF's narrow
column, a page before ``static/time.js`` has run, which joins its own text alike)."""


def words(moment: dt.datetime, zone: dt.tzinfo, *, seconds: bool = True) -> str:
    """:func:`readable` of a moment already read (one ``strftime``: the live feed words
    every event of a burst). The one rule for a time said with its zone: the pages, the
    notifications and the PDF report all say it with this."""
    local = moment.astimezone(zone)
    text = local.strftime(
        f"%a {local.day} %b %Y, %H:%M:%S" if seconds else f"%a {local.day} %b %Y, %H:%M"
    )
    return f"{text}{ZONE_JOIN}{zone_said(zone, moment)}"


def clock_words(moment: dt.datetime, zone: dt.tzinfo, *, seconds: bool = True) -> str:
    """The time of day of :func:`words`, its zone said alike ("14:05\u00a0CET"): for a
    moment the reader places without its date (a fault since this morning on ``/healthz``)."""
    return words(moment, zone, seconds=seconds).split(", ")[-1]


def day_words(day: dt.date) -> str:
    """A date as the rest of the service writes it: "5 Mar 2026" (no leading zero, as
    :func:`words`; ``%d`` wrote "05 Mar 2026" in the PDF report)."""
    return f"{day.day} {day:%b %Y}"


def iso_utc(value: str | float | None) -> str:
    """The moment as ISO 8601 in UTC ("2026-03-01T13:05:12.250Z"), for ``<time datetime>``."""
    moment = moment_of(value)
    return "" if moment is None else iso_of(moment)


def iso_of(moment: dt.datetime) -> str:
    """:func:`iso_utc` of a moment already read (aware, UTC)."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
