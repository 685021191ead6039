"""Phone notifications sent from a process of their own, which the service owns.

Why a process: Apprise costs the process that imports it some 16 MB with the plugins
of a json:// or ntfy:// contact (:mod:`caregiver.apprise_plugins`; 27 MB with all
~190, Apprise's own way) and each notification some 3 ms of CPU in Apprise and
``requests`` (ntfy and JSON contacts are now sent without it, :mod:`caregiver.notify_http`;
the notifier still runs apart, for the other services and to keep the sending off the
ingest process's core). In the service's own process both were paid by the process that
ingests and serves the live feed: during a burst of falls its one core (the GIL)
went to Apprise while events waited for the browsers. In a child process the web and
ingest side stays small and a burst's notifications run on the machine's other core.

Nothing is lost when the child dies, because the child holds nothing: every
notification is a row in the database, written by :mod:`caregiver.alerts` in the
ingest transaction (the outbox), and marked sent only after Apprise delivered it.
The child sends what is due from the database when it starts and whenever the
service wakes it; if it is killed between sending and marking, the row is still
due and the next child sends it again (at least once, never lost). The service
restarts a child that exits (:class:`NotifierProcess`): at once if it had run a while,
else after a pause growing from 1 s to 30 s (a child that cannot start is not respawned
in a tight loop).

The two processes speak typed messages (:data:`ToNotifier`, :data:`FromNotifier`),
one JSON line each, over the child's stdin and a pipe of its own (the child's
stdout is sent to its stderr, so a library printing cannot garble them). The child
ends when its stdin closes: a service that dies takes its notifier with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from typing import IO, TYPE_CHECKING

import msgspec

from caregiver.config import CaregiverConfig

if TYPE_CHECKING:  # the parent's: the child (this module's main) does without it
    import subprocess

log = logging.getLogger(__name__)


class Begin(msgspec.Struct, tag="begin", frozen=True):
    """The first message to a new child: what it needs to send as this service instance."""

    config: CaregiverConfig
    instance: str
    """The service's instance id: the child sends only while the service holds the escalation
    lease (:mod:`caregiver.lease`), so that of several instances only one pages. It never
    renews the lease itself: a service whose own escalation is stuck loses the lease to
    another instance, notifications included."""
    log_level: int = logging.INFO
    poll_s: float = 1.0
    """Due notifications are looked for this often even unwoken (retries come due so)."""


class Wake(msgspec.Struct, tag="wake", frozen=True):
    """Notifications were queued: send what is due now."""


class Stop(msgspec.Struct, tag="stop", frozen=True):
    """Finish the round in hand and exit."""


class Delivered(msgspec.Struct, tag="delivered", frozen=True):
    """The child's counters since it started, after every round and as each send ends or is
    abandoned: its heartbeat too (:data:`STUCK_S`)."""

    sent: int
    failed: int
    abandoned: int = 0
    """Sends abandoned at :data:`caregiver.notify.SEND_DEADLINE_S` (each also in ``failed``)."""
    hanging: int = 0
    """Of those, the ones whose threads still hang now: a contact's lookup or server is not
    answering at all."""


class Ready(msgspec.Struct, tag="ready", frozen=True):
    """The child has loaded Apprise and sent what was due when it started."""

    plugins: tuple[str, ...] = ()
    """The Apprise plugin modules it imported (:mod:`caregiver.apprise_plugins`): the
    contacts' services only, or all ~190 when one of them is not in its list."""
    apprise: bool = False
    """Whether it imported Apprise at all: not for ntfy and JSON contacts only
    (:mod:`caregiver.notify_http` sends those)."""


ToNotifier = Begin | Wake | Stop
FromNotifier = Delivered | Ready

MAX_PAUSE_S = 30.0
"""The longest wait before restarting a child that keeps dying."""
STEADY_S = 60.0
"""A child that lived this long died by accident, not of a fault in starting: restart at once."""
STUCK_S = 120.0
"""A child silent this long (no send ended or abandoned, no round finished: the database
hangs, or the process is wedged) is killed and replaced; the rows it was sending have their
attempt counted already (:meth:`caregiver.outbox.Outbox.claim_notification`), so they are
retried on the usual schedule and given up after ``max_attempts``. Slow sends do not get
here: each ends or is abandoned within :data:`caregiver.notify.SEND_DEADLINE_S`, and the
child reports as each does. Before, it reported only when a round ended, so a round of slow
sends (a contact's queue of seven pages to a service taking 19 s each: 133 s) was killed
here, its sends in flight uncounted and sent again by the successor."""
NICENESS = 5
"""How much lower than the service's the child's CPU priority is (``os.nice``). Its work is
downstream of ingest: a notification is due only once its alert is stored. During a burst
on two busy cores the child's Apprise work (0.3-0.6 s for 167 falls) took the CPU that
ingest needed, and so delayed the burst's own pages as well as the browsers; behind the
service instead, the burst's falls reached the receiver sooner (p99 1057-1124 ms against
1181-1465 ms) and the browsers too (p99 347-466 ms against 479-514 ms; benchmarks/
caregiver.py, 200 devices, load average 2-4). A lone fall finds the CPU idle either way
(10 ms p50 to the receiver, unchanged); nice 5 is a weight, not a wait: CFS still gives
the child about a third of a core the service wants."""


class NotifierProcess:
    """The service's side: starts the child, wakes it, restarts it when it dies."""

    def __init__(
        self,
        config: CaregiverConfig,
        instance: str,
        poll_s: float = 1.0,
        stuck_s: float = STUCK_S,
    ) -> None:
        self.config = config
        self.instance = instance
        self.poll_s = poll_s
        self.stuck_s = stuck_s
        self.killed_stuck = 0
        """Children killed because they stopped reporting (no send ended, no round)."""
        self._heard_at = time.monotonic()
        self.sent = 0
        """Notifications delivered, over every child this service started."""
        self.failed = 0
        self.abandoned = 0
        """Sends abandoned at their deadline, over every child (each also in :attr:`failed`)."""
        self.hanging = 0
        """The current child's abandoned sends still hanging (a killed child's die with it)."""
        self.restarts = 0
        self.plugins: tuple[str, ...] = ()
        """The Apprise plugins the current child loaded (it says so when ready)."""
        self.apprise = False
        """Whether the current child imported Apprise (it says so when ready)."""
        self.ready = threading.Event()
        """Set when the current child has started and sent what was due (tests wait on it)."""
        self._counted = Delivered(0, 0)
        self._process: subprocess.Popen[bytes] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(
            target=self._supervise, name="caregiver-notify", daemon=True
        )
        self._thread.start()

    @property
    def thread(self) -> threading.Thread | None:
        """The supervisor (None before :meth:`start` and after :meth:`stop`): dead, no wake
        reaches the child and a child that exits is never started again."""
        return self._thread

    def wake(self) -> None:
        """Any thread, never blocks: the supervisor passes it on (many wakes, one message)."""
        self._wake.set()

    def stop(self) -> None:
        import subprocess

        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                self._send(process, Stop())
                assert process.stdin is not None
                process.stdin.close()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    # ------------------------------------------------------------ the child's keeper

    def _spawn(self) -> None:
        import subprocess  # here: the child process imports this module and never spawns

        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "caregiver.notify_process", str(write_fd)],
                stdin=subprocess.PIPE,
                pass_fds=(write_fd,),
                close_fds=True,
            )
        finally:
            os.close(write_fd)
        self.ready.clear()
        with self._lock:
            self._process = process
            self._counted = Delivered(0, 0)
            self.hanging = 0
            self._heard_at = time.monotonic()  # its first round comes after Apprise loads
        begin = Begin(self.config, self.instance, logging.getLogger().getEffectiveLevel())
        self._send(process, msgspec.structs.replace(begin, poll_s=self.poll_s))
        reader = threading.Thread(
            target=self._read,
            args=(process, os.fdopen(read_fd, "rb")),
            name="caregiver-notify-reader",
            daemon=True,
        )
        reader.start()
        log.info("notifier process %d started", process.pid)

    @staticmethod
    def _send(process: subprocess.Popen[bytes], message: ToNotifier) -> None:
        assert process.stdin is not None
        process.stdin.write(msgspec.json.encode(message) + b"\n")
        process.stdin.flush()

    def _read(self, process: subprocess.Popen[bytes], pipe: IO[bytes]) -> None:
        decoder = msgspec.json.Decoder(FromNotifier)
        with pipe:
            for line in pipe:
                try:
                    message = decoder.decode(line)
                except msgspec.ValidationError:
                    log.error("the notifier process sent something unreadable: %r", line[:200])
                    continue
                if isinstance(message, Ready):
                    self.plugins = message.plugins
                    self.apprise = message.apprise
                    log.info(
                        "notifier process %d ready; Apprise plugins loaded: %s",
                        process.pid,
                        (
                            ", ".join(message.plugins)
                            if len(message.plugins) < 10
                            else f"all {len(message.plugins)}"
                        )
                        if message.apprise
                        else "none, Apprise not imported (ntfy and JSON are sent directly)",
                    )
                    self.ready.set()
                    continue
                with self._lock:
                    if self._process is process:
                        self._heard_at = time.monotonic()
                        self.sent += message.sent - self._counted.sent
                        self.failed += message.failed - self._counted.failed
                        self.abandoned += message.abandoned - self._counted.abandoned
                        self.hanging = message.hanging
                        self._counted = message
        self._wake.set()  # the pipe closed: the child is gone, the supervisor restarts it

    def _supervise(self) -> None:
        pause = 0.0
        started = time.monotonic()
        while not self._stop.is_set():
            woken = self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            process = self._process
            assert process is not None
            if process.poll() is None and time.monotonic() - self._heard_at > self.stuck_s:
                log.error(
                    "the notifier process %d reported no send ended and no round finished in "
                    "%.0f s: killing it",
                    process.pid,
                    self.stuck_s,
                )
                self.killed_stuck += 1
                process.kill()
                process.wait(10)
            if process.poll() is None:
                if not woken:
                    continue  # it looks for what is due every poll_s by itself
                try:
                    self._send(process, Wake())
                    continue
                except OSError:  # it is dying: its exit is seen below
                    process.wait(10)
            if process.poll() is None:
                continue
            log.error(
                "the notifier process %d exited (%s): starting another, which sends what is "
                "still due from the database",
                process.pid,
                process.returncode,
            )
            pause = (
                0.0
                if time.monotonic() - started > STEADY_S
                else min(MAX_PAUSE_S, max(1.0, pause * 2))
            )
            if pause and self._stop.wait(pause):
                return
            self.restarts += 1
            started = time.monotonic()
            try:
                self._spawn()
            except OSError:
                log.exception("could not start the notifier process")


# ------------------------------------------------------------------ the child


def _child(out: IO[bytes]) -> int:
    from caregiver.apprise_plugins import loaded_plugins
    from caregiver.notify import Notifier, contact_urls, warm_up
    from caregiver.outbox import ESCALATION, open_outbox

    decoder = msgspec.json.Decoder(ToNotifier)
    first = decoder.decode(sys.stdin.buffer.readline())
    if not isinstance(first, Begin):
        return 2
    logging.basicConfig(
        level=first.log_level, format="%(levelname)s notifier: %(name)s: %(message)s"
    )
    store = open_outbox(first.config.server.database)  # not the whole store: caregiver/outbox.py

    def may_send() -> bool:
        """While the service holds the escalation lease (checked, never renewed here)."""
        try:
            return store.lease_holder(ESCALATION) == first.instance
        except Exception:  # StorageFault, sqlite3.Error: unsure who holds it, so not now
            return False

    def report(message: FromNotifier) -> None:
        out.write(msgspec.json.encode(message) + b"\n")
        out.flush()

    def progress() -> None:
        """As each send ends or is abandoned, mid-round: the service's supervisor hears the
        child working (:data:`STUCK_S`), however many slow sends its round holds."""
        report(Delivered(notifier.sent, notifier.failed, notifier.abandoned, notifier.hanging))

    notifier = Notifier(store, first.config, may_send=may_send, progress=progress)
    stop = threading.Event()

    def listen() -> None:
        for line in sys.stdin.buffer:
            message = decoder.decode(line)
            if isinstance(message, Stop):
                break
            notifier.wake()
        stop.set()  # Stop, or the service closed our stdin (it exited)
        notifier.wake()

    warm_up(contact_urls(first.config))
    threading.Thread(target=listen, name="notify-listen", daemon=True).start()
    counted = (-1, -1, -1, -1)
    woken = True  # the first round sends whatever a dead predecessor left due
    while not stop.is_set():
        if not woken:
            notifier.woken(first.poll_s)
        woken = False
        if stop.is_set():
            break
        try:
            notifier.deliver_due()
        except Exception:
            log.exception("notifier round failed")
        first_round = counted == (-1, -1, -1, -1)
        counted = (notifier.sent, notifier.failed, notifier.abandoned, notifier.hanging)
        report(Delivered(*counted))  # every round: the service knows it is not stuck
        if first_round:
            report(Ready(loaded_plugins(), "apprise" in sys.modules))
    store.close()
    return 0


def main() -> int:
    """``python -m caregiver.notify_process <fd>``: the child, reporting on file descriptor
    ``fd`` (started by :class:`NotifierProcess`, not by hand)."""
    out = os.fdopen(int(sys.argv[1]), "wb")
    os.dup2(2, 1)  # anything printed goes to the log, not into the message pipe
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    try:
        return _child(out)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
