"""The live feed's hub: a take of change messages reaches every stream that may see it, in
order, through one hand-over to the web server's event loop (a real asyncio loop here)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from caregiver.feed import SessionMessage
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
        assert await anext(stream) == "retry: 2000\n\n"
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
