"""What the device hears of the caregiver service, and what it says about it.

Why: the caregiver service is the one thing that pages a caregiver after a fall. When it is
down the device keeps every alert (kept until received) but the walker, Home Assistant and the
self-test all looked healthy while a fall would have paged nobody. The service announces
itself on ``<prefix>/caregiver/status`` (retained ``online`` / ``offline``, and ``offline`` as
its MQTT 5 Last Will: :class:`core.protocol.messages.CaregiverStatusMessage`); the reporter
(in the courier process, never the real-time loop) subscribes and keeps a
:class:`CaregiverWatch` on its publisher thread. It publishes what it hears on the device's
retained ``caregiver`` topic, and the self-test fails in words while a service is expected
and not online. A service that is online but cannot store what it receives (its presence's
``storing`` false: a damaged database, a full disk) pages nobody either: it counts as away
(the self-test, the walker at arming, Home Assistant), in its own words.

A service's ``online`` carries an MQTT 5 Message Expiry Interval and is said again well before
it runs out (:mod:`caregiver.presence`): a broker that crashed sends no Last Will and restarts
with the ``online`` it saved, so an ``online`` not renewed by the time the broker said it
expires is no presence here (``unknown``, which the rules below make away). An ``online``
without one (a service from before) is believed until something else is heard, as before.

The times the view says are wall times, for people to read ("offline since 14:03"); nothing is
timed by them: the grace and the expiry are monotonic (the reporter's clock).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.progress import utc_of
from core.protocol import payloads
from core.protocol.messages import (
    SCHEMA_VERSION,
    CaregiverLinkMessage,
    CaregiverPresence,
    CaregiverSeen,
    CaregiverStatusMessage,
    ProtocolError,
    SelfTestCheck,
)

log = logging.getLogger(__name__)

NOBODY_PAGED = "a fall would stop the belt but page nobody"
"""The consequence, in the words the self-test and the log use."""

RETAINED_SETTLE_S = 2.0
"""After our subscribe, how long the service's retained presence has to arrive before
"nothing heard" is taken as "nobody there" (it comes right behind the subscription)."""
UNHEARD_GRACE_S = 10.0
"""How long "nothing heard" is not yet taken as "nobody there" while a connection is being
made or has just been made (the first attempt still under way, or connected and not yet
subscribed): an attempt that hangs this long (an unanswered SYN, a slow resolver) is. A
connection attempt that failed, or one that dropped, counts at once
(:meth:`CaregiverWatch.unreachable`)."""


@dataclass(frozen=True, slots=True)
class CaregiverView:
    """The device's view of the caregiver service (what its ``caregiver`` topic says)."""

    state: CaregiverSeen = "unknown"
    since: str | None = None
    """Wall time it went ``state`` (None while unknown)."""
    expected: bool = False
    awaiting: int = 0
    """Alerts waiting for the service's receipt."""
    oldest_awaiting: str | None = None
    """Wall time the oldest of them was queued."""
    fault: str | None = None
    """While ``online``: why the service says it cannot store what it receives (None: it can).
    An alert it does not store is neither receipted nor escalated: nobody is paged."""
    fault_since: str | None = None
    """Wall time it stopped storing (None while it stores, or not known)."""
    settles_at: float | None = field(default=None, compare=False)
    """Monotonic time from which an ``unknown`` state is taken as nobody there (None: at once,
    the broker is out of reach).
    Not part of what the topic says (not compared: it never republishes it)."""
    expires_at: float | None = field(default=None, compare=False)
    """While ``online``: the monotonic time it lapses unless the service says it again (None:
    it said no expiry, a service from before). Not compared, like :attr:`settles_at`: a
    renewal changes nothing the topic says."""
    lapsed: bool = field(default=False, compare=False)
    """``unknown`` because the ``online`` heard was not said again before its expiry (the
    self-test says so in its words); not part of what the topic says."""

    def away(self, now: float) -> bool:
        """A service is expected and, as far as we can tell at monotonic ``now``, not there: a
        fall would page nobody (what the walker is told at arming).

        ``unknown`` counts only once settled: while the device is connecting, or connected
        and its subscription's retained presence not yet in, nothing has been heard because
        nothing could be, and telling the walker that "caregivers will not be called" while
        the service is online teaches them to ignore it. Offline counts at once, and so does
        a broker the device knows it cannot reach (``settles_at`` None: a failed attempt, a
        dropped link): nobody can be paged until it connects again, whatever the service."""
        if not self.expected:
            return False
        if self.state == "online":
            if self.expires_at is not None and now >= self.expires_at:
                return True  # not renewed: the watch makes it unknown at its next look
            return self.fault is not None  # there, but what it does not store pages nobody
        if self.state == "offline":
            return True
        return self.settles_at is None or now >= self.settles_at

    def undecided(self, now: float) -> bool:
        """A service is expected and the device cannot say yet whether it is there (``unknown``
        and not settled at ``now``): neither :meth:`away` nor online. An arming now is told
        later, once this is decided (the session runner looks again while it lasts, at most
        :data:`UNHEARD_GRACE_S`)."""
        return (
            self.expected
            and self.state == "unknown"
            and self.settles_at is not None
            and now < self.settles_at
        )

    def message(self, device_id: str) -> CaregiverLinkMessage:
        return CaregiverLinkMessage(
            schema=SCHEMA_VERSION,
            device_id=device_id,
            wall_time=payloads.wall_now(),
            state=self.state,
            expected=self.expected,
            since=self.since,
            awaiting=self.awaiting,
            oldest_awaiting=self.oldest_awaiting,
            storing=self.fault is None,
            fault=self.fault,
            fault_since=self.fault_since,
        )


class CaregiverWatch:
    """The presence the device last heard; used on the reporter's publisher thread only."""

    def __init__(self, expected: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.expected = expected
        self._clock = clock
        self._state: CaregiverSeen = "unknown"
        self._since: str | None = None
        self._unknown_at = clock()
        """Monotonic time from which we may hear it (the start, or the last connect)."""
        self._unreachable = False
        """The last attempt to reach the broker failed, or the link dropped, and no connection
        has been made since: nobody can be paged now (False at the start: the first attempt
        is under way, and a healthy broker answers it in a moment)."""
        self._subscribed_at: float | None = None
        """Monotonic time our subscription to the presence topic last took (None: not now)."""
        self._last: tuple[CaregiverPresence, str | None] | None = None
        """The last presence heard and since when, kept across the device's own outages: the
        retained message heard again at the next subscribe is not a new change."""
        self._fault: tuple[str, str | None] | None = None
        """While the service says it is online and cannot store: why, and since when (kept
        like :attr:`_last`: the same fault heard again has not changed since)."""
        self._expires_at: float | None = None
        """While ``online``: the monotonic time it lapses unless said again (None: no expiry)."""
        self._by = ""
        """Who said the last presence (for the log)."""
        self._lapsed = False
        """The last presence heard was an ``online`` that lapsed, and nothing was heard since."""
        self._online_ends: tuple[bytes, float] | None = None
        """The last ``online`` with an expiry heard (its payload) and when it lapses, kept
        across the device's own outages: the same message handed over again at the next
        subscribe (a broker that lost its expiry keeps it for ever) keeps that end, else each
        reconnect would count its ``expires_s`` again and believe a service gone for good."""

    @property
    def expires_at(self) -> float | None:
        """When the ``online`` heard lapses unless said again (None: nothing to lapse): the
        reporter looks again then, so the device's topic says it at once."""
        return self._expires_at if self._state == "online" else None

    def heard(
        self, payload: bytes, retained: bool = False, expires_at: float | None = None
    ) -> bool:
        """A message on the presence topic, ``retained`` (handed over at subscribe) or live.
        False: not one (logged, ignored; an empty payload, a cleared retained message, says
        nothing). A Last Will carries no time: heard live, it is since now; retained, since
        some time before we subscribed (unknown, None). ``expires_at``: the monotonic time the
        broker's remaining Message Expiry Interval ends (None: it carried none). An ``online``
        lapses then, or at its own ``expires_s`` from now, whichever comes first: the broker
        may have lost the interval (a retained message Mosquitto restored in its last second),
        and the payload's bounds an interval a broker's stepped clock stretched."""
        if not payload:
            return False
        try:
            message = payloads.decode_as(CaregiverStatusMessage, payload)
        except ProtocolError as exc:
            log.warning("caregiver presence ignored: %s", exc)
            return False
        last = self._last
        if last is not None and last[0] == message.state:
            since = last[1]  # the same state again (a resubscribe): it has not changed since
        else:
            since = message.wall_time or (None if retained else payloads.wall_now())
        if self._last is None or self._last[0] != message.state:
            log.log(
                logging.INFO if message.state == CaregiverPresence.ONLINE else logging.WARNING,
                "the caregiver service (%s) is %s%s",
                message.by,
                message.state.value,
                "" if message.state == CaregiverPresence.ONLINE else f": {NOBODY_PAGED}",
            )
        self._last = (message.state, since)
        self._state = "online" if message.state == CaregiverPresence.ONLINE else "offline"
        self._since = since
        self._expires_at, self._lapsed = None, False
        if message.state == CaregiverPresence.ONLINE:
            said = None if message.expires_s is None else self._clock() + message.expires_s
            ends = min((t for t in (expires_at, said) if t is not None), default=None)
            again = self._online_ends
            if ends is not None and again is not None and again[0] == payload:
                ends = min(ends, again[1])  # the same message handed over again: its end stays
            self._expires_at = ends
            self._online_ends = None if ends is None else (payload, ends)
        self._by = message.by
        self._heard_storing(message, retained)
        return True

    def _heard_storing(self, message: CaregiverStatusMessage, retained: bool) -> None:
        """Whether the service, online, says it cannot store (an older service never says it:
        storing). Offline says nothing of it (it is away anyway)."""
        fault = None
        if message.state == CaregiverPresence.ONLINE and not message.storing:
            fault = message.fault or "cannot store"
        last = self._fault
        if fault is None:
            if last is not None:
                log.info("the caregiver service (%s) stores what it receives again", message.by)
            self._fault = None
            return
        if last is not None and last[0] == fault:
            return  # the same fault again (a resubscribe): it has not changed since
        since = message.wall_time or (None if retained else payloads.wall_now())
        log.warning(
            "the caregiver service (%s) is online but cannot store alerts (%s): %s",
            message.by,
            fault,
            NOBODY_PAGED,
        )
        self._fault = (fault, since)

    def subscribed(self) -> None:
        """Our subscription took: a retained presence, if any, is on its way."""
        self._subscribed_at = self._clock()

    def connected(self) -> None:
        """The broker accepted our connection: the presence can be heard from now (the
        subscription follows), so "nothing heard" has its grace again."""
        self._unreachable = False
        self._unknown_at = self._clock()

    def unreachable(self) -> None:
        """An attempt to connect failed (refused, a name that does not resolve, TLS, the broker
        refused our CONNECT) or our connection dropped: we cannot tell what the service says,
        and we know that nothing reaches it now (alerts wait in the outbox): away at once, not
        after the grace, until a connection is made again."""
        self._state, self._since = "unknown", None
        self._unreachable, self._subscribed_at = True, None
        self._expires_at, self._lapsed = None, False

    def lapse_if_due(self) -> None:
        """An ``online`` not said again before its expiry is no presence: the service is gone
        with no word (its broker crashed meanwhile, so no Last Will), or cannot reach the
        broker. Forgotten, so the same ``online`` heard again later is news (logged, since
        then). The reporter asks at each wake-up, not only in a pass that reads the outbox:
        one the database fails never gets that far, and :attr:`expires_at` left in the past
        woke it at once, again and again, for as long as the database failed."""
        expires_at = self.expires_at
        if expires_at is None or self._clock() < expires_at:
            return
        log.warning(
            "the caregiver service (%s) has not said it is online again before its presence "
            "expired: %s",
            self._by,
            NOBODY_PAGED,
        )
        self._state, self._since, self._expires_at = "unknown", None, None
        self._last = self._fault = None
        self._lapsed = True

    def view(self, awaiting: int, oldest_awaiting: str | None) -> CaregiverView:
        self.lapse_if_due()
        settles_at = None
        if self._state == "unknown" and not self._unreachable:
            heard_by = math.inf
            if self._subscribed_at is not None:
                heard_by = self._subscribed_at + RETAINED_SETTLE_S
            settles_at = min(self._unknown_at + UNHEARD_GRACE_S, heard_by)
        return CaregiverView(
            self._state,
            self._since,
            self.expected,
            awaiting,
            oldest_awaiting if awaiting else None,
            self._fault[0] if self._state == "online" and self._fault is not None else None,
            self._fault[1] if self._state == "online" and self._fault is not None else None,
            settles_at,
            self.expires_at,
            self._lapsed and self._state == "unknown",
        )


def self_test_check(view: CaregiverView, connected: bool) -> SelfTestCheck:
    """The self-test's ``caregiver`` line: fails, in plain words, while the service is not
    online, or online and unable to store what it receives (only asked where one is
    expected)."""
    waiting = ""
    if view.awaiting:
        waiting = (
            f"; {view.awaiting} alert{'s' if view.awaiting != 1 else ''} wait for it, the oldest "
            f"since {clock_time(view.oldest_awaiting)}"
        )
    if view.state == "online" and view.fault is not None:
        since = f" since {clock_time(view.fault_since)}" if view.fault_since else ""
        return SelfTestCheck(
            ok=False,
            detail=(
                f"the caregiver service is online but cannot store alerts ({view.fault}){since}: "
                f"{NOBODY_PAGED}{waiting}"
            ),
        )
    if view.state == "online":
        return SelfTestCheck(
            ok=True,
            detail=f"the caregiver service is online since {clock_time(view.since)}{waiting}",
        )
    if view.state == "offline":
        since = f" since {clock_time(view.since)}" if view.since else ""
        detail = f"the caregiver service is offline{since}: {NOBODY_PAGED}"
    elif not connected:
        detail = (
            "cannot tell whether the caregiver service is there: not connected to the broker; "
            f"{NOBODY_PAGED}"
        )
    elif view.lapsed:
        detail = (
            "the caregiver service has not said it is online again before its presence expired "
            f"(gone without a word, or it cannot reach the broker): {NOBODY_PAGED}"
        )
    else:
        detail = f"no caregiver service has announced itself on the broker: {NOBODY_PAGED}"
    return SelfTestCheck(ok=False, detail=detail + waiting)


def clock_time(wall: str | None) -> str:
    """``14:03`` in the device's local time, for an ISO wall time (``?`` if none)."""
    if not wall:
        return "?"
    try:  # utc_of: "0001-01-01T00:00:00+14:00" (the network's) is refused, not a crash
        return utc_of(wall).astimezone().strftime("%H:%M")
    except ValueError:
        return wall[:32]
