"""Time zones for times people read: the system's (with its daylight-saving rules) or a named one.

Everything is stored and sent in UTC; only what a person reads (a weekly
progress table, a notification, the dashboard's fallback text) is shown in a
zone, and the week a walking session counts in is the week of the walker's own
calendar. ``datetime.now().astimezone()`` would give a fixed UTC offset, which
puts a session in the wrong week across a daylight-saving change: this gives
the system's real zone (``TZ``, else what ``/etc/localtime`` names or holds).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "LOCALTIME",
    "UTC_KEYS",
    "named_zone",
    "system_zone",
    "utc_offset_said",
    "zone_key",
    "zone_name",
    "zone_said",
    "zones_said",
]

LOCALTIME = Path("/etc/localtime")


def system_zone(localtime: Path = LOCALTIME) -> dt.tzinfo:
    """The machine's zone: ``TZ`` when it names one, else the zone ``/etc/localtime`` links
    to or contains, else UTC. (Read once per ``TZ`` value: a change of /etc/localtime is seen
    after a restart.)"""
    return _system_zone(os.environ.get("TZ", ""), localtime)


@functools.cache
def _system_zone(tz: str, localtime: Path) -> dt.tzinfo:
    name = tz.removeprefix(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # a POSIX rule string or a typo: fall back to the system file
    try:
        target = localtime.resolve(strict=True)
    except OSError:
        return dt.UTC
    parts = target.parts
    if "zoneinfo" in parts:
        key = "/".join(parts[parts.index("zoneinfo") + 1 :])
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with target.open("rb") as file:
            return ZoneInfo.from_file(file, key="localtime")
    except (OSError, ValueError):
        return dt.UTC


def named_zone(name: str) -> dt.tzinfo:
    """The IANA zone ``name`` ("Europe/Berlin"), or the system's for ""; :class:`ValueError`
    naming the problem for an unknown one."""
    if not name:
        return system_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as 'Europe/Berlin', or '' for "
            "the system's)"
        ) from None


UTC_KEYS = frozenset(
    {"UTC", "Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu"}
)
"""The tz database's names of UTC itself (its ``backward`` file links them to ``Etc/UTC``)."""


def zone_name(zone: dt.tzinfo) -> str:
    """How a person and a program know the zone: its IANA key ("Europe/Berlin"), else its
    name now. UTC under any of its names (:data:`UTC_KEYS`) is "UTC", as every page names it
    (:func:`zone_said`) and an IANA key as well: Debian's /etc/localtime links to
    ``Etc/UTC``, and the CSV report written on such a machine said "weeks counted in
    Etc/UTC" where the progress page said "UTC"."""
    key = getattr(zone, "key", None)
    if key in UTC_KEYS:
        return "UTC"
    if isinstance(key, str) and key != "localtime":
        return key
    return zone_said(zone, dt.datetime.now(dt.UTC))


def zone_said(zone: dt.tzinfo, at: dt.datetime) -> str:
    """The zone as a clock in it named itself at ``at`` ("UTC", "CET", "CEST"), as the
    caregiver's banner, notifications, pages and PDF (``caregiver.localtime.words``) and the
    offline tools (``retroguard sessions``, ``plan show``, ``watch``) name it, one way
    everywhere (before, the progress page, the report and the tools said the IANA key,
    "Etc/UTC", beside the banner's "UTC"). A zone with no abbreviation (the tz database names
    America/Sao_Paulo's "-03", Asia/Colombo's "+0530") is its offset from UTC, "UTC-03",
    "UTC+05:30": "Times in -03." read as a subtraction. For people only: what machines read
    (the trends JSON, a treadmill's message) keeps the IANA name, :func:`zone_name`."""
    local = at.astimezone(zone)
    name = local.tzname()
    offset = local.utcoffset()
    if offset is None:
        return name or "UTC"
    if name and not _NUMERIC_NAME.match(name):
        return name
    return utc_offset_said(offset)


_NUMERIC_NAME = re.compile(r"^(?:UTC|GMT)?[+-]\d")
"""A zone name that is only its offset: the tz database's "-03", "+0530", or
``datetime.timezone``'s "UTC-03:00"."""


def utc_offset_said(offset: dt.timedelta) -> str:
    """An offset from UTC as people read it: "UTC" for none, "UTC-03", "UTC+05:30"."""
    minutes = round(offset.total_seconds() / 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, minutes = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}" + (f":{minutes:02d}" if minutes else "")


def zones_said(zone: dt.tzinfo, moments: Iterable[dt.datetime]) -> str:
    """:func:`zone_said` for a list of times, the header above them: each name the list's
    times were in, earliest first ("CET", "CET/CEST" for a winter's and a summer's): one name
    taken at one moment would call a summer session's time "CET". Now's name when there is
    no time."""
    said = dict.fromkeys(zone_said(zone, at) for at in sorted(moments))
    return "/".join(said) or zone_said(zone, dt.datetime.now(dt.UTC))


def zone_key(zone: dt.tzinfo) -> str | None:
    """The IANA name another machine can read ``zone`` back by ("Europe/Berlin"), or None
    when it has none: a zone read from the bytes of an ``/etc/localtime`` that is no link
    ("localtime"), or a fixed offset. Sent, never :func:`zone_name`'s fallback ("CET" now,
    "CEST" in summer: the abbreviation is no zone with daylight-saving rules)."""
    key = getattr(zone, "key", None)
    if zone is dt.UTC:
        return "UTC"
    return key if isinstance(key, str) and key != "localtime" else None
