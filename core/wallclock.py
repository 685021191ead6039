"""The wall clock people read, and whether it can be trusted yet.

Timing never reads the wall clock (:mod:`core.clock`); it is only for what people read:
when a session started and ended, and so the ISO week it counts in (:mod:`core.progress`).

The Raspberry Pi Zero 2 W has no battery-backed clock. Until NTP sets it, its wall clock
is the time saved at the last shutdown (fake-hwclock, systemd-timesyncd's saved clock), and
a home without network may never set it. A :class:`WallClock` says the time, the offset of
the wall clock from the monotonic clock (which moves only when the wall clock is *stepped*,
so a session can correct the wall times it recorded before the step), and whether the
kernel considers the clock synchronised. See docs/sessions.md, "Wall clock".

The safety loop's thread never asks the host whether its clock is synchronised: under the
monitor's unit that is a file's ``stat`` (:class:`SystemWallClock`), and a filesystem call
may wait behind a lock of the kernel's. :class:`SyncWatch` asks on a thread of its own and
the loop reads its last answer.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from core.clock import Clock
from core.realtime import LoopHelperThread

log = logging.getLogger(__name__)

STEP_S = 2.0
"""A change of wall minus monotonic larger than this is a step of the wall clock (NTP
setting it, an operator's ``date -s``), not the slew of a running NTP (at most 500 ppm)."""

TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
"""systemd-timesyncd touches this file at its first synchronisation after boot."""

_STA_UNSYNC = 0x0040
_MAXERROR_LIMIT_US = 16_000_000
"""As systemd's ``ntp_synced()``: a maximum error of 16 s or more is not synchronised."""


BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
"""Linux's id of this boot: wall minus monotonic read in another boot says nothing (the
monotonic clock starts again at each boot)."""


def boot_id() -> str:
    """This boot's id ("" where the kernel has none to say: then no stored offset is
    compared, as across a reboot)."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def after_step(wall: str, offset_then: float, offset_now: float, *, timespec: str) -> str:
    """``wall``, read when wall minus monotonic was ``offset_then``, as the clock whose offset
    is now ``offset_now`` reads that moment: moved by the step between them, unchanged within
    :data:`STEP_S` (a running clock's slew, not a step).

    The one correction of a wall time read before a step (NTP's first setting of a Pi with no
    battery-backed clock, ``date -s``): a session's start and end
    (:func:`firmware.session.recording.follow_wall_clock`) and a progression's stage start
    (:mod:`firmware.storage.progressions`, which keeps the offset and :func:`boot_id` with it).
    A time that is not a time is returned as it is."""
    step = offset_now - offset_then
    if abs(step) <= STEP_S:
        return wall
    try:
        moved = dt.datetime.fromisoformat(wall) + dt.timedelta(seconds=step)
    except ValueError:
        return wall
    return moved.isoformat(timespec=timespec)


class WallClock(Protocol):
    """The wall clock, for the times people read. :meth:`now` and :meth:`offset` are clock
    reads (vDSO: no system call); :meth:`synchronized` of the host's clock is a system call
    or a file's ``stat`` (:class:`SystemWallClock`), so the loop's is a :class:`SyncWatch`."""

    def now(self) -> dt.datetime:
        """The wall time now (UTC, aware)."""
        ...

    def offset(self) -> float:
        """Wall minus monotonic seconds: constant while the wall clock runs, changed by a step."""
        ...

    def synchronized(self) -> bool:
        """The kernel says the wall clock is synchronised (NTP set it since boot)."""
        ...


class _Timex(ctypes.Structure):
    """The start of Linux's ``struct timex`` (longs: right on 32- and 64-bit), padded so the
    kernel's writes past ``status`` land in this buffer."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_char * 256),
    )


class SystemWallClock:
    """The host's wall clock; synchronised as ``timedatectl``'s ``NTPSynchronized`` says it:
    ``adjtimex`` (modes 0: only reads, no privilege, never blocks) without ``STA_UNSYNC``.
    Where ``adjtimex`` cannot be called, systemd-timesyncd's flag file: not Linux, or
    refused — the monitor's unit (``ProtectClock=yes``, ``SystemCallFilter=~@privileged``)
    denies the whole ``@clock`` group with EPERM, reads included, so on an installed Pi every
    event was stamped "clock not set" however well NTP had set the clock.

    :meth:`synchronized` is a system call, and under the unit a ``stat`` of ``/run`` (no
    disk, but a filesystem call that can wait behind a kernel lock): never on the safety
    loop's thread, which reads it through a :class:`SyncWatch`."""

    def __init__(self) -> None:
        self._adjtimex: Callable[[Any], int] | None
        try:
            self._adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex
        except (OSError, AttributeError):
            self._adjtimex = None

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def offset(self) -> float:
        return time.time() - time.monotonic()

    def synchronized(self) -> bool:
        if self._adjtimex is None:
            return TIMESYNC_FLAG.exists()
        tx = _Timex()
        if self._adjtimex(ctypes.byref(tx)) < 0:
            return TIMESYNC_FLAG.exists()
        return not tx.status & _STA_UNSYNC and tx.maxerror < _MAXERROR_LIMIT_US


class FakeWallClock:
    """A wall clock for tests and the demo: runs with ``clock`` (a simulated one), from
    ``start``; :meth:`step` sets it as NTP would, and :attr:`synced` is what it says."""

    def __init__(self, clock: Clock, start: dt.datetime, *, synced: bool = True) -> None:
        self._clock = clock
        self._offset = start.timestamp() - clock.monotonic()
        self.synced = synced

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._offset + self._clock.monotonic(), dt.UTC)

    def offset(self) -> float:
        return self._offset

    def synchronized(self) -> bool:
        return self.synced

    def step(self, seconds: float, *, synced: bool = True) -> None:
        """Set the clock ``seconds`` ahead (behind if negative), as NTP's first sync does."""
        self._offset += seconds
        self.synced = synced


class SaidWallClock(SystemWallClock):
    """The host's wall clock, "synchronised" as the monitor said at its hello
    (:class:`firmware.link.messages.Hello`'s ``wall_synced``) rather than as the host says.

    Only a monitor built to say it does (:func:`firmware.app.build_app`'s
    ``courier_wall_synced``: the demo, whose loop stamps from a simulated clock marked set):
    its courier then judges the clock as its loop does, and a caregiver's acknowledgement in
    the demo is no longer flagged "clock not set" beside the loop's events that are not (a
    container without network time). ``retroguard run`` says nothing, and its courier asks
    the host; the hello crosses the local socket between the two processes, never the network."""

    def __init__(self, synced: bool) -> None:
        super().__init__()
        self._said = synced

    def synchronized(self) -> bool:
        return self._said


SYNC_REFRESH_S = 1.0
"""How often :class:`SyncWatch`'s thread asks the host whether its clock is synchronised."""
SYNC_FIRST_READ_S = 2.0
"""How long :meth:`SyncWatch.start` waits for its thread's first answer, before the loop runs:
the monitor's start event is stamped with it (not "clock not set" on a Pi NTP set long ago).
An answer that takes longer leaves the first stamps "not set": the safe side."""


class _SyncReading(NamedTuple):
    synced: bool
    offset: float
    """Wall minus monotonic seconds as it was read: a step since makes it stale."""


class SyncWatch:
    """The host's wall clock for the safety loop: :meth:`now` and :meth:`offset` read the
    clocks on the caller's thread (vDSO, no system call); "synchronised" is asked of
    ``source`` (default :class:`SystemWallClock`: ``adjtimex``, or under the unit a ``stat``
    of systemd-timesyncd's flag file) every ``every_s`` on a thread of its own, and
    :meth:`synchronized` returns its last answer: one attribute read, no system call.

    Under the unit ``adjtimex`` is refused and the answer is a file's ``stat`` in ``/run``:
    no disk, but a filesystem call that can wait behind a lock of the kernel's (safety rule
    3: not on the loop's thread). The thread is a :class:`~core.realtime.LoopHelperThread`
    (made on the loop's thread, one step below it: at normal priority, preempted holding
    the GIL, it could stall the loop); it holds no GIL while it waits in the call.

    What "synchronised" means is unchanged: what the kernel, or timesyncd, said at most
    ``every_s`` ago, and never across a step. An answer read before the wall clock was
    stepped (NTP's first setting, ``date -s``: wall minus monotonic moved more than
    :data:`STEP_S`) says "not synchronised" until the thread has read again after it. Until
    its first answer (or after :meth:`stop`, the last one stands), not synchronised."""

    def __init__(self, source: WallClock | None = None, *, every_s: float = SYNC_REFRESH_S) -> None:
        self._source: WallClock = source if source is not None else SystemWallClock()
        self._every_s = every_s
        self._reading: _SyncReading | None = None
        """Replaced whole by the thread, read whole by the loop: no lock needed."""
        self._stop = threading.Event()
        self._read = threading.Event()
        self._failing = False
        self._thread: LoopHelperThread | None = None

    def now(self) -> dt.datetime:
        return self._source.now()

    def offset(self) -> float:
        return self._source.offset()

    def synchronized(self) -> bool:
        reading = self._reading
        if reading is None or not reading.synced:
            return False
        return abs(self._source.offset() - reading.offset) <= STEP_S

    def start(self, first_read_s: float = SYNC_FIRST_READ_S) -> bool:
        """Start the thread, made on the loop's (its priority: one step below the loop's),
        and wait up to ``first_read_s`` for its first answer; True once it has one."""
        if self._thread is None:
            self._thread = LoopHelperThread(self._run, "retroguard-clock")
            self._thread.start()
        return self._read.wait(first_read_s)

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (its last answer stands)."""
        self._stop.set()
        if self._thread is not None and self._thread.ident is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            self.read_now()
            if self._stop.wait(self._every_s):
                return

    def read_now(self) -> None:
        """Ask ``source`` once (the thread's work; tests call it to step it by hand).
        Synchronised first, then the offset: a clock synchronised by then has made its step,
        and the offset kept is the one after it. A failed read (a ``stat`` refused) is "not
        synchronised", logged once until a read succeeds again."""
        try:
            synced = self._source.synchronized()
        except Exception:
            if not self._failing:
                log.exception("cannot tell whether the wall clock is synchronised: taken as not")
            self._failing = True
            synced = False
        else:
            self._failing = False
        self._reading = _SyncReading(synced, self._source.offset())
        self._read.set()


SYNC_VALID_S = 5.0
"""How long :class:`WallStamper` trusts its last read of "synchronised" while the clock has
not been stepped. NTP's first setting of a wrong clock is a step, which ends the trust at
once; one that slews a nearly right clock into sync is read at most this late, the stamp
saying "not set" meanwhile (the caregiver then shows when it received the event: the safe
side). The loop reads a :class:`SyncWatch`, whose answer may itself be up to
:data:`SYNC_REFRESH_S` old and never predates a step: "synchronised" seen at most 6 s late,
and after NTP's first step "not set" for at most this long (the safe side again)."""


class WallStamp(NamedTuple):
    """An event's wall time, and whether the clock was synchronised when it was read."""

    wall_time: str
    """ISO 8601 UTC with milliseconds: what people read."""
    synced: bool


class WallStamper:
    """Stamps events with the wall time and whether the clock can be trusted (docs/mqtt.md,
    the event's ``wall_unsynced``): a Pi after a power cut stamps a fall with the time of its
    last shutdown until NTP sets the clock, and a caregiver must not read that as when it
    happened.

    The safety loop stamps its events (rarely: state changes, detections, presses); "synchronised"
    is read at most once per ``valid_s`` of ``monotonic``, and again at once when the clock was
    stepped (wall minus monotonic moved more than :data:`STEP_S`: NTP's first sync, ``date -s``,
    which also marks the kernel's clock unsynchronised). Each stamp otherwise reads two clocks
    (vDSO, no system call). The loop's stamper reads a :class:`SyncWatch` (the monitor's,
    :func:`firmware.app.build_app`), so even that read is no system call on its thread: the
    host's clock itself (the default) is for stampers off the loop. One per thread: it keeps
    its last read unlocked."""

    def __init__(
        self,
        wall: WallClock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        valid_s: float = SYNC_VALID_S,
    ) -> None:
        self._wall: WallClock = wall if wall is not None else SystemWallClock()
        self._monotonic = monotonic
        self._valid_s = valid_s
        self._synced = False
        self._read_at: float | None = None
        self._offset = 0.0

    def stamp(self) -> WallStamp:
        """The wall time now and whether the clock is synchronised (as last read)."""
        now = self._monotonic()
        offset = self._wall.offset()
        if (
            self._read_at is None
            or now - self._read_at >= self._valid_s
            or abs(offset - self._offset) > STEP_S
        ):
            # synchronised first, then the offset: a clock synchronised by then has made its
            # step, and the offset remembered is the one after it
            self._synced = self._wall.synchronized()
            self._offset = self._wall.offset()
            self._read_at = now
        when = self._wall.now().isoformat(timespec="milliseconds")
        return WallStamp(when, self._synced)


def system_stamp() -> WallStamp:
    """The host's wall time and whether it is synchronised, read now (one ``adjtimex``): for
    events stamped off the safety loop (the courier's faults, its test alarms)."""
    global _system
    if _system is None:
        _system = SystemWallClock()
    return WallStamp(_system.now().isoformat(timespec="milliseconds"), _system.synchronized())


_system: SystemWallClock | None = None
