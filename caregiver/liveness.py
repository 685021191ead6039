"""Tells systemd the caregiver service is alive: only while every part that shows or pages
an alert is turning.

A caregiver service that has crashed is restarted by ``Restart=always``; one that hangs
(an escalation ticker stuck on a database lock, an event loop blocked, the ingest thread
dead after an unexpected exception) keeps its process, its port and its broker session, and
pages nobody. systemd's watchdog restarts it only if the pings stop, so the pings must come
from a check of the parts rather than from a thread of their own that is always fine:

* a **heartbeat** part must call :meth:`Heartbeat.beat` at least every ``within_s``
  (the escalation ticker, once a second; the dashboard's event loop, which the pinger
  asks to beat every ping through ``post``);
* a **busy** part may wait for work as long as it likes, but one piece of work may not take
  longer than ``within_s`` (an ingest batch stuck on the database);
* a **thread** part must still be running.

:class:`SystemdPinger` sends ``READY=1`` once the service serves, then ``WATCHDOG=1`` every
``WatchdogSec / 4`` while :meth:`Liveness.problems` is empty, and a ``STATUS=`` naming the
part when it is not (logged once per episode). The clock is monotonic (rule 5).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from core.sdnotify import Notifier

log = logging.getLogger(__name__)

SERVING = "serving; every part is turning"
"""The ``STATUS=`` while every part is turning. It says nothing of the broker: it is sent
once an episode, and the link comes and goes between (``/healthz/receiving`` and the
dashboard's banner say it; it said "receiving from the broker" through outages)."""
PING_FRACTION = 4
"""Ping every ``WatchdogSec / PING_FRACTION``: three pings may be lost before systemd acts."""

Clock = Callable[[], float]


@dataclass(slots=True)
class Heartbeat:
    """A part that must beat at least every ``within_s`` seconds."""

    name: str
    within_s: float
    clock: Clock
    last: float = field(default=0.0)

    def beat(self) -> None:
        self.last = self.clock()

    def problem(self, now: float) -> str | None:
        silent = now - self.last
        if silent > self.within_s:
            return f"{self.name} silent for {silent:.0f} s (allowed {self.within_s:g} s)"
        return None


@dataclass(slots=True)
class Busy:
    """A part whose every piece of work must end within ``within_s`` seconds."""

    name: str
    within_s: float
    clock: Clock
    since: float | None = None

    @contextmanager
    def working(self) -> Iterator[None]:
        self.since = self.clock()
        try:
            yield
        finally:
            self.since = None

    def problem(self, now: float) -> str | None:
        since = self.since
        if since is not None and now - since > self.within_s:
            return f"{self.name} stuck for {now - since:.0f} s (allowed {self.within_s:g} s)"
        return None


@dataclass(frozen=True, slots=True)
class ThreadPart:
    """A part that is a thread, which must still be running."""

    name: str
    thread: Callable[[], threading.Thread | None]
    """The thread as it is now (None: not started, or stopped on purpose)."""

    def problem(self, now: float) -> str | None:
        thread = self.thread()
        if thread is not None and not thread.is_alive():
            return f"{self.name} has stopped"
        return None


Part = Heartbeat | Busy | ThreadPart


class Liveness:
    """The parts the service is alive by; :meth:`problems` says which are not turning."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._parts: list[Part] = []

    def heartbeat(self, name: str, within_s: float) -> Heartbeat:
        part = Heartbeat(name, within_s, self.clock, self.clock())
        self._parts.append(part)
        return part

    def busy(self, name: str, within_s: float) -> Busy:
        part = Busy(name, within_s, self.clock)
        self._parts.append(part)
        return part

    def thread(self, name: str, thread: Callable[[], threading.Thread | None]) -> None:
        self._parts.append(ThreadPart(name, thread))

    def problems(self) -> list[str]:
        """What is wrong, in words, for each part that is not turning."""
        return [text for _, text in self.failing()]

    def failing(self) -> list[tuple[str, str]]:
        """Each part that is not turning: its name, and what is wrong in words (which changes
        as a silence grows: the name says whether it is still the same parts)."""
        now = self.clock()
        found = ((part.name, part.problem(now)) for part in self._parts)
        return [(name, text) for name, text in found if text is not None]


class SystemdPinger:
    """``READY=1`` once ``serving()``, then ``WATCHDOG=1`` while :class:`Liveness` is clear.

    ``post`` hands a callable to the dashboard's event loop (False when there is none yet):
    each round posts ``dashboard.beat``, so a blocked loop stops the pings.
    """

    def __init__(
        self,
        notifier: Notifier,
        liveness: Liveness,
        *,
        watchdog_s: float | None,
        serving: Callable[[], bool],
        dashboard: Heartbeat | None = None,
        post: Callable[[Callable[[], None]], bool] | None = None,
    ) -> None:
        self.notifier = notifier
        self.liveness = liveness
        self.interval_s = None if watchdog_s is None else watchdog_s / PING_FRACTION
        self.serving = serving
        self.dashboard = dashboard
        self.post = post
        self.ready_sent = False
        self.pings = 0
        self.failing: list[str] = []
        """The parts not turning at the last round (by name): a change is logged and said."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def round(self) -> None:
        """One look: READY when first serving, then a ping or the parts that are not alive."""
        if not self.ready_sent:
            if not self.serving():
                return
            self.ready_sent = True
            self.notifier.ready(SERVING)
        if self.dashboard is not None and self.post is not None:
            self.post(self.dashboard.beat)
        failing = self.liveness.failing()
        names = [name for name, _ in failing]
        if names != self.failing:  # once an episode, not at every round of a growing silence
            if failing:
                text = "; ".join(words for _, words in failing)
                log.error("not telling systemd all is well (it restarts the service): %s", text)
                self.notifier.status(f"not alive: {text}")
            else:
                log.info("every part of the service is turning again")
                self.notifier.status(SERVING)
            self.failing = names
        if not failing and self.interval_s is not None:
            self.pings += 1
            self.notifier.watchdog()

    def start(self) -> None:
        """Run :meth:`round` on a thread: every ``WatchdogSec / 4``, or every 0.5 s until
        READY when there is no watchdog (READY still matters for ``Type=notify``)."""
        if not self.notifier.enabled:
            return

        def run() -> None:
            while True:
                self.round()
                if self.ready_sent and self.interval_s is None:
                    return
                period = self.interval_s if self.ready_sent and self.interval_s else 0.5
                if self._stop.wait(period):
                    return

        self._thread = threading.Thread(target=run, name="caregiver-systemd", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None and self.ready_sent:
            self.notifier.stopping("stopping")
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.notifier.close()
