"""The courier's end of the link: blocking, framed, safe to send from several threads."""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections import deque
from collections.abc import Iterator

import msgspec

from firmware.link import messages as link_messages
from firmware.link.framing import FrameError, FrameReader, frame

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0
"""A loop that takes nothing for this long is gone (or hung: its hardware has dropped the relay)."""
READ_CHUNK = 65536
DRAIN_BYTES = 1024 * 1024
"""Bytes one drain takes at most (:meth:`LoopChannel.drains`): the courier commits a drain's
records in one transaction, so a loop that hands over faster than it stores still gets its
records confirmed in bounded bites."""


class LoopChannel:
    """Messages to and from the monitor loop over one stream socket."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        sock.settimeout(SEND_TIMEOUT_S)
        self._sock = sock
        self._send_lock = threading.Lock()
        self.closed = threading.Event()
        self._end_lock = threading.Lock()
        self._goodbye = False
        """The loop said goodbye: it is stopping on purpose and closes the link after it."""
        self._read_over = False
        self._send_failure: OSError | None = None
        self._incoming = self._read()
        self._left: deque[link_messages.ToCourier] = deque()
        """Messages of a drain read and not yet taken (:meth:`messages` takes one at a time)."""

    def send(self, message: link_messages.ToLoop) -> bool:
        """Send one message; False (and the channel closed) when the loop is gone."""
        if self.closed.is_set():
            return False
        data = frame(link_messages.encode(message))
        try:
            with self._send_lock:
                self._sock.sendall(data)
        except OSError as exc:
            with self._end_lock:
                first = self._send_failure is None
                if first:
                    self._send_failure = exc
                say_now = first and self._read_over  # else reading says it, once at its end
            self.closed.set()
            if say_now:
                self._loop_gone(exc)
            return False
        return True

    def _loop_gone(self, exc: OSError) -> None:
        """Say that a send to the loop failed: the loop is gone. After its goodbye that is
        how a monitor stops (it closes the link right after it, and a heartbeat or a
        confirmation sent meanwhile finds it closed): not news, so only at debug level."""
        if self._goodbye:
            log.debug("the monitor closed the link after its goodbye: %s", exc)
        else:
            log.info("monitor loop gone: %s", exc)

    def messages(self) -> Iterator[link_messages.ToCourier]:
        """The loop's messages in order, until it closes the link (or garbles it).

        One stream for the channel's life, shared with :meth:`drains`: a caller that stops
        after the first message and asks again later misses nothing that already arrived.
        """
        while True:
            if not self._left:
                drain = next(self._incoming, None)
                if drain is None:
                    return
                self._left.extend(drain)
            yield self._left.popleft()

    def drains(self) -> Iterator[list[link_messages.ToCourier]]:
        """The loop's messages in order, a drain at a time: what had arrived when the courier
        looked, never waiting for more (at most :data:`DRAIN_BYTES`).

        The courier commits a drain's events and session records in one transaction: the
        loop sends what one iteration handed over in one piece, so a trip's event and the
        session record with the trip counted, handed over together, are on disk together
        (docs/sessions.md, "A trip in the last moments"). A drain never waits for what has not
        arrived: an alert is stored as soon as it is read.
        """
        while True:
            if self._left:
                drain = list(self._left)
                self._left.clear()
            else:
                taken = next(self._incoming, None)
                if taken is None:
                    return
                drain = taken
            yield drain

    def _read(self) -> Iterator[list[link_messages.ToCourier]]:
        """The loop's messages, a drain at a time; a send that failed meanwhile is told of at
        the end, when it is known whether the loop said goodbye first (the goodbye may still
        wait in the socket when a send finds the link closed)."""
        reader = FrameReader()
        try:
            while True:
                if self.closed.is_set() and not self._arrived():
                    break
                try:
                    data = self._sock.recv(READ_CHUNK)
                except TimeoutError:
                    continue
                except OSError as exc:  # a reset: the loop closed with our last words unread
                    self._link_reset(exc)
                    break
                drain: list[link_messages.ToCourier] = []
                taken = len(data)
                over = not data
                while data:
                    try:
                        for payload in reader.feed(data):
                            message = link_messages.decode_for_courier(payload)
                            if isinstance(message, link_messages.Goodbye):
                                self._goodbye = True
                            drain.append(message)
                    except (FrameError, msgspec.DecodeError) as exc:
                        log.error("the monitor sent something that is not a link message: %s", exc)
                        over = True
                        break
                    if taken >= DRAIN_BYTES or not self._arrived():
                        break  # what had arrived is taken: never wait for more
                    try:
                        data = self._sock.recv(READ_CHUNK)
                    except OSError as exc:
                        self._link_reset(exc)
                        over = True
                        break
                    taken += len(data)
                    over = not data
                if drain:
                    yield drain
                if over:
                    break
        finally:
            with self._end_lock:
                self._read_over = True
                failure = self._send_failure
            self.closed.set()
            if failure is not None:
                self._loop_gone(failure)

    def _link_reset(self, exc: OSError) -> None:
        if self._goodbye:
            log.debug("the monitor closed the link after its goodbye: %s", exc)
        else:
            log.info("monitor link closed: %s", exc)

    def _arrived(self) -> bool:
        """Whether bytes (or the end of the stream) wait in the socket now, without waiting.

        Once a send to the loop has failed the loop is gone, but what it sent before
        dying (an alert a moment before a kill -9) may still sit in the socket, behind
        the heartbeat or confirmation that failed: it is read to the end, then reading stops.
        """
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):  # closed by :meth:`close`
            return False
        return bool(readable)

    def close(self) -> None:
        self.closed.set()
        self._sock.close()
