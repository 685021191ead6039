"""The live feed's hub: a take of change messages reaches every stream that may see it, in
order, through one hand-over to the web server's event loop (a real asyncio loop here)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from caregiver.feed import BrokerMessage, Moment, SessionMessage
from caregiver.hub import Hub


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.call_soon_threadsafe(running.stop)
        thread.join(10)
        running.close()


def _opening(hub: Hub) -> str:
    """A stream's first write: the browser's retry delay, and the hello naming the changes."""
    return (
        f'retry: 2000\ndata: {{"kind":"hello","changes":"{hub.marker}",'
        '"broker":{"kind":"broker","down":false},"keepalive_s":15.0}\n\n'
    )


def test_a_stream_s_hello_names_the_changes_as_they_stood_when_it_opened(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """The page rendered with the marker compares it with its stream's hello: a change
    counted before the stream opened makes them differ (the page fetches itself again)."""
    hub = Hub()
    hub.attach(loop)
    rendered = hub.marker
    assert Hub().marker != rendered  # another process (or this one restarted)

    async def hello() -> str:
        stream = hub.stream()
        text = await anext(stream)
        await stream.aclose()
        return text

    assert asyncio.run_coroutine_threadsafe(hello(), loop).result(20) == _opening(hub)
    assert hub.marker == rendered
    hub.changed()
    assert hub.marker != rendered
    assert asyncio.run_coroutine_threadsafe(hello(), loop).result(20) == _opening(hub)


def test_a_quiet_stream_sends_a_keepalive_the_page_s_script_hears(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """A stream with no change to send says it is alive, as a named event (``keepalive``)
    the page's EventSource hands its script, every ``keepalive_s`` the hello announces. It
    was an SSE comment (": keepalive"), which never reaches a script: a page on a half-open
    connection could not tell its stream had gone silent, and read "live" for ever."""
    hub = Hub(keepalive_s=0.01)
    hub.attach(loop)

    async def opening() -> tuple[str, str]:
        stream = hub.stream()
        hello = await anext(stream)
        keepalive = await anext(stream)
        await stream.aclose()
        return hello, keepalive

    hello, keepalive = asyncio.run_coroutine_threadsafe(opening(), loop).result(20)
    assert '"keepalive_s":0.01}' in hello
    assert keepalive == 'event: keepalive\ndata: {"kind":"keepalive"}\n\n'


def test_a_caregiver_s_marker_counts_only_the_devices_they_may_see(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """A caregiver limited to some devices learns nothing of the others' activity from the
    marker (before: one fleet-wide count moved with every device's change); a change that
    may have been missed by anyone (None) moves every marker."""
    hub = Hub()
    hub.attach(loop)

    def mine(device: str) -> bool:
        return device == "treadmill-2"

    limited, everyone = hub.marker_for(mine), hub.marker
    hub.changed("treadmill-1")
    assert hub.marker_for(mine) == limited and hub.marker != everyone
    hub.changed("treadmill-2")
    assert hub.marker_for(mine) != limited
    limited = hub.marker_for(mine)
    hub.changed()
    assert hub.marker_for(mine) != limited

    async def hello() -> str:
        stream = hub.stream(mine)
        text = await anext(stream)
        await stream.aclose()
        return text

    hub.changed("treadmill-1")
    said = asyncio.run_coroutine_threadsafe(hello(), loop).result(20)
    assert f'"changes":"{hub.marker_for(mine)}"' in said


def test_the_broker_link_reaches_every_stream_whatever_its_devices_and_each_hello_says_it(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """The service cannot hear its broker: every open page is told at once, one whose
    caregiver may see no device too (a link down hides everyone's falls), and a page whose
    stream opens later is told in its hello (a change between its render and its stream's
    opening is not missed)."""
    hub = Hub()
    hub.attach(loop)
    since = Moment("2026-12-03T13:05:00.000Z", "Thu 3 Dec 2026, 14:05 CET", "minute")
    down = BrokerMessage(True, "Not receiving alerts", "cannot reach x:1", since, "Falls...")

    async def told(opened: threading.Event) -> str:
        stream = hub.stream(lambda device: False)
        assert await anext(stream) == _opening(hub)
        opened.set()
        text = await anext(stream)
        await stream.aclose()
        return text

    async def hello() -> str:
        stream = hub.stream(lambda device: False)
        text = await anext(stream)
        await stream.aclose()
        return text

    opened = threading.Event()
    open_page = asyncio.run_coroutine_threadsafe(told(opened), loop)
    assert opened.wait(20)
    hub.broker_changed(down)
    said = (
        '{"kind":"broker","down":true,"lead":"Not receiving alerts","detail":"cannot reach x:1",'
        '"since":{"iso":"2026-12-03T13:05:00.000Z","text":"Thu 3 Dec 2026, 14:05 CET",'
        '"format":"minute"},"consequence":"Falls..."}'
    )
    assert open_page.result(20) == f"data: {said}\n\n"
    assert f'"broker":{said}' in asyncio.run_coroutine_threadsafe(hello(), loop).result(20)
    hub.broker_changed(BrokerMessage(down=False))
    assert asyncio.run_coroutine_threadsafe(hello(), loop).result(20) == _opening(hub)


def test_a_take_reaches_each_stream_in_order_with_one_wake_up_of_the_loop(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = Hub()
    hub.attach(loop)
    wake_ups: list[object] = []
    original = loop.call_soon_threadsafe

    def counted(callback: object, *args: object) -> asyncio.Handle:
        wake_ups.append(callback)
        return original(callback, *args)  # type: ignore[arg-type]

    async def first_write(may_see: set[str]) -> str:
        stream = hub.stream(lambda device: device in may_see)
        assert await anext(stream) == _opening(hub)
        opened.release()
        text = await anext(stream)
        await stream.aclose()
        return text

    opened = threading.Semaphore(0)
    everything = asyncio.run_coroutine_threadsafe(first_write({"a", "b"}), loop)
    only_b = asyncio.run_coroutine_threadsafe(first_write({"b"}), loop)
    assert opened.acquire(timeout=20) and opened.acquire(timeout=20)
    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    hub.publish_all(
        [SessionMessage("a", "s1"), SessionMessage("b", "s2"), SessionMessage("a", "s3")]
    )
    assert everything.result(20) == "".join(
        f'data: {{"kind":"session","device_id":"{d}","session_id":"{s}"}}\n\n'
        for d, s in (("a", "s1"), ("b", "s2"), ("a", "s3"))
    )
    assert only_b.result(20) == 'data: {"kind":"session","device_id":"b","session_id":"s2"}\n\n'
    assert len(wake_ups) == 1


def test_a_take_longer_than_a_queue_reaches_a_reading_stream_whole_and_a_stalled_one_is_dropped(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """All that piled up while the feed's thread was busy is one take, however long: put on
    the queues in one turn of the loop, one longer than a queue dropped every browser, even
    those reading. A browser that does not read is still dropped (its stream ends: it
    reconnects and the page fetches what it missed)."""
    hub = Hub(max_queue=1000)
    hub.attach(loop)
    take = [SessionMessage(f"d{n % 7}", f"s{n}") for n in range(3500)]

    async def read_all(opened: threading.Event) -> list[str]:
        stream = hub.stream()
        assert await anext(stream) == _opening(hub)
        opened.set()
        got: list[str] = []
        async for text in stream:
            got += [line for line in text.split("\n\n") if line.startswith("data: ")]
            if len(got) >= len(take):
                break
        await stream.aclose()
        return got

    async def stall(opened: threading.Event) -> tuple[int, bool]:
        stream = hub.stream()
        assert await anext(stream) == _opening(hub)
        opened.set()
        await reader_done.wait()  # reads nothing until the whole take reached the other
        got = 0
        async for text in stream:
            got += text.count("data: ")
        return got, True  # the stream ended: the hub dropped it

    reader_done = asyncio.Event()
    reader_open, staller_open = threading.Event(), threading.Event()
    reader = asyncio.run_coroutine_threadsafe(read_all(reader_open), loop)
    staller = asyncio.run_coroutine_threadsafe(stall(staller_open), loop)
    assert reader_open.wait(20) and staller_open.wait(20)
    hub.publish_all(take)
    try:
        got = reader.result(20)
    finally:
        loop.call_soon_threadsafe(reader_done.set)
    assert got == [
        f'data: {{"kind":"session","device_id":"{m.device_id}","session_id":"{m.session_id}"}}'
        for m in take
    ]
    stalled, ended = staller.result(20)
    assert ended and stalled < 1000
