"""One wake-up of paho's network thread for a batch's acknowledgements and receipts.

paho 2.x queues every packet a thread sends (``publish``, ``ack``) and writes a byte to
its own socket pair to wake its network thread, once per packet. After each batch the
ingest thread acknowledges its (up to 16) messages and publishes a receipt per device:
some twenty wake-ups, each a system call that lets paho's thread take the interpreter
back, write one small packet and sleep again, while the ingest thread waits for its turn.
On a busy machine each such hand-over costs a scheduling delay: in a burst of 500 events
(benchmarks/caregiver.py, 200 devices) the acknowledgements took 60-90 ms of the ingest
thread's wall time for 3-5 ms of its CPU. Queued together and woken once, paho writes
them in one turn of its loop (15-25 ms).

:func:`coalesce_wakeups` puts a stand-in in front of the client's wake-up socket; inside
:meth:`Wakeups.quiet` the calling thread's wake-ups are owed, not sent, and the one owed
is sent on leaving (whatever happens in the block). Other threads (the web's commands)
wake paho as before. Only when paho's client still has the wake-up socket this was written
against; otherwise paho is left alone and ``quiet`` does nothing (each packet then wakes
paho, as it always did). If paho replaces its socket pair (it does not while it runs), the
stand-in is simply no longer used.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


class _QuietSocket:
    """Stands in for paho's wake-up socket (``_sockpairW``): paho only sends to it and closes
    it. A thread inside :meth:`Wakeups.quiet` only notes that it owes a wake-up."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._local = threading.local()

    def send(self, data: bytes) -> int:
        if getattr(self._local, "quiet", False):
            self._local.owed = True
            return len(data)
        return self._sock.send(data)

    def close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:  # anything else paho may ask of a socket
        return getattr(self._sock, name)


class Wakeups:
    """What :func:`coalesce_wakeups` returns: :meth:`quiet`, for one thread's burst of sends."""

    def __init__(self, stand_in: _QuietSocket | None) -> None:
        self._stand_in = stand_in

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """This thread's packets queued in the block wake paho's thread once, at its end."""
        stand_in = self._stand_in
        if stand_in is None:
            yield
            return
        local = stand_in._local
        local.quiet, local.owed = True, False
        try:
            yield
        finally:
            local.quiet = False
            if local.owed:
                # a full buffer: it is awake anyway; closed: the client stopped
                with contextlib.suppress(OSError):
                    stand_in.send(b"0")


def coalesce_wakeups(client: Any) -> Wakeups:
    """Put the stand-in in front of a started client's wake-up socket (after
    ``loop_start``); a :class:`Wakeups` that does nothing if paho's client is not the one
    this was written for."""
    sock = getattr(client, "_sockpairW", None)
    if isinstance(sock, _QuietSocket):
        return Wakeups(sock)
    if not isinstance(sock, socket.socket):
        log.warning("paho's wake-up socket is not where it was: each packet wakes it")
        return Wakeups(None)
    stand_in = _QuietSocket(sock)
    client._sockpairW = stand_in
    return Wakeups(stand_in)
