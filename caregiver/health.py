"""What ``GET /healthz`` says about one instance of the caregiver service, for whatever
watches it from outside: a load balancer choosing among instances, an uptime monitor paging
whoever runs the service.

Why two questions: the dashboard is worth serving while the broker is down (its banner says
so, and the history is still there), so a load balancer asks only whether the instance works
(:attr:`Health.alive`: every part that shows or pages an alert is turning, as systemd's
watchdog is told, :mod:`caregiver.liveness`); while the broker is down *no* instance receives,
and one that took every instance out of service would hide the banner too. An uptime monitor
asks whether falls reach caregivers at all (:attr:`Health.receiving`), which a broker outage
does stop, and so does the service's own database refusing writes
(:attr:`Health.storing`: the falls then wait with the broker and on the treadmills).

Nothing here needs a login, so nothing here names a walker, a device, a caregiver or the
broker's address: only the parts' own names, the link's state and for how long.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from caregiver.broker_link import BrokerLink, Connected, state_word
from caregiver.localtime import clock_words
from caregiver.storage import SideFault, still_stored
from core.protocol.messages import DatabasePart, DatabaseStatus


def database_part(fault: SideFault) -> DatabasePart:
    """``fault`` as ``/healthz`` says it (UTC: it has no login, so no caregiver's zone)."""
    at = dt.datetime.fromtimestamp(fault.since, dt.UTC)
    return DatabasePart(
        fault.part.value,
        at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        f"{fault.part.what} since {clock_words(at, dt.UTC, seconds=False)}: "
        f"{still_stored((fault,))} are still stored and notified, but {fault.part.lost}",
    )


class Health(msgspec.Struct, frozen=True):
    """One instance's health, as ``/healthz`` sends it (JSON)."""

    alive: bool
    """Every part that shows or pages an alert is turning (the dashboard answering is one)."""
    problems: tuple[str, ...]
    """Each part that is not, in words (empty when :attr:`alive`)."""
    receiving: bool
    """Subscribed at the broker: every device's messages reach this instance."""
    broker: str
    """``connected``, ``lost`` (was subscribed) or ``never_connected``."""
    broker_problem: str | None = None
    """While not receiving: ``connecting``, ``unreachable``, ``refused``, ``dropped``,
    ``subscription_refused`` or ``handler_failed`` (:class:`caregiver.broker_link.Problem`)."""
    down_s: float | None = None
    """While not receiving: seconds since it stopped (monotonic clock)."""
    storing: bool = True
    """The service's database takes what ingest commits (a full disk, a failed sync: not)."""
    database_damaged: bool = False
    """The service's SQLite file is damaged (a statement met a damaged page): not
    :attr:`storing` until a person replaces it (the log and the dashboard's banner, behind
    the login, name the file and what to do; not here, which needs no login)."""
    notify_hanging: int = 0
    """Phone notifications whose send was abandoned at its deadline and still hangs
    (:data:`caregiver.notify.SEND_DEADLINE_S`): a contact's phone service, or its name's
    lookup, does not answer at all, and that contact's pages are not going out (the
    service's log names the contact). It leaves :attr:`alive` and :attr:`receiving` alone:
    restarting the service would not make the phone service answer."""

    database_parts: tuple[DatabasePart, ...] = ()
    """Parts of the database the service goes on without (a side table damaged, missing or
    locked: :mod:`caregiver.storage.side_faults`), the oldest first: alerts are still stored
    and paged (:attr:`storing` is about those), but what each keeps is missing meanwhile."""

    message_held: bool = False
    """While receiving: a message whose handler fails every time is held unacknowledged on
    this connection (:class:`caregiver.broker_link.HeldMessage`), the others are received (a
    bug). Only a flag: the banner and the log, behind the login, name its topic (a device)."""

    @property
    def reaching(self) -> bool:
        """Falls reach caregivers through this instance: alive, receiving and storing."""
        return self.alive and self.receiving and self.storing

    @property
    def status(self) -> str:
        """Words for people: ``ok``, ``not alive``, ``not receiving``, ``database damaged``,
        ``not storing`` or ``degraded`` (falls reach caregivers, but a part of the database
        cannot be used: :attr:`database_parts`)."""
        if not self.alive:
            return "not alive"
        if not self.receiving:
            return "not receiving"
        return self.database

    @property
    def database(self) -> DatabaseStatus:
        """The database's part of :attr:`status`: what the service's health message says on
        the broker (:mod:`caregiver.health_topic`)."""
        return database_status(
            storing=self.storing, damaged=self.database_damaged, parts=self.database_parts
        )


def database_status(
    *, storing: bool, damaged: bool, parts: tuple[DatabasePart, ...]
) -> DatabaseStatus:
    """The database in one word, the gravest first: ``database damaged``, ``not storing``,
    ``degraded`` (parts it goes on without), else ``ok``."""
    if damaged:
        return "database damaged"
    if not storing:
        return "not storing"
    return "degraded" if parts else "ok"


def health_of(
    problems: tuple[str, ...],
    link: BrokerLink,
    now_mono: float,
    *,
    storing: bool,
    notify_hanging: int = 0,
    damaged: bool = False,
    side: tuple[SideFault, ...] = (),
) -> Health:
    """The health of an instance whose parts report ``problems``, whose link is ``link``,
    whose database takes writes or not (``storing``; ``damaged``: its file is) and whose
    notifier has ``notify_hanging`` abandoned sends still hanging; ``side``: the parts of the
    database it goes on without."""
    parts = tuple(database_part(fault) for fault in side)
    if isinstance(link, Connected):
        return Health(
            not problems,
            problems,
            True,
            state_word(link),
            storing=storing,
            database_damaged=damaged,
            notify_hanging=notify_hanging,
            database_parts=parts,
            message_held=link.held is not None,
        )
    return Health(
        not problems,
        problems,
        False,
        state_word(link),
        link.problem.value,
        round(link.down_for(now_mono), 1),
        storing,
        damaged,
        notify_hanging,
        parts,
    )
