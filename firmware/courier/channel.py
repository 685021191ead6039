"""The courier's end of the link: blocking, framed, safe to send from several threads."""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Iterator

import msgspec

from firmware.link import messages as link_messages
from firmware.link.framing import FrameError, FrameReader, frame

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0
"""A loop that takes nothing for this long is gone (or hung: its hardware has dropped the relay)."""


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

        One stream for the channel's life: a caller that stops after the first
        message and asks again later misses nothing that already arrived.
        """
        return self._incoming

    def _read(self) -> Iterator[link_messages.ToCourier]:
        """The loop's messages; a send that failed meanwhile is told of at the end, when it is
        known whether the loop said goodbye first (the goodbye may still wait in the socket
        when a send finds the link closed)."""
        reader = FrameReader()
        try:
            while True:
                if self.closed.is_set() and not self._arrived():
                    break
                try:
                    data = self._sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError as exc:  # a reset: the loop closed with our last words unread
                    if self._goodbye:
                        log.debug("the monitor closed the link after its goodbye: %s", exc)
                    else:
                        log.info("monitor link closed: %s", exc)
                    break
                if not data:
                    break
                try:
                    for payload in reader.feed(data):
                        message = link_messages.decode_for_courier(payload)
                        if isinstance(message, link_messages.Goodbye):
                            self._goodbye = True
                        yield message
                except (FrameError, msgspec.DecodeError) as exc:
                    log.error("the monitor sent something that is not a link message: %s", exc)
                    break
        finally:
            with self._end_lock:
                self._read_over = True
                failure = self._send_failure
            self.closed.set()
            if failure is not None:
                self._loop_gone(failure)

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
