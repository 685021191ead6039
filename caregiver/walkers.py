"""Which walkers of a device the plan page, the progress page and the reports offer.

Every walker on the device's roster (its retained ``walkers`` message) is offered, sessions
or not: a physio who prescribed a plan for a walker who has not walked yet must find them and
read "no sessions yet" and their adherence as 0 of the sessions prescribed, not miss them. A
walker seen only in sessions (one since removed, or a release before the roster was
published) is offered too, so no stored session becomes unreachable."""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from caregiver.storage import Part, StorageFault, Store, Use
from core.protocol.walker import DEFAULT_WALKER, DEFAULT_WALKER_ID
from core.zones import named_zone

log = logging.getLogger(__name__)


class UnknownWalker(LookupError):
    """A walker asked for by id who is not one of the device's: the page, chart or report
    answers 404 saying so, as ``retroguard caregiver report --walker`` does, never another
    walker's figures in their place."""

    def __init__(self, device_id: str, walker: str) -> None:
        super().__init__(f"no walker {walker[:40]!r} on {device_id}")


@dataclass(frozen=True, slots=True)
class Offered:
    device_id: str
    walkers: list[tuple[str, str]]
    """``(id, name)``: those who walked, the one who walked last first, then the roster's
    others in button order; a roster name is the current one, so it wins over a session's."""
    last: str
    """Who is shown without a choice: the walker who walked last, else the roster's first."""

    def pick(self, asked: str | None) -> tuple[str, str]:
        """``asked``'s ``(id, name)``; :attr:`last`'s when nobody is asked for (no
        ``?walker=``, or an empty one). :class:`UnknownWalker` when ``asked`` is not offered:
        a mistyped or stale link must not show the last walker's figures as if they were the
        ones asked for."""
        names = dict(self.walkers)
        chosen = asked or self.last
        if chosen not in names:
            raise UnknownWalker(self.device_id, chosen)
        return chosen, names[chosen]


class _Walkers(Protocol):
    """What :func:`offered` reads: a :class:`Store` or an ingest transaction."""

    def device_walkers(self, device_id: str) -> list[tuple[str, str]]: ...

    def walkers(self, device_id: str) -> list[tuple[str, str]]: ...


def offered(store: Store | _Walkers, device_id: str) -> Offered:
    """The device's walkers to offer (at least the default walker: a device never heard)."""
    roster = store.device_walkers(device_id)
    walked = store.walkers(device_id)
    names = dict(roster)
    walkers = [(w, names.get(w, n)) for w, n in walked]
    seen = {w for w, _ in walked}
    walkers += [(w, n) for w, n in roster if w not in seen]
    if not walkers:
        walkers = [(DEFAULT_WALKER.id, DEFAULT_WALKER.name)]
    return Offered(device_id, walkers, walkers[0][0])


def by_name(walkers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``walkers`` (``(id, name)``) as the plan and progress pages' Walker select lists them:
    by name, as a physio looks a name up — letters as they read them, case and accents aside
    ("Émile" among the E's, not after "Zoë"), then by id for two of one name. The same order
    whoever walked last: :attr:`Offered.walkers`' order (the one who walked last first, then
    the roster's button order) changed after every session, and a physio looking for one
    walker among five read the list anew each time."""
    return sorted(walkers, key=lambda w: (_letters(w[1]), w[1], w[0]))


def _letters(name: str) -> str:
    """``name`` without case or accents, for :func:`by_name`."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def for_plans(store: Store, device_id: str) -> list[tuple[str, str]]:
    """``(id, name)`` a plan may be for: the device's profiles in button order (the order
    the walker hears them at the machine), then any other walker seen in its sessions (a
    release before the roster was published)."""
    roster = store.device_walkers(device_id)
    known = {w for w, _ in roster}
    return roster + [(w, n) for w, n in store.walkers(device_id) if w not in known]


def named(walker: str | None, known: Sequence[tuple[str, str]]) -> str | None:
    """Who an incident is about, in the dashboard's words (``known``: :attr:`Offered.walkers`,
    whose names are the roster's), or None to say nothing of a walker, as before profiles.

    A shared treadmill's alarm must say who fell: "FALL on treadmill-1" sends a caregiver to
    the wrong patient. So every walker a record names is named — the default walker too,
    when the device has others (on a shared treadmill "Default walker" is someone: whoever
    walked with no profile chosen). Nothing is said for the default walker of a treadmill
    with one walker (nobody else it could be; today's words, no "default"), nor for an
    incident from before incidents named their walker (None: unknown). A walker the
    dashboard has no name for (the roster not heard yet) is named by their id."""
    if walker is None:
        return None
    names = dict(known)
    if walker == DEFAULT_WALKER_ID and not set(names) - {DEFAULT_WALKER_ID}:
        return None
    return names.get(walker, walker)


def who(store: Store | _Walkers, device_id: str, walker: str | None) -> str | None:
    """:func:`named` for ``device_id``'s walkers as the dashboard knows them (two reads; none
    for an incident of no known walker)."""
    if walker is None:
        return None
    return named(walker, offered(store, device_id).walkers)


def who_shown(store: Store, device_id: str, walker: str | None) -> str | None:
    """:func:`who` for what a page or the live feed shows beside an alarm or a card, with the
    names :func:`walkers_shown` could read."""
    if walker is None:
        return None
    return named(walker, walkers_shown(store, device_id))


def walkers_shown(store: Store, device_id: str) -> list[tuple[str, str]]:
    """:attr:`Offered.walkers`, or none when the store cannot read them (a lock, a statement
    timing out, a damaged table): then :func:`named` names a walker by the id the incident
    carries. A name is information, and a read that failed here cost the whole change (a
    fall's alarm on every open dashboard and its red card), the fleet page or the missed
    alarms."""
    try:
        shown = offered(store, device_id).walkers
    except StorageFault as exc:
        log.warning("%s's walkers unread, named by id: %s", device_id, exc)
        store.side_faults.failed(
            Part.WALKERS, exc, Use.READ, Part.WALKERS.tables
        )  # the banner and /healthz say it
        return []
    store.side_faults.works(Part.WALKERS, Use.READ, Part.WALKERS.tables)
    return shown


def weeks_zone(store: Store, device_id: str, fallback: dt.tzinfo) -> dt.tzinfo:
    """The zone a walker of ``device_id`` lives their weeks in: the treadmill's, as its progress
    message names it (:attr:`core.protocol.messages.ProgressMessage.zone`), else ``fallback``
    (``[server] timezone``: a device of an older release, or one not heard yet).

    Adherence, the weeks at goal, the weekly table, the reports' weeks and the plan page's
    week are counted in it, as the device counts the progression's stages and the weeks of
    its progress message: with the service's own zone, a service in UTC and a treadmill in
    New York put a Sunday 23:30 walk in the next week while the progression counted it in
    its own, and the physio read a week short where the stage had advanced."""
    name = store.device_zone(device_id)
    if not name:
        return fallback
    try:
        return named_zone(name)
    except ValueError:  # stored by a service whose time-zone data knew it
        return fallback
