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
            log.info("monitor loop gone: %s", exc)
            self.closed.set()
            return False
        return True

    def messages(self) -> Iterator[link_messages.ToCourier]:
        """The loop's messages in order, until it closes the link (or garbles it).

        One stream for the channel's life: a caller that stops after the first
        message and asks again later misses nothing that already arrived.
        """
        return self._incoming

    def _read(self) -> Iterator[link_messages.ToCourier]:
        reader = FrameReader()
        while True:
            if self.closed.is_set() and not self._arrived():
                break
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                log.info("monitor link closed: %s", exc)
                break
            if not data:
                break
            try:
                for payload in reader.feed(data):
                    yield link_messages.decode_for_courier(payload)
            except (FrameError, msgspec.DecodeError) as exc:
                log.error("the monitor sent something that is not a link message: %s", exc)
                break
        self.closed.set()

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
