"""Starting the courier, and starting it again when it dies or hangs.

The supervisor is a thread of the monitor process that spends its life
blocked in ``wait()``: it costs the real-time loop nothing. It makes a
socket pair, starts a courier on one end (a child process in production and
in the demo; a thread in the in-process mode the fast tests use, same code
path otherwise), and gives the other end to :class:`CourierLink`, which
sends the courier its configuration and every record not yet on disk.

A courier that exits, or stays silent for :data:`COURIER_SILENT_S` while the
loop is listening (a new one: :data:`COURIER_START_SILENT_S` before its first
word, while it starts), is killed and replaced, with a growing pause between
attempts (0.5 s up to 10 s) so a courier that cannot start does not eat the
CPU the loop needs.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Protocol

from core.realtime import LoopHelperThread
from firmware.link.endpoint import CourierLink

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
HEALTHY_RUN_S = 60.0
"""A courier that ran this long resets the back-off."""


class CourierHandle(Protocol):
    """One running courier."""

    def wait(self, timeout: float) -> bool:
        """True once the courier has exited."""
        ...

    def kill(self) -> None:
        """End it now (it is hung or gone astray)."""
        ...


SpawnCourier = Callable[[socket.socket], CourierHandle]
"""Starts a courier serving the given socket end (which the spawner then owns)."""


class ProcessCourier:
    """The courier as a child process: ``python -m firmware.courier --fd N``."""

    def __init__(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "firmware.courier", "--fd", str(fd)],
                pass_fds=(fd,),
                stdin=subprocess.DEVNULL,
            )
        finally:
            sock.close()  # the child has its own copy
        self.pid = self._proc.pid

    def wait(self, timeout: float) -> bool:
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        self._proc.kill()
        self._proc.wait()


class ThreadCourier:
    """The courier on a thread of this process: the same service, for fast tests.

    :attr:`courier` is the running service once it has read its configuration.
    """

    def __init__(self, sock: socket.socket) -> None:
        from firmware.courier.service import Courier, serve

        self._sock = sock
        self.courier: Courier | None = None
        self.ready = threading.Event()

        def ready(courier: Courier) -> None:
            self.courier = courier
            self.ready.set()

        self._thread = threading.Thread(
            target=serve,
            args=(sock,),
            kwargs={"on_ready": ready},
            name="retroguard-courier",
            daemon=True,
        )
        self._thread.start()
        self.pid = os.getpid()

    def wait(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def kill(self) -> None:
        self._sock.close()
        self._thread.join(10.0)


class CourierSupervisor:
    """Keeps one courier serving ``link``."""

    def __init__(self, link: CourierLink, spawn: SpawnCourier = ProcessCourier) -> None:
        self.link = link
        self._spawn = spawn
        self._stop = threading.Event()
        self._thread = LoopHelperThread(self._run, "retroguard-supervisor")
        self.current: CourierHandle | None = None
        self.starts = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """After the link has said goodbye and closed: wait for the courier to finish."""
        self._stop.set()
        if self._thread.ident is not None:  # an app closed before it started has no thread
            self._thread.join(timeout)
        handle = self.current
        if handle is None:
            return True
        if handle.wait(timeout):
            return True
        log.warning("the courier did not finish within %.0f s: killed", timeout)
        handle.kill()
        return False

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while not self._stop.is_set():
            loop_end, courier_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                handle = self._spawn(courier_end)
            except OSError as exc:
                log.error("cannot start the courier: %s", exc)
                loop_end.close()
                courier_end.close()
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            self.current = handle
            self.starts += 1
            started = self.link.real_time()  # the clock its silence is measured on
            self.link.attach(loop_end)
            exited = self._watch(handle, started)
            if self._stop.is_set():
                return
            ran = self.link.real_time() - started
            if ran > HEALTHY_RUN_S:
                backoff = FIRST_BACKOFF_S
            log.error(
                "the courier %s after %.1f s; starting another in %.1f s",
                "exited" if exited else "stopped answering and was killed",
                ran,
                backoff,
            )
            self._stop.wait(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)

    def _watch(self, handle: CourierHandle, started: float) -> bool:
        """Until the courier exits (True) or hangs and is killed (False), or we stop."""
        while not self._stop.is_set():
            if handle.wait(0.5):
                return True
            if self.link.courier_hung(since=started):
                handle.kill()
                return False
        return False
