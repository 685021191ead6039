"""Whether ingest hears the devices: its link to the MQTT broker, as a typed state.

Why: while the broker cannot be reached no fall reaches the service, and a dashboard that
says nothing about it looks like a quiet fleet. Every page shows a banner while the link
is down (``templates/base.html``, ``static/app.js``); the log says it once an outage
(:meth:`caregiver.ingest.Ingestor._on_connect_fail`); :meth:`CaregiverService.status`
says it too.

"Connected" means subscribed (the broker confirmed the subscriptions): only from then on
does every device's alert reach ingest. A subscription the broker refuses (a failure reason
code in its SUBACK, e.g. an ACL that denies the topic) is not receiving: the banner names it.
How long the link has been down is measured on the monotonic clock; when it went down is
kept as a wall time only for people to read.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from caregiver.localtime import iso_utc


class Problem(enum.Enum):
    """Why the link is down, as the banner says it."""

    CONNECTING = "connecting"
    """The first attempt is under way (nothing has failed yet)."""
    UNREACHABLE = "unreachable"
    """Nothing answers at the broker's address (refused, unreachable, TLS failure)."""
    REFUSED = "refused"
    """The broker answered and refused the service's login."""
    DROPPED = "dropped"
    """The connection the service had ended."""
    SUBSCRIPTION_REFUSED = "subscription_refused"
    """The broker took the login and refused subscriptions (its ACL, say): ``Down.refused``
    names their topic filters."""
    HANDLER_FAILED = "handler_failed"
    """A handler of the service raised on paho's thread (a bug; its traceback is in the log):
    the connection is started again, so the broker sends again what was not stored."""


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A message the service failed handling again the same way (a poisoned message: its
    handler raises every time): the connection goes on without it, unacknowledged, so the
    broker keeps it and sends it again at the next connection
    (:class:`core.mqtt_callbacks.GuardedClient`). ``since`` is a wall time, for people."""

    topic: str
    error: str
    times: int
    since: float
    kept: bool = True
    """The broker keeps it (QoS 1, unacknowledged); False: it came at QoS 0, never sent
    again (a person's ``mosquitto_pub``, Home Assistant's birth message)."""
    held: int = 1
    """Messages held on this connection, each keeping one of the broker's in-flight slots."""
    let_go: bool = False
    """Past :data:`core.mqtt_callbacks.HELD_MOST` held, a further one was acknowledged
    unhandled on this connection (so the window stays open for the others)."""


@dataclass(frozen=True, slots=True)
class Connected:
    """Subscribed: every device's messages reach ingest, but ``held`` if one is held."""

    held: HeldMessage | None = None


@dataclass(frozen=True, slots=True)
class Down:
    """Not subscribed since ``since`` (a wall time, for people) / ``since_mono`` (for
    durations)."""

    since: float
    since_mono: float
    problem: Problem
    refused: tuple[str, ...] = ()
    """With :attr:`Problem.SUBSCRIPTION_REFUSED`: the topic filters the broker refused."""

    def down_for(self, now_mono: float) -> float:
        """Seconds the link has been down, on the monotonic clock."""
        return max(0.0, now_mono - self.since_mono)


@dataclass(frozen=True, slots=True)
class NeverConnected(Down):
    """Never subscribed since the service started (at ``since``)."""


@dataclass(frozen=True, slots=True)
class Lost(Down):
    """Subscribed once, and the link went down at ``since``."""


BrokerLink = Connected | NeverConnected | Lost


class LinkWatch:
    """The link's state, changed from paho's callbacks (:class:`caregiver.ingest.Ingestor`);
    each change goes to ``on_change`` (the dashboard's banner). Thread-safe."""

    def __init__(
        self,
        on_change: Callable[[BrokerLink], None] = lambda link: None,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_change = on_change
        self._wall = wall
        self._monotonic = monotonic
        self._state: BrokerLink = NeverConnected(wall(), monotonic(), Problem.CONNECTING)
        self._held: HeldMessage | None = None
        """The message held on this connection (:meth:`message_held`); ``_cond`` held."""
        self._cond = threading.Condition()

    @property
    def state(self) -> BrokerLink:
        return self._state

    def subscribed(self) -> None:
        """The broker confirmed the subscriptions."""
        self._become(lambda state: Connected(self._held))

    def message_held(
        self,
        topic: str,
        error: str,
        times: int,
        *,
        kept: bool = True,
        held: int = 1,
        let_go: bool = False,
    ) -> None:
        """A message on ``topic`` failed its handler ``times`` times (``error``) and is held
        on this connection (:class:`HeldMessage`; ``kept``: by the broker, ``held`` of them;
        ``let_go``: acknowledged unhandled, said until the connection ends): said until the
        connection ends (its next one gets it again, said again if it fails again)."""
        with self._cond:
            let_go = let_go or (self._held is not None and self._held.let_go)
            self._held = HeldMessage(topic, error, times, self._wall(), kept, held, let_go)
        self._become(lambda state: Connected(self._held) if isinstance(state, Connected) else state)

    def failed(self, problem: Problem) -> None:
        """An attempt to connect failed: down since the outage began (a retry that fails
        moves nothing but the reason)."""

        def after(state: BrokerLink) -> BrokerLink:
            if isinstance(state, Connected):
                return Lost(self._wall(), self._monotonic(), problem)
            return dataclasses.replace(state, problem=problem, refused=())

        self._become(after, ended=True)

    def subscriptions_refused(self, topic_filters: Sequence[str]) -> None:
        """The broker answered the subscriptions and refused ``topic_filters``: not receiving
        (down since it was last subscribed, or since the start)."""
        refused = tuple(topic_filters)
        problem = Problem.SUBSCRIPTION_REFUSED

        def after(state: BrokerLink) -> BrokerLink:
            if isinstance(state, Connected):
                return Lost(self._wall(), self._monotonic(), problem, refused)
            return dataclasses.replace(state, problem=problem, refused=refused)

        self._become(after)

    def handler_failed(self) -> None:
        """A callback raised on paho's thread (:class:`core.mqtt_callbacks.GuardedClient`),
        which drops the connection: down, said, until subscribed again."""
        self.failed(Problem.HANDLER_FAILED)

    def dropped(self) -> None:
        """The connection ended (paho's on_disconnect): lost, if it was up; a refusal's
        disconnect keeps the refusal as the reason."""
        self._become(
            lambda state: (
                Lost(self._wall(), self._monotonic(), Problem.DROPPED)
                if isinstance(state, Connected)
                else state
            ),
            ended=True,
        )

    def wait_for(self, predicate: Callable[[BrokerLink], bool], timeout: float) -> bool:
        """Block until ``predicate(state)`` holds (tests)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._state), timeout)

    def _become(self, after: Callable[[BrokerLink], BrokerLink], *, ended: bool = False) -> None:
        """Change the state; ``on_change`` is told under the lock, so the banner's changes
        arrive in the order they happened (paho's thread, and ``stop``'s disconnect on
        another; ``on_change`` only hands the words over, it waits for nothing). ``ended``:
        the connection ended, and with it the message held on it."""
        with self._cond:
            if ended:
                self._held = None
            before = self._state
            self._state = after(before)
            self._cond.notify_all()
            if self._state != before:
                self.on_change(self._state)


def state_word(link: BrokerLink) -> str:
    """``connected``, ``lost`` (was subscribed) or ``never_connected``: the link's state as
    :meth:`CaregiverService.status` and ``/healthz`` say it."""
    if isinstance(link, Connected):
        return "connected"
    return "lost" if isinstance(link, Lost) else "never_connected"


def status_of(link: BrokerLink, where: str, now_mono: float) -> dict[str, Any]:
    """The link as :meth:`CaregiverService.status` reports it (JSON-ready)."""
    if isinstance(link, Connected):
        if link.held is None:
            return {"state": state_word(link), "broker": where}
        held = link.held
        return {
            "state": state_word(link),
            "broker": where,
            "held": {"topic": held.topic, "times": held.times, "since": iso_utc(held.since)},
        }
    status: dict[str, Any] = {
        "state": state_word(link),
        "broker": where,
        "problem": link.problem.value,
        "since": iso_utc(link.since),
        "down_s": round(link.down_for(now_mono), 1),
    }
    if link.refused:
        status["refused"] = list(link.refused)
    return status


@dataclass(frozen=True, slots=True)
class BannerWords:
    """What the banner says while the link is down: ``lead`` at a glance, then ``detail``,
    the time it went down, and ``consequence``."""

    lead: str
    detail: str
    consequence: str


PROBLEM_WORDS = {
    Problem.CONNECTING: "not yet connected to the message broker at {where}",
    Problem.UNREACHABLE: "cannot reach the message broker at {where}",
    Problem.REFUSED: "the message broker at {where} refuses the service's login",
    Problem.DROPPED: "lost the connection to the message broker at {where}",
    Problem.SUBSCRIPTION_REFUSED: (
        "the message broker at {where} refuses the service's subscription to {topics}"
        " (check its ACL)"
    ),
    Problem.HANDLER_FAILED: (
        "the service failed handling a message from the message broker at {where} (a bug: "
        "see its log); reconnecting, so the broker sends it again"
    ),
}
NAMED_TOPICS = 3
"""The banner names this many refused topic filters, then says how many more."""


def topics_words(topic_filters: Sequence[str]) -> str:
    """``a, b and c``; past :data:`NAMED_TOPICS`, the first ones and ``N more``."""
    named = list(topic_filters[:NAMED_TOPICS])
    more = len(topic_filters) - len(named)
    if more:
        return f"{', '.join(named)} and {more} more"
    if len(named) > 1:
        return f"{', '.join(named[:-1])} and {named[-1]}"
    return "".join(named)


def held_words(held: HeldMessage) -> BannerWords:
    """The banner's words while ``held`` is held: the service receives, all but it."""
    return BannerWords(
        lead="A message from the treadmills cannot be handled",
        detail=(
            f"the service failed handling a message on {held.topic} the same way "
            f"{held.times} times ({held.error}; a bug in the service: see its log)"
        ),
        consequence=_held_consequence(held),
    )


def _held_consequence(held: HeldMessage) -> str:
    others = "Other messages are received, stored and notified."
    if held.let_go:
        return (
            f"{held.held} messages are held, each keeping one of the broker's in-flight slots: "
            "further ones that fail are acknowledged unhandled, so that the others keep "
            "coming. A treadmill sends an alert or a session again until it is receipted; "
            f"anything else let go is not sent again (see the log). {others}"
        )
    if not held.kept:
        return f"It came at QoS 0, which the broker never sends again: it is not handled. {others}"
    if held.held > 1:
        return (
            f"{held.held} such messages are left unacknowledged: the broker keeps them and "
            f"sends them again at the next connection. {others}"
        )
    return (
        "It is left unacknowledged: the broker keeps it and sends it again at the next "
        f"connection. {others}"
    )


def banner_words(link: BrokerLink, where: str) -> BannerWords | None:
    """The banner's words, or None when connected (no banner)."""
    if isinstance(link, Connected):
        return None
    return BannerWords(
        lead="Not receiving alerts from the treadmills",
        detail=PROBLEM_WORDS[link.problem].format(where=where, topics=topics_words(link.refused)),
        consequence="Falls will not be shown or notified until this is fixed.",
    )


def broker_address(host: str, port: int) -> str:
    """``host:port`` as people write it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
