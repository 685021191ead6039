"""Length-prefixed frames over a non-blocking stream socket, without ever waiting.

The monitor's real-time loop talks to the courier process through a Unix
stream socket. :class:`FrameWriter` queues whole frames and hands the kernel
only what it accepts right now (``send`` on a non-blocking socket), keeping
the rest for the next iteration; :class:`FrameReader` turns whatever bytes
arrived into whole frames. Neither blocks, and both bound the work one call
does, so a flood from the other side costs the loop a bounded slice of time.

A frame is a 4-byte big-endian length and that many bytes of payload.
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from collections.abc import Iterator

_HEADER = struct.Struct(">I")
MAX_FRAME = 16 * 1024 * 1024
"""A larger length is a broken stream, not a message: the reader refuses it."""
MAX_IOV = 512
"""Frames handed to the kernel in one ``sendmsg`` at most (Linux takes 1024)."""


class FrameError(Exception):
    """The byte stream is not a sequence of frames (a bug or a hostile peer)."""


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise FrameError(f"frame of {len(payload)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(payload)) + payload


class FrameWriter:
    """Frames waiting to be sent, oldest first; :meth:`send_some` never blocks."""

    def __init__(self) -> None:
        self._frames: deque[memoryview] = deque()
        self.queued_bytes = 0

    def put(self, payload: bytes) -> None:
        data = memoryview(frame(payload))
        self._frames.append(data)
        self.queued_bytes += len(data)

    def clear(self) -> None:
        """Forget everything queued (the peer is gone; its successor gets a fresh stream)."""
        self._frames.clear()
        self.queued_bytes = 0

    def send_some(self, sock: socket.socket, budget: int = 1 << 20) -> int:
        """Send up to ``budget`` bytes the kernel accepts now; return how many were sent.

        The queued frames go in one ``sendmsg`` (up to :data:`MAX_IOV` of them), not a send
        each: what one loop iteration handed over reaches the courier in one piece, where the
        reader found the first frame alone as often as not, and the courier commits what it
        reads at once in one transaction (a trip's event and the session record that counts
        it: docs/sessions.md). Raises ``OSError`` (other than EAGAIN) when the peer is gone.
        """
        sent = 0
        while self._frames and sent < budget:
            views: list[memoryview] = []
            size = 0
            for data in self._frames:
                room = budget - sent - size
                if room <= 0 or len(views) >= MAX_IOV:
                    break
                views.append(data[:room])
                size += len(views[-1])
            try:
                n = sock.sendmsg(views)
            except BlockingIOError:
                break
            sent += n
            self.queued_bytes -= n
            left = n
            while left:
                head = self._frames[0]
                if left >= len(head):
                    left -= len(head)
                    self._frames.popleft()
                else:
                    self._frames[0] = head[left:]
                    left = 0
            if n < size:
                break  # the kernel took what fit
        return sent

    def __len__(self) -> int:
        return len(self._frames)


class FrameReader:
    """Bytes in, whole frames out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise FrameError(f"frame length {length} exceeds {MAX_FRAME}")
            end = _HEADER.size + length
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            yield payload

    def clear(self) -> None:
        self._buffer.clear()
