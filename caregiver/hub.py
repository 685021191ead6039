"""The live feed's fan-out: change messages from any thread to every open ``/stream``.

The service's threads (MQTT ingest, acknowledgements in the web's worker
threads) call :meth:`Hub.publish`; it hands the message to the web server's
event loop, which puts it on every browser's queue. A browser that stops
reading is dropped when its queue fills (it reconnects and the page fetches
what it missed). Each stream says which devices its caregiver may see; a change about another device
never goes down it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TypeVarTuple

import msgspec

from caregiver.feed import BrokerMessage, FeedMessage, HelloMessage, KeepaliveMessage

_encoder = msgspec.json.Encoder()

SEND_AT_ONCE = 100
"""Change messages written to a browser in one go at most, and put on the browsers' queues
in one turn of the event loop at most (the streams read them off between turns)."""

KEEPALIVE_S = 15.0
"""The longest a stream stays quiet: a keepalive event after this many seconds without a
change (the page takes its stream for dead after a few of these without a word)."""

Ts = TypeVarTuple("Ts")


class Hub:
    """Fans change messages out to every open ``/stream`` (thread-safe :meth:`publish`)."""

    def __init__(self, max_queue: int = 1000, keepalive_s: float = KEEPALIVE_S) -> None:
        self._clients: dict[asyncio.Queue[str | None], Callable[[str], bool]] = {}
        """Each open stream's queue, and which devices its caregiver may see."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._max = max_queue
        self._keepalive_s = keepalive_s
        self._keepalive = (
            f"event: keepalive\ndata: {_encoder.encode(KeepaliveMessage()).decode()}\n\n"
        )
        self._backlog: deque[tuple[str, str | None]] = deque()
        """Messages handed over and not yet on the browsers' queues, each with its device
        (None: for every stream); the event loop's only."""
        self._draining = False
        self.attached = threading.Event()
        """Set once the web server's event loop has started (see :meth:`attach`)."""
        self._boot = secrets.token_hex(4)
        self._changes: dict[str, int] = {}
        """Changes committed about each device: a caregiver's marker counts only those of the
        devices they may see (a fleet-wide count told a limited caregiver when devices they
        cannot see were busy)."""
        self._everyone = 0
        """Changes every page must catch up on, whatever its devices (:meth:`changed` of None)."""
        self._changes_lock = threading.Lock()
        self.broker: BrokerMessage = BrokerMessage(down=False)
        """The broker link as the pages' banner says it (:meth:`broker_changed`): what a page
        renders, and what each stream's hello says."""

    def changed(self, device_id: str | None = None) -> None:
        """A change about ``device_id`` was committed (any thread; before it goes to the
        browsers, whether any listens or not): the markers of those who may see it move on.
        None: every marker moves on (changes that may have been missed, whoever's)."""
        with self._changes_lock:  # ingest's thread, the web's workers, other instances' news
            if device_id is None:
                self._everyone += 1
            else:
                self._changes[device_id] = self._changes.get(device_id, 0) + 1

    def marker_for(self, may_see: Callable[[str], bool]) -> str:
        """Where the changes a caregiver may see stand: a page rendered now says it, and every
        stream's first message (hello) says it again; the same on both means nothing they may
        see changed between the render and the stream's opening, so the page need not fetch
        itself again. This process's (another instance's, or this one after a restart,
        differs). A sum of counts that only grow: any visible change moves it on; the
        devices a caregiver may not see move nothing."""
        with self._changes_lock:
            counts = list(self._changes.items())
            total = self._everyone
        total += sum(count for device, count in counts if may_see(device))
        return f"{self._boot}.{total}"

    @property
    def marker(self) -> str:
        """:meth:`marker_for` a caregiver who may see every device."""
        return self.marker_for(lambda device: True)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The web server started on ``loop`` (from its lifespan startup)."""
        self._loop = loop
        self.attached.set()

    def publish(self, message: FeedMessage) -> None:
        """Send ``message`` (about ``message.device_id``) to every stream that may see it
        (encoded once, whatever the number of streams)."""
        self.publish_all([message])

    def publish_all(self, messages: list[FeedMessage]) -> None:
        """Send ``messages``, in order, as :meth:`publish` does, with one wake-up of the event
        loop for all of them (a burst's live feed hands over its changes a take at a time:
        a wake-up each cost the loop's thread about what sending them did)."""
        if messages:
            self._hand_over([(_encoder.encode(m).decode(), m.device_id) for m in messages])

    def broker_changed(self, message: BrokerMessage) -> None:
        """The broker link changed (any thread): pages rendered from now say it, and every
        open stream is told, whatever devices its caregiver may see (a link down hides
        everyone's falls)."""
        self.broker = message
        self._hand_over([(_encoder.encode(message).decode(), None)])

    def run_on_loop(self, callback: Callable[[*Ts], None], *args: *Ts) -> bool:
        """Have the event loop call ``callback(*args)`` (any thread); False when there is no
        loop (not started, gone or shutting down). The live feed hands its messages over this
        way, and the service's liveness check beats the dashboard: a blocked loop never
        calls it."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is shutting down
            return False
        return True

    def _hand_over(self, texts: list[tuple[str, str | None]]) -> None:
        """Encoded messages, each with its device (None: for every stream), to the event
        loop's backlog in one wake-up (any thread; nothing once the loop is gone)."""
        self.run_on_loop(self._take, texts)

    def _take(self, texts: list[tuple[str, str | None]]) -> None:
        self._backlog.extend(texts)
        if not self._draining:
            self._draining = True
            self._drain()

    def _drain(self) -> None:
        """Put at most :data:`SEND_AT_ONCE` messages on the browsers' queues, and the rest in
        later turns of the loop: the streams read in between. A take is unbounded (all that
        piled up while the feed's thread was busy); in one turn, one longer than a queue
        would drop every browser, even those reading."""
        for _ in range(min(SEND_AT_ONCE, len(self._backlog))):
            self._fanout(*self._backlog.popleft())
        if self._backlog and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon(self._drain)  # after the streams this turn woke up
        else:
            self._draining = False

    def _fanout(self, text: str | None, device_id: str | None = None) -> None:
        for queue, may_see in list(self._clients.items()):
            if text is not None and device_id is not None and not may_see(device_id):
                continue
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:  # a stalled browser: drop it, it reconnects and reloads
                self._clients.pop(queue, None)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)

    def close(self) -> None:
        """End every stream (from the event loop)."""
        self._fanout(None)

    def shutdown(self) -> None:
        """End every stream (from any thread), so the server can stop without waiting."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._fanout, None)

    async def stream(
        self, may_see: Callable[[str], bool] = lambda device: True
    ) -> AsyncIterator[str]:
        """Server-sent events: the changes about the devices ``may_see`` admits."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(self._max)
        self._clients[queue] = may_see
        # after the queue is in: a change counted after this marker reaches this stream
        hello = _encoder.encode(
            HelloMessage(self.marker_for(may_see), self.broker, self._keepalive_s)
        ).decode()
        try:
            yield f"retry: 2000\ndata: {hello}\n\n"
            while True:
                try:
                    # not wait_for: its own task would wake this stream turns after a chunk
                    # landed on the queue, and the hub's next chunk would come first
                    async with asyncio.timeout(self._keepalive_s):
                        text = await queue.get()
                except TimeoutError:
                    # a named event, not a comment: the page's script hears it (app.js)
                    yield self._keepalive
                    continue
                if text is None:
                    return
                # what else is queued goes in the same write: a burst is a few writes, not
                # one per change per browser
                texts, ended = [text], False
                while not queue.empty() and len(texts) < SEND_AT_ONCE:
                    more = queue.get_nowait()
                    if more is None:
                        ended = True
                        break
                    texts.append(more)
                yield "".join(f"data: {t}\n\n" for t in texts)
                if ended:
                    return
        finally:
            self._clients.pop(queue, None)

    @property
    def clients(self) -> int:
        return len(self._clients)
