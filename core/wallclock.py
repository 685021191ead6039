"""The wall clock people read, and whether it can be trusted yet.

Timing never reads the wall clock (:mod:`core.clock`); it is only for what people read:
when a session started and ended, and so the ISO week it counts in (:mod:`core.progress`).

The Raspberry Pi Zero 2 W has no battery-backed clock. Until NTP sets it, its wall clock
is the time saved at the last shutdown (fake-hwclock, systemd-timesyncd's saved clock), and
a home without network may never set it. A :class:`WallClock` says the time, the offset of
the wall clock from the monotonic clock (which moves only when the wall clock is *stepped*,
so a session can correct the wall times it recorded before the step), and whether the
kernel considers the clock synchronised. See docs/sessions.md, "Wall clock".
"""

from __future__ import annotations

import ctypes
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from core.clock import Clock

STEP_S = 2.0
"""A change of wall minus monotonic larger than this is a step of the wall clock (NTP
setting it, an operator's ``date -s``), not the slew of a running NTP (at most 500 ppm)."""

TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
"""systemd-timesyncd touches this file at its first synchronisation after boot."""

_STA_UNSYNC = 0x0040
_MAXERROR_LIMIT_US = 16_000_000
"""As systemd's ``ntp_synced()``: a maximum error of 16 s or more is not synchronised."""


class WallClock(Protocol):
    """The wall clock, for the times people read. Each call is a clock read or one
    non-blocking system call: no disk, network or lock, so the loop may call it."""

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
    event was stamped "clock not set" however well NTP had set the clock."""

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


SYNC_VALID_S = 5.0
"""How long :class:`WallStamper` trusts its last read of "synchronised" while the clock has
not been stepped. NTP's first setting of a wrong clock is a step, which ends the trust at
once; one that slews a nearly right clock into sync is read at most this late, the stamp
saying "not set" meanwhile (the caregiver then shows when it received the event: the safe
side)."""


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

    The safety loop stamps its events (rarely: state changes, detections, presses), and must
    not gain a system call per event burst: "synchronised" (one ``adjtimex``) is read at most
    once per ``valid_s`` of ``monotonic``, and again at once when the clock was stepped (wall
    minus monotonic moved more than :data:`STEP_S`: NTP's first sync, ``date -s``, which also
    marks the kernel's clock unsynchronised). Each stamp otherwise reads two clocks (vDSO, no
    system call). One per thread: it keeps its last read unlocked."""

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
