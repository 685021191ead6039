"""Delivers queued notifications through Apprise, on its own thread, with retries.

Rows in ``notifications`` are written by :mod:`caregiver.alerts` inside the
ingest transaction; this worker sends the due ones. A failure (service down,
bad credentials, no network) is logged at WARNING with the contact's name — never
the URL, which may hold a password — and retried after ``retry_s``, doubling up to an hour,
up to ``max_attempts``; then it is logged at ERROR and given up. The dashboard
keeps showing the alert either way. Ingestion never waits on any of this. A send that
has not ended :data:`SEND_DEADLINE_S` after it began is abandoned as a failed attempt
(logged at ERROR), so one contact whose lookup or server hangs delays neither the other
contacts nor the next round's pages.

Each message goes with its urgency (chosen where it was worded): Apprise's type
and the service's own priority, :mod:`caregiver.priority`.

ntfy and JSON contacts are sent the same request by :mod:`caregiver.notify_http`, with
the standard library; Apprise is imported only for another contact
(:func:`send_notification`).
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from caregiver import notify_http
from caregiver.apprise_plugins import load_plugins
from caregiver.outbox import ClockFrame, Outbox, PendingNotification, Target, Urgency, addressee
from caregiver.priority import notify_type, prioritised
from core.clock import WallSteps, since_boot
from core.wallclock import boot_id

if TYPE_CHECKING:  # the notifier process imports neither the config's checks nor Apprise
    import apprise

    from caregiver.config import CaregiverConfig

log = logging.getLogger(__name__)

Sender = Callable[[str, str, str, Urgency], bool]
"""``send(url, title, body, urgency)`` -> delivered?"""

GONE = "contact or URL no longer in the config"


def log_gone(note: PendingNotification) -> None:
    """Say that ``note`` was dropped as :data:`GONE` (its id, contact and URL place; never
    the URL): the notifier as a row comes due and the service at start say it alike."""
    log.warning(
        "queued notification %d for %s (url #%d when queued) not sent: %s",
        note.id,
        note.contact,
        note.url_index + 1,
        GONE,
    )


"""Why a queued message was dropped unsent: :func:`caregiver.outbox.addressee` did not find
the contact or the URL it was queued for (removed, renamed, or the URL edited)."""

MAX_PARALLEL = 4
"""Contacts a round sends to at once (:meth:`Notifier.deliver_due`): a thread each
while it sends, for the round only; a household has a few contacts."""
SEND_DEADLINE_S = 20.0
"""How long a round waits for one send before abandoning it (a failed attempt, retried).
A failing service ends sooner by its own timeouts (4 s to connect, 4 s to answer, 4 s to
look up the name of an ntfy or JSON server; several topics or addresses add up); Apprise's
name lookups, and a server that trickles its answer a byte at a time, have no bound but
this one."""

RETRY_EVERY_AT_MOST_S = 3600.0
"""A failed send is tried again ``escalation.retry_s`` after it failed, doubling at each
failure, but at most this long apart (or ``retry_s`` itself, if longer): while attempts remain,
a page is tried at least hourly. Doubling for good sent the 12th attempt of ``max_attempts =
12`` with the default ``retry_s = 30`` 8.5 hours after the 11th, of a fall; and from the 1025th
the doubled delay was no float (``max_attempts`` has no upper bound)."""

_WOKEN = 0
"""The token :meth:`Notifier.wake` puts on the results' queue (sends' tokens count from 1)."""


@dataclass(frozen=True)
class _Sending:
    """One send in flight: whose, which row, and when the round stops waiting for it
    (monotonic)."""

    token: int
    contact: int
    target: Target
    note: PendingNotification
    deadline: float


def apprise_send(url: str, title: str, body: str, urgency: Urgency = Urgency.NORMAL) -> bool:
    notifier = _apprise_for(url, urgency)
    if notifier is None:
        log.error("not a usable Apprise URL (check the contact's urls in the config)")
        return False
    return bool(notifier.notify(title=title, body=body, notify_type=notify_type(urgency)))


def send_notification(url: str, title: str, body: str, urgency: Urgency = Urgency.NORMAL) -> bool:
    """Send through :mod:`caregiver.notify_http` what it takes (ntfy, JSON), the rest through
    Apprise. A failure there raises :class:`~caregiver.notify_http.NotDelivered`."""
    try:
        return notify_http.send(url, title, body, urgency)
    except notify_http.ForApprise as why:
        if url not in _told:
            _told.add(url)
            log.info("a message for %s:// goes through Apprise: %s", url.partition(":")[0], why)
        return apprise_send(url, title, body, urgency)


_told: set[str] = set()


@functools.lru_cache(maxsize=64)
def _apprise_for(url: str, urgency: Urgency) -> apprise.Apprise | None:
    """One Apprise object per contact URL and urgency, made at the first message and kept:
    reading the URL and making its plugin was a fifth of each notification's CPU (0.4 of
    2 ms). The contacts come from the config, so the set is small and fixed."""
    import apprise  # here, not at the top: only the notifier's process pays for Apprise

    load_plugins([url])  # before Apprise reads it (it would import every plugin)
    notifier = apprise.Apprise()
    return notifier if notifier.add(prioritised(url, urgency)) else None


def warm_up(urls: Iterable[str]) -> None:
    """Load the Apprise plugins for ``urls`` now, not at the first alarm, which would wait
    for the import: 0.07 s for one plugin with ``requests`` on the benchmark machine, 0.4 s
    for all of them (a Pi takes several times longer). Only the plugins of those URLs'
    schemes are loaded where Apprise allows it (:mod:`caregiver.apprise_plugins`; all ~190,
    Apprise's own way, are 11 MB more), and none for the URLs :mod:`caregiver.notify_http`
    sends itself."""
    urls = notify_http.warm_up(urls)
    if not urls:
        return  # nobody to page through Apprise: it is not imported at all
    try:
        load_plugins(urls)
    except Exception:  # a plugin that fails to load must not stop the notifier
        log.exception("loading Apprise's plugins failed")


def contact_urls(config: CaregiverConfig) -> list[str]:
    """Every URL the notifier may send to."""
    return [url for contact in config.contacts for url in contact.urls]


def retry_delay(retry_s: float, attempts: int) -> float:
    """How long after its ``attempts``-th failure a send is tried again: ``retry_s``
    doubling, at most :data:`RETRY_EVERY_AT_MOST_S` (or ``retry_s``, if longer)."""
    return min(retry_s * 2.0 ** min(attempts - 1, 30), max(retry_s, RETRY_EVERY_AT_MOST_S))


class Notifier:
    def __init__(
        self,
        store: Outbox,
        config: CaregiverConfig,
        clock: Callable[[], float] = time.time,
        send: Sender = send_notification,
        may_send: Callable[[], bool] = lambda: True,
        monotonic: Callable[[], float] = time.monotonic,
        send_deadline_s: float = SEND_DEADLINE_S,
        progress: Callable[[], None] = lambda: None,
        boot: Callable[[], float] | None = None,
        frame_of: str | None = None,
    ) -> None:
        """``frame_of``: the name of ``boot``'s clock frame, which the retries' due times are
        stored in (:class:`~caregiver.storage.ClockFrame`; the service's, as its alerts'
        timers are); by default this machine's boot with the system's clocks, else this
        notifier's own."""
        self.store = store
        self.config = config
        self.clock = clock
        """The wall clock: the rows' due times are wall times (shared by the instances on one
        database, kept across restarts), read through :meth:`_now`, never directly."""
        if boot is None:  # a fake wall clock given alone (tests driving it) is its own
            boot = since_boot if clock is time.time else clock
        self._steps = WallSteps(clock, boot)
        """Steps of ``clock`` measured against ``boot`` (the time since boot): :meth:`_now`."""
        if frame_of is None:
            machine = boot_id() if boot is since_boot else ""
            frame_of = f"boot:{machine}" if machine else f"notifier:{id(self):x}:{time.time()}"
        self._frame = ClockFrame(frame_of, 0.0)
        """The clock frame at the last look (:meth:`_now`): the retries' due times are
        written in it."""
        self.send = send
        self.monotonic = monotonic
        """For the sends' deadlines (the wall ``clock`` is for due times)."""
        self.send_deadline_s = send_deadline_s
        self.progress = progress
        """Called on the round's thread as each send ends or is abandoned (its row marked):
        the notifier process reports its counters then (:mod:`caregiver.notify_process`), so
        its supervisor sees it working through a long round, not only when a round ends."""
        self._results: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        """``(token, error)`` of each send as it ends ("" delivered), from its thread."""
        self._tokens = 0
        self._abandoned: dict[int, _Sending] = {}
        """Sends abandoned at their deadline whose threads have not ended."""
        self.abandoned = 0
        """Sends abandoned since start (each also counted in :attr:`failed`)."""
        self.may_send = may_send
        """False while another instance holds the escalation lease (:mod:`caregiver.lease`):
        that instance sends, so that nobody is paged twice."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0

    def wake(self) -> None:
        """Messages were queued: a round under way takes them in at once (:data:`_WOKEN` on
        :attr:`_results`), else the next round starts now."""
        self._wake.set()
        self._results.put((_WOKEN, ""))

    def woken(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for :meth:`wake`; whether it came (and take it)."""
        came = self._wake.wait(timeout)
        self._wake.clear()
        return came

    def deliver_due(self) -> int:
        """Send every notification due now; return how many were delivered.

        One contact's messages go one after another, in the order they were queued (so a
        message dropped while the ones before it were sent is skipped, :meth:`Outbox.
        claim_notification`); different contacts are sent to at once, up to
        :data:`MAX_PARALLEL`. Messages queued while the round runs (:meth:`wake`) join it
        at once, behind their contact's earlier ones: a round of one contact's slow queue
        (seven pages at 19 s each) no longer holds another contact's new fall page until it
        ends. So do rows that come due by time while it runs (a retry after a failed send,
        including one of this round's own): the round waits for its sends' results no longer
        than until the next row comes due (:meth:`Outbox.next_notification_at`) and then
        reads what is due. Before, only a wake joined a round, and a retry of Bob's page
        waited for the end of a round of Ann's slow sends.
        Before, the round sent everything in turn, so a contact whose server did not answer
        (or whose name did not resolve: 10-40 s a message) held every other contact's fall
        page behind it. The sending runs on threads of its own; every row is read and marked
        here, on the caller's thread, as each send ends.

        Each attempt is counted in its row as the send begins (:meth:`Outbox.
        claim_notification`), and :attr:`progress` is called as each send ends or is
        abandoned: the notifier process's supervisor kills a child that reports nothing for
        120 s, and before, it reported only when a round ended, so a round of merely slow
        sends (one contact's queue of seven pages to a service taking 19 s each) was killed
        as stuck, and the sends in flight were sent again by its successor, uncounted.

        A send still running :attr:`send_deadline_s` after it began is abandoned
        (:meth:`_abandon`): a failed attempt, retried on the usual schedule, and the round
        goes on. Before, the round waited for every send, and the next round (a new fall's
        pages, the next escalation tier, every retry) waited for the slowest: Apprise's name
        lookups and a server that trickles its answer have no bound of their own, and the
        notifier process was killed after 120 s only to send the same row, hang again and
        never count the attempt."""
        self._collect_late()
        if not self.may_send():
            self._steps.forget()  # the holder's notifier keeps the due times meanwhile
            return 0
        now = self._now()
        lanes: dict[int, deque[tuple[Target, PendingNotification]]] = {}
        seen: set[int] = set()  # the rows this round has taken into its lanes

        def read_due() -> list[int]:
            """Add the rows due now that this round has not taken yet to their contacts'
            lanes; the contacts that got some."""
            got: list[int] = []
            for note in self.store.notifications_due(now):
                if note.id in seen:
                    continue  # in flight, or already in a lane, this round
                seen.add(note.id)
                # by the contact's name and the URL's key, wherever the config has them now:
                # before, by their places, so a reordered config paged someone else
                target = addressee(self.config.contacts, note)
                if target is None:
                    self.store.drop_notification(note.id, GONE)
                    log_gone(note)
                    continue
                lane = lanes.setdefault(target.contact, deque())
                if lane and lane[-1][1].id > note.id:  # a retry come due: in queued order
                    lane.append((target, note))
                    lanes[target.contact] = deque(sorted(lane, key=lambda t: t[1].id))
                else:
                    lane.append((target, note))
                got.append(target.contact)
            return got

        read_due()
        if not lanes:
            return 0
        max_attempts = self.config.escalation.max_attempts

        def take(contact: int) -> tuple[Target, PendingNotification] | None:
            """The contact's next message still due, and where it goes, its attempt counted
            in the row before the send begins (:meth:`Outbox.claim_notification`).

            Not one to a URL whose send abandoned earlier still hangs: another would most
            likely hang the same way and cost the round another deadline, so it stays due for
            a round after that send ends (the contact's other URLs are sent to meanwhile).
            The URL as written, whoever's message it is: a contact sharing it with another
            (or one URL in two escalation tiers) pages the same service, account and
            recipients, so their message waits too; a URL differing in anything (another
            token, topic, number) is sent to as usual.

            One whose count already reached ``max_attempts`` is given up unsent: the last
            of them began and never ended, so the notifier was stopped mid-send (killed as
            stuck, or crashed) — before, an attempt cut short so was never counted and every
            successor sent the row again."""
            lane = lanes[contact]
            while lane:
                target, note = lane.popleft()
                if target.url in self._hanging_urls():
                    seen.discard(note.id)  # read again once that send ends (:func:`join`)
                    continue
                if note.attempts >= max_attempts:
                    self._give_up_unfinished(note, now, target.url_index)
                    continue
                if self.store.claim_notification(note.id, note.attempts + 1):
                    return target, note
                # dropped while this round sent the ones before it: its alert was answered
                # (Transaction.close_alert), and a reminder now would come after the answer
            return None

        delivered = 0
        workers = min(MAX_PARALLEL, len(lanes))
        idle = deque(lanes)  # contacts with nothing in flight: the earliest message's first
        running: dict[int, _Sending] = {}

        def join() -> None:
            """Rows due now that the round has not taken (queued since it began, or come due
            by time: a retry) join it, behind their contact's earlier ones."""
            nonlocal now, workers
            now = self._now()
            busy = {s.contact for s in running.values()} | set(idle)
            for contact in dict.fromkeys(read_due()):
                if contact not in busy:
                    idle.append(contact)
            workers = min(MAX_PARALLEL, len(lanes))

        while idle or running:
            while idle and len(running) < workers:
                contact = idle.popleft()
                taken = take(contact)
                if taken is not None:
                    target, note = taken
                    sending = self._start(contact, target, note)
                    running[sending.token] = sending
            if not running:
                break
            wait_s = max(0.0, min(s.deadline for s in running.values()) - self.monotonic())
            due = self.store.next_notification_at(now)
            if due is not None:  # a row comes due by time (a retry): the round wakes for it
                wait_s = min(wait_s, max(0.0, due - self._now()))
            try:
                token, error = self._results.get(timeout=wait_s)
                if token == _WOKEN:  # messages queued since the round began: in with them
                    join()
                    continue
            except queue.Empty:
                at = self.monotonic()
                for overdue in [s for s in running.values() if s.deadline <= at]:
                    del running[overdue.token]
                    seen.discard(overdue.note.id)  # its retry may come due in this round
                    self._abandon(overdue, self._now())  # (its URL's other messages then wait)
                    self.progress()
                    if lanes[overdue.contact]:
                        idle.append(overdue.contact)
                join()  # and the rows that came due meanwhile
                continue
            ended = running.pop(token, None)
            if ended is None:
                if self._late(token, error):  # a send abandoned before ended now
                    join()  # the rows that waited for its URL
                continue
            seen.discard(ended.note.id)  # retried: it joins again when due (:func:`join`)
            if self._record(ended.note, error, self._now(), ended.target.url_index):
                delivered += 1
            self.progress()
            if lanes[ended.contact]:
                idle.append(ended.contact)  # after the contacts still waiting for a first
        return delivered

    def _now(self) -> float:
        """The wall clock, for the rows' due times, with every step of it measured since the
        last look applied to them first (:data:`caregiver.outbox.SHIFT`).

        Why here and not only in the escalation ticker, which moved them before: the ticker
        looks once a second, from the service; this round read and wrote due times in
        between. A retry recorded after a step and before the ticker's look was written in
        the stepped clock and then moved by the step again — stepped forward an hour, a
        failed fall page waited an hour more for its retry; back, it was tried again at
        once — and a round that read what was due before the ticker's look sent every retry
        due within the step at once. The notifier writes the retries' due times, so it keeps
        them: it measures the step before each read and write, on this one thread."""
        first = not self._steps.adopted
        now, offset, step = self._steps.look()
        self._frame = ClockFrame(self._frame.of, offset)
        if step or first:
            # the first look (of this process, or since it held the lease) brings the retries
            # written in this boot before it, a restart ago, into the clock now: the time
            # since boot ran on while the service was stopped, so a step meanwhile is exact
            # (:data:`caregiver.outbox.SHIFT_FRAMED`); before schema 26 it was never seen
            self.store.shift_notifications(self._frame, step)
        if step:
            log.warning(
                "the wall clock was stepped %+.0f s: notification retries moved with it", step
            )
        self._steps.adopt(offset)  # after the shift: one that failed is tried at the next look
        return now

    def _give_up_unfinished(self, note: PendingNotification, now: float, url_index: int) -> None:
        """Give up ``note`` unsent: its count of attempts (each counted as it began) reached
        ``max_attempts`` and the last has no result, so the notifier process was stopped
        while sending it. A message whose send wedges the whole process would
        otherwise have each successor killed on it in turn."""
        error = (
            f"attempt {note.attempts} began and never ended: the notifier process was "
            "stopped while sending it (killed as stuck, or crashed)"
        )
        self.failed += 1
        log.error(
            "giving up notifying %s (url #%d) after %d attempts: %s",
            note.contact,
            url_index + 1,
            note.attempts,
            error,
        )
        self.store.give_up_notification(note.id, note.attempts, error, now)

    def _hanging_urls(self) -> set[str]:
        return {s.target.url for s in self._abandoned.values()}

    def _start(self, contact: int, target: Target, note: PendingNotification) -> _Sending:
        """Send on a daemon thread of its own (one that hangs must not keep the notifier
        process from exiting, as a thread pool's would); its result comes back on
        :attr:`_results`."""
        self._tokens += 1
        sending = _Sending(
            self._tokens, contact, target, note, self.monotonic() + self.send_deadline_s
        )

        def run() -> None:
            self._results.put((sending.token, self._attempt(target.url, note)))

        threading.Thread(target=run, name="notify-send", daemon=True).start()
        return sending

    def _abandon(self, sending: _Sending, now: float) -> None:
        """Count the send that overran its deadline as a failed attempt (retried, or given up
        after ``max_attempts``, as any failure), logged at ERROR: the phone services are not
        answering. Its thread cannot be stopped; it is remembered until it ends."""
        self.abandoned += 1
        self._abandoned[sending.token] = sending
        log.error(
            "sending to %s (url #%d) did not end within %.0f s: abandoned (the page may not "
            "have reached them; that URL's messages wait until the send ends)",
            sending.note.contact,
            sending.target.url_index + 1,
            self.send_deadline_s,
        )
        self._record(
            sending.note,
            f"no answer within {self.send_deadline_s:g} s (the send was abandoned)",
            now,
            sending.target.url_index,
        )

    def _collect_late(self) -> None:
        """Take the results of abandoned sends that have ended since (and the wakes that
        came between rounds: the round about to start reads everything due anyway)."""
        while True:
            try:
                token, error = self._results.get_nowait()
            except queue.Empty:
                return
            if token != _WOKEN:
                self._late(token, error)
                self.progress()

    def _late(self, token: int, error: str) -> bool:
        """An abandoned send ended. Delivered after all: its row, if still waiting for the
        retry, is marked sent (no second page); else there is nothing more to do. Whether it
        was one (its URL is free again)."""
        sending = self._abandoned.pop(token, None)
        if sending is None:
            return False
        note = sending.note
        if error:
            log.info("the abandoned send to %s ended: %s", note.contact, error)
        elif self.store.still_due(note.id):
            self.store.notification_sent(note.id, note.attempts + 1)
            self.sent += 1
            log.info(
                "notified %s after all (the abandoned send ended): %s", note.contact, note.title
            )
        else:
            log.info("the abandoned send to %s was delivered after all", note.contact)
        return True

    @property
    def hanging(self) -> int:
        """Abandoned sends whose threads have not ended yet."""
        return len(self._abandoned)

    def _attempt(self, url: str, note: PendingNotification) -> str:
        """Send one message (on a pool thread): "" when delivered, else why not."""
        try:
            ok = self.send(url, note.title, note.body, note.urgency)
            return "" if ok else "the notification service did not accept it"
        except notify_http.NotDelivered as exc:
            return str(exc)
        except Exception as exc:  # a notifier plugin bug must not stop the worker
            return f"{type(exc).__name__}: {exc}"

    def _record(self, note: PendingNotification, error: str, now: float, url_index: int) -> bool:
        """Mark the row as the attempt ended: sent, due again later, or given up. ``url_index``:
        the URL's place in the contact's list now (logged as "url #n", from 1)."""
        esc = self.config.escalation
        attempts = note.attempts + 1
        if not error:
            self.sent += 1
            self.store.notification_sent(note.id, attempts)
            log.info("notified %s: %s", note.contact, note.title)
            return True
        self.failed += 1
        if attempts >= esc.max_attempts:
            log.error(
                "giving up notifying %s (url #%d) after %d attempts: %s",
                note.contact,
                url_index + 1,
                attempts,
                error,
            )
            self.store.give_up_notification(note.id, attempts, error, now)
        else:
            delay = retry_delay(esc.retry_s, attempts)
            log.warning(
                "notifying %s (url #%d) failed (attempt %d): %s; retrying in %.0f s",
                note.contact,
                url_index + 1,
                attempts,
                error,
                delay,
            )
            self.store.retry_notification(note.id, attempts, now + delay, error, self._frame)
        return False

    # -------------------------------------------------------------- thread

    def start(self, poll_s: float = 1.0) -> None:
        def loop() -> None:
            warm_up(contact_urls(self.config))
            while not self._stop.is_set():
                self._wake.wait(poll_s)
                self._wake.clear()
                if self._stop.is_set():
                    break
                try:
                    self.deliver_due()
                except Exception:
                    log.exception("notifier loop error")

        self._thread = threading.Thread(target=loop, name="caregiver-notify", daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread | None:
        """The sending thread (None before :meth:`start` and after :meth:`stop`)."""
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
