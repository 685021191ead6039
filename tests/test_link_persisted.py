"""The loop's side of "kept until on disk": what the courier's word does to the records the
loop holds. Over a real socket pair, with a clock that does not move (so the periodic
hand-over of records left unconfirmed, :data:`~firmware.link.endpoint.UNCONFIRMED_RESEND_S`,
never runs and cannot stand in for what is tested).

Hand mutation testing of :mod:`firmware.link.endpoint` found two changes no test noticed:
each was covered up by another route that repeats the work (the courier confirming records
one by one after a hand-over again, or that periodic hand-over in a running rig).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable

from core.protocol.events import Event, EventType
from firmware.courier.channel import LoopChannel
from firmware.link import messages
from firmware.link.endpoint import CourierLink
from firmware.link.framing import FrameReader

WAIT = 30.0
"""Upper bound for any wait on the socket: a net against hangs, not a timing."""


class _Still:
    """A clock that stays put."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _alert(t: float) -> Event:
    return Event.now(EventType.FALL, "tm-1", t, "TRIPPED", f"fall at {t}")


def _pump_until(link: CourierLink, done: Callable[[], bool]) -> bool:
    """Poll the link as the loop would until ``done()`` (bounded by :data:`WAIT`)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        link.poll()
        if done():
            return True
        select.select([], [], [], 0.01)
    return False


def _handed_over(link: CourierLink, courier_end: socket.socket, count: int) -> list[str]:
    """Ids of the events the loop hands the courier, read at the courier's end while the loop
    is polled, until ``count`` have come (or the bound passed)."""
    reader = FrameReader()
    ids: list[str] = []
    deadline = time.monotonic() + WAIT
    while len(ids) < count and time.monotonic() < deadline:
        link.poll()
        readable, _, _ = select.select([courier_end], [], [], 0.01)
        if not readable:
            continue
        for payload in reader.feed(courier_end.recv(1 << 16)):
            message = messages.decode_for_courier(payload)
            if isinstance(message, messages.EventRecord):
                ids.append(message.event.id)
    return ids


def test_one_confirmation_of_many_records_forgets_every_one() -> None:
    """The courier confirms the records it moved from memory to disk in batches
    (:class:`~firmware.link.messages.Persisted` with many ids): the loop forgets all of them.
    Mutant that survived: only the first id of a batch forgotten."""
    clock = _Still()
    link = CourierLink(clock, real_clock=clock)
    loop_end, courier_end = socket.socketpair()
    link.attach(loop_end)
    channel = LoopChannel(courier_end)
    alerts = [_alert(float(i)) for i in range(3)]
    for event in alerts:
        link.submit(event)
    assert link.pending == 3
    channel.send(messages.Persisted([e.id for e in alerts]))
    assert _pump_until(link, lambda: link.pending == 0)
    channel.close()
    link.close()


def test_records_still_held_are_handed_over_again_when_storage_comes_back() -> None:
    """A record the courier could not keep even in memory stays with the loop; when the
    courier says its storage works again the loop hands it over again at once, not only
    after :data:`~firmware.link.endpoint.UNCONFIRMED_RESEND_S`. Mutant that survived: no
    hand-over on storage coming back."""
    clock = _Still()
    link = CourierLink(clock, real_clock=clock)
    loop_end, courier_end = socket.socketpair()
    link.attach(loop_end)
    channel = LoopChannel(courier_end)
    alert = _alert(1.0)
    link.submit(alert)
    assert _handed_over(link, courier_end, 1) == [alert.id]
    channel.send(messages.StorageHealth(False, "disk full; memory full too"))
    assert _pump_until(link, lambda: link.storage_ok is False)
    channel.send(messages.StorageHealth(True, "takes writes again"))
    assert _pump_until(link, lambda: link.storage_ok is True)
    assert _handed_over(link, courier_end, 1) == [alert.id]
    assert link.pending == 1  # until the courier says it is on disk
    channel.close()
    link.close()
