"""The link between the loop and the courier: frames, the loop's endpoint, the supervisor.

The loop's side must never block and never lose a record it handed over:
records stay pending until a courier says they are on disk, and a courier
that dies or hangs is replaced and gets them again.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from core.protocol.events import Event, EventType
from core.protocol.messages import FaultSaid, SilenceResult
from firmware.config import Config, StorageConfig
from firmware.courier.channel import LoopChannel
from firmware.link import messages
from firmware.link.endpoint import (
    COURIER_SILENT_S,
    COURIER_START_SILENT_S,
    SILENCE_ANSWER_KEEP_S,
    SILENCE_ANSWERS_KEPT,
    STARTUP_GRACE_S,
    CourierLink,
)
from firmware.link.framing import FrameError, FrameReader, FrameWriter, frame
from firmware.link.supervisor import CourierSupervisor, ProcessCourier, ThreadCourier
from firmware.safety import SafetyState
from firmware.session.plan import resolve_plan
from firmware.session.runner import SessionRunner
from firmware.storage.events import EventStore
from tests.app_support import Heard
from tests.test_voice import Armed, QuietBuzzer

WAIT = 30.0
"""Upper bound for any wait on another thread or process: a net against hangs, not a timing."""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def event(kind: EventType = EventType.FALL, t: float = 1.0) -> Event:
    return Event.now(kind, "tm-1", t, "TRIPPED", f"{kind.value} at {t}")


def config_for(tmp_path: Path) -> Config:
    return Config(storage=StorageConfig(database=str(tmp_path / "events.db")))


def pump_until(link: CourierLink, done: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll the link as the loop would, until ``done()``; waits on the socket, not on sleeps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        link.poll()
        if done():
            return True
        sock = link._sock
        if sock is not None:
            select.select([sock], [], [], 0.05)
        else:
            select.select([], [], [], 0.01)
    return False


def wait_stopped(pid: int, timeout: float = WAIT) -> bool:
    """Until the kernel has process ``pid`` stopped (``T`` in ``/proc/<pid>/stat``): after
    ``kill(SIGSTOP)`` it may still run briefly on another core, and write."""
    deadline = time.monotonic() + timeout
    stat = Path(f"/proc/{pid}/stat")
    while time.monotonic() < deadline:
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "T":
            return True
        select.select([], [], [], 0.01)
    return False


def drain(link: CourierLink) -> None:
    """Read every frame the courier's socket holds now (the courier is stopped: no more come)."""
    sock = link._sock
    while sock is not None and select.select([sock], [], [], 0)[0]:
        link.poll()
        sock = link._sock


def stored_ids(tmp_path: Path) -> list[str]:
    with EventStore(tmp_path / "events.db") as store:
        return [s.event.id for s in store.events()]


@pytest.fixture
def link_with(tmp_path: Path) -> Iterator[Callable[..., tuple[CourierLink, CourierSupervisor]]]:
    made: list[tuple[CourierLink, CourierSupervisor]] = []

    def make(
        spawn: object = ThreadCourier, real_clock: Callable[[], float] = time.monotonic
    ) -> tuple[CourierLink, CourierSupervisor]:
        link = CourierLink(time.monotonic, real_clock=real_clock)
        link.hello(messages.encode(messages.Hello(config_for(tmp_path), os.getpid())))
        supervisor = CourierSupervisor(link, spawn)  # type: ignore[arg-type]
        made.append((link, supervisor))
        return link, supervisor

    yield make
    for link, supervisor in made:
        link.goodbye("test over")
        link.close()
        supervisor.stop(10)


# ----------------------------------------------------------------- framing


def test_frames_survive_partial_sends_and_arbitrary_splits() -> None:
    loop_end, other = socket.socketpair()
    loop_end.setblocking(False)
    loop_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    writer = FrameWriter()
    payloads = [bytes([i % 251]) * (i * 997 % 50000) for i in range(60)]
    for payload in payloads:
        writer.put(payload)
    reader = FrameReader()
    got: list[bytes] = []
    while len(got) < len(payloads):
        writer.send_some(loop_end, budget=7000)
        ready, _, _ = select.select([other], [], [], 5)
        assert ready
        got += list(reader.feed(other.recv(3333)))
    assert got == payloads
    loop_end.close()
    other.close()


def test_send_some_never_blocks_on_a_peer_that_does_not_read() -> None:
    loop_end, other = socket.socketpair()
    loop_end.setblocking(False)
    writer = FrameWriter()
    for _ in range(2000):
        writer.put(b"x" * 10000)
    sent = sum(writer.send_some(loop_end) for _ in range(50))
    assert 0 < sent < 2000 * 10004  # the kernel took what fit; the rest waits, nothing blocked
    assert writer.queued_bytes == 2000 * 10004 - sent
    loop_end.close()
    other.close()


def test_a_length_beyond_the_limit_is_a_broken_stream() -> None:
    with pytest.raises(FrameError):
        list(FrameReader().feed(b"\xff\xff\xff\xff" + b"x"))
    assert list(FrameReader().feed(frame(b"") + frame(b"ab"))) == [b"", b"ab"]


# ---------------------------------------------------------------- endpoint


def test_records_handed_over_before_a_courier_exists_are_stored_once_it_starts(
    tmp_path: Path, link_with: Callable[..., tuple[CourierLink, CourierSupervisor]]
) -> None:
    link, supervisor = link_with()
    events = [event(EventType.STUMBLE, t=float(i)) for i in range(20)]
    for e in events:
        link.submit(e)  # no courier yet: nothing blocks, all pending
    assert link.pending == 20
    supervisor.start()
    assert pump_until(link, lambda: link.pending == 0)
    assert stored_ids(tmp_path) == [e.id for e in events]  # in order


def test_submit_never_waits_for_a_courier_that_does_not_read() -> None:
    link = CourierLink(time.monotonic)
    loop_end, courier_end = socket.socketpair()
    link.attach(loop_end)
    for i in range(3000):  # ~39 MB of windows; the courier end never reads
        e = event(t=float(i))
        link.submit(e)
        link.poll()
    assert link.pending == 3000  # all kept (alerts are never dropped), none confirmed
    courier_end.close()


def test_the_pending_bound_sheds_information_before_alerts() -> None:
    link = CourierLink(time.monotonic, max_pending_bytes=4000)
    alerts = [event(EventType.FALL, float(i)) for i in range(10)]
    infos = [event(EventType.RESET, float(i)) for i in range(30)]
    for a, b in zip(alerts, infos[:10], strict=True):
        link.submit(b)
        link.submit(a)
    for b in infos[10:]:
        link.submit(b)
    kept = set(link._pending)
    assert {a.id for a in alerts} <= kept  # every alert kept, over the bound if need be
    assert link.dropped > 0 and not {b.id for b in infos[:10]} <= kept


def test_a_killed_courier_is_replaced_and_gets_every_unconfirmed_record(
    tmp_path: Path, link_with: Callable[..., tuple[CourierLink, CourierSupervisor]]
) -> None:
    link, supervisor = link_with(ProcessCourier)
    supervisor.start()
    first = [event(t=float(i)) for i in range(10)]
    for e in first:
        link.submit(e)
    assert pump_until(link, lambda: link.pending == 0)
    current = supervisor.current
    assert isinstance(current, ProcessCourier)
    os.kill(current.pid, signal.SIGKILL)
    second = [event(EventType.NO_RECOVERY, t=100.0 + i) for i in range(10)]
    for e in second:  # handed over while the courier is dead or being replaced
        link.submit(e)
        link.poll()
    assert pump_until(link, lambda: link.pending == 0 and supervisor.starts == 2)
    assert stored_ids(tmp_path) == [e.id for e in first + second]  # each once, in order


def test_a_hung_courier_is_killed_and_replaced(
    tmp_path: Path, link_with: Callable[..., tuple[CourierLink, CourierSupervisor]]
) -> None:
    """The silence is measured on the link's real clock, here the test's: only the stopped
    courier's passes :data:`COURIER_SILENT_S`. On the host's, a loaded machine kept each new
    courier from its first word for 2 s (the test's shortened limit) and it was killed too."""
    clock = Clock()
    link, supervisor = link_with(ProcessCourier, real_clock=clock)
    supervisor.start()
    assert pump_until(link, lambda: link.last_heard is not None)
    hung = supervisor.current
    assert isinstance(hung, ProcessCourier)
    os.kill(hung.pid, signal.SIGSTOP)  # alive, but never answers again
    assert wait_stopped(hung.pid)
    # What it said before it stopped is read before the clock moves on: a frame still in the
    # socket (its storage report, on a loaded machine) read after the jump was its last word
    # at the new time, and it was never silent for long enough on this frozen clock.
    drain(link)
    alert = event()
    link.submit(alert)
    clock.now += COURIER_SILENT_S + 1  # silent since, while the loop polls
    assert pump_until(link, lambda: supervisor.starts == 2 and link.pending == 0)
    assert hung.wait(0)  # killed
    assert alert.id in stored_ids(tmp_path)


def test_a_courier_still_starting_is_given_longer_than_one_that_went_silent() -> None:
    """On a loaded host each new courier needed over 10 s for its first word (a Python
    process, niced, opening and upgrading its database), and each was killed for it as hung,
    again and again: the demo waited 30 s for storage in vain. Before its first word a
    courier has :data:`COURIER_START_SILENT_S`; once it has spoken, :data:`COURIER_SILENT_S`."""
    clock = Clock()
    link = CourierLink(clock, real_clock=clock)
    started = clock.now
    loop_end, courier_end = socket.socketpair()
    link.attach(loop_end)
    clock.now += COURIER_SILENT_S + 1
    link.poll()  # the loop listens
    assert not link.courier_hung(since=started)
    clock.now = started + COURIER_START_SILENT_S + 1
    link.poll()
    assert link.courier_hung(since=started)
    channel = LoopChannel(courier_end)
    channel.send(messages.StorageHealth(True, "device database open"))  # its first word
    assert pump_until(link, lambda: link.storage_ok is True)
    clock.now += COURIER_SILENT_S - 1
    link.poll()
    assert not link.courier_hung(since=started)
    clock.now += 2
    link.poll()
    assert link.courier_hung(since=started)
    channel.close()


def test_storage_problems_the_loop_must_know_before_arming() -> None:
    clock = Clock()
    link = CourierLink(clock, real_clock=clock)
    assert link.storage_problem(clock.now) is None  # start-up grace
    clock.now += STARTUP_GRACE_S + 1
    assert "has not started" in str(link.storage_problem(clock.now))
    loop_end, courier_end = socket.socketpair()
    link.attach(loop_end)
    channel = LoopChannel(courier_end)
    channel.send(messages.StorageHealth(False, "disk full: 0 bytes free"))
    assert pump_until(link, lambda: link.storage_ok is False)
    assert link.storage_problem(clock.now) == "disk full: 0 bytes free"
    channel.send(messages.StorageHealth(True, "writes work again"))
    assert pump_until(link, lambda: link.storage_ok is True)
    assert link.storage_problem(clock.now) is None
    clock.now += 60
    assert "has not answered" in str(link.storage_problem(clock.now))
    channel.close()


def test_a_caregiver_silence_reaches_the_loop_once() -> None:
    link = CourierLink(time.monotonic)
    loop_end, courier_end = socket.socketpair()
    link.attach(loop_end)
    channel = LoopChannel(courier_end)
    channel.send(messages.SilenceBuzzer("s1"))
    channel.send(messages.SilenceBuzzer("s2", event_id="e" * 32))
    assert pump_until(link, lambda: link.silence_requests == 2)
    taken = link.take_silences()
    assert [(s.request_id, s.event_id) for s in taken] == [("s1", None), ("s2", "e" * 32)]
    assert link.take_silences() == []  # each once
    channel.close()


def test_the_courier_ignores_a_broken_log_sink_and_keeps_storing(
    tmp_path: Path,
    link_with: Callable[..., tuple[CourierLink, CourierSupervisor]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(self: object, event: Event) -> None:
        raise RuntimeError("log handler broke")

    monkeypatch.setattr("firmware.sinks.LogSink.handle", explode)
    link, supervisor = link_with(ThreadCourier)
    supervisor.start()
    events = [event(EventType.STUMBLE, t=float(i)) for i in range(30)]
    for e in events:
        link.submit(e)
    assert pump_until(link, lambda: link.pending == 0)
    assert stored_ids(tmp_path) == [e.id for e in events]


def test_a_monitor_that_vanishes_without_goodbye_is_recorded_as_a_fault(
    tmp_path: Path, link_with: Callable[..., tuple[CourierLink, CourierSupervisor]]
) -> None:
    link, supervisor = link_with(ProcessCourier)
    supervisor.start()
    alert = event()
    link.submit(alert)
    assert pump_until(link, lambda: link.pending == 0)
    link.close()  # the monitor's end is gone (crash, kill -9), no goodbye said
    assert supervisor.stop(WAIT)
    with EventStore(tmp_path / "events.db") as store:
        stored = [s.event for s in store.events()]
    assert stored[0].id == alert.id
    assert [e.type for e in stored] == [EventType.FALL, EventType.FAULT]
    assert "stopped without shutting down" in stored[1].reason


def test_what_the_loop_sent_before_it_died_is_read_even_after_a_send_to_it_failed() -> None:
    """A kill -9 of the monitor just after an alert: the alert is already in the courier's
    socket, but the courier's next word to the loop (a heartbeat, a confirmation) fails first.
    The courier must still read, store and publish what had arrived (found by the fault soak)."""
    loop_end, courier_end = socket.socketpair()
    channel = LoopChannel(courier_end)
    alert = event()
    loop_end.sendall(frame(messages.encode(messages.EventRecord(alert))))
    loop_end.close()  # the monitor process is gone
    assert not channel.send(messages.SilenceBuzzer())
    received = [m for m in channel.messages() if isinstance(m, messages.EventRecord)]
    assert [m.event.id for m in received] == [alert.id]
    channel.close()


def test_a_monitor_that_stops_after_its_goodbye_is_not_reported_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A monitor stopping on purpose says goodbye and closes the link at once; what the
    courier sends meanwhile (its plans and roster at start, the answer to a health report, a
    heartbeat) finds the link closed. That is the normal end, not "monitor loop gone: Broken
    pipe" at INFO at the end of every demo."""
    from core.protocol.messages import DeviceHealth
    from firmware.courier.service import serve

    loop_end, courier_end = socket.socketpair()
    hello = messages.Hello(config_for(tmp_path), os.getpid())
    health = messages.HealthReport(DeviceHealth(), {})
    for message in (hello, health, messages.Goodbye("monitor stopped")):
        loop_end.sendall(frame(messages.encode(message)))
    loop_end.close()  # the monitor is gone before the courier has said a word
    caplog.set_level(logging.DEBUG, logger="firmware.courier.channel")
    assert serve(courier_end) == 0
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.endswith("channel")]
    assert said == [
        (logging.DEBUG, "the monitor closed the link after its goodbye: [Errno 32] Broken pipe")
    ]


def test_a_monitor_gone_without_goodbye_is_reported_once_what_it_sent_is_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop_end, courier_end = socket.socketpair()
    channel = LoopChannel(courier_end)
    loop_end.sendall(frame(messages.encode(messages.EventRecord(event()))))
    loop_end.close()  # killed: no goodbye
    caplog.set_level(logging.INFO, logger="firmware.courier.channel")
    assert not channel.send(messages.SilenceBuzzer())
    assert not channel.send(messages.SilenceBuzzer())
    assert [type(m) for m in channel.messages()] == [messages.EventRecord]
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.endswith("channel")]
    assert said == [(logging.INFO, "monitor loop gone: [Errno 32] Broken pipe")]
    channel.close()


def test_a_walker_chosen_while_the_courier_is_replaced_is_stored_by_the_next(
    tmp_path: Path, link_with: Callable[..., tuple[CourierLink, CourierSupervisor]]
) -> None:
    """The button's choice, handed over while the courier is dead, is sent again to its
    successor (the new link dropped it with the old courier's unsent bytes, and the new
    courier's roster then undid the walker's press)."""
    from firmware.storage.database import connect
    from firmware.storage.walkers import add_walker, selected_walker

    conn = connect(tmp_path / "events.db")
    with conn:
        add_walker(conn, "Anna", by="physio", wall="2026-12-02T10:00:00+00:00")
    conn.close()
    link, supervisor = link_with(ProcessCourier)
    supervisor.start()
    assert pump_until(link, lambda: link.storage_ok is not None)
    current = supervisor.current
    assert isinstance(current, ProcessCourier)
    os.kill(current.pid, signal.SIGKILL)
    link.choose_walker("anna")  # while the courier is dead or being replaced
    link.poll()

    def stored() -> bool:
        taken = link.take_roster()
        return taken is not None and taken[1] and taken[0].selected.id == "anna"

    assert pump_until(link, lambda: supervisor.starts == 2 and stored())
    conn = connect(tmp_path / "events.db")
    try:
        assert selected_walker(conn).id == "anna"
    finally:
        conn.close()


def _frames_to_courier(courier_end: socket.socket, link: CourierLink) -> list[messages.ToCourier]:
    """What the link handed a courier listening on ``courier_end`` (all of it, once sent)."""
    reader = FrameReader()
    got: list[messages.ToCourier] = []
    courier_end.setblocking(False)
    while True:
        link.poll()
        ready, _, _ = select.select([courier_end], [], [], 0.05)
        if not ready:
            if not len(link._writer):
                return got
            continue
        got += [messages.decode_for_courier(f) for f in reader.feed(courier_end.recv(65536))]


def test_a_courier_that_replaces_one_is_told_the_last_state_with_its_fault_kind() -> None:
    """The state a replacing courier is handed is the last one whole: a FAULT with its kind
    (a contact fault: nobody walks), and once the FAULT is over, the state without one (a
    kind from the older report would have said the relay may not stop a belt that can run)."""
    link = CourierLink(time.monotonic)
    link.hello(messages.encode(messages.Hello(Config(), os.getpid())))

    def told_on_attach() -> list[messages.StateReport]:
        mine, courier_end = socket.socketpair()
        link.attach(mine)
        told = _frames_to_courier(courier_end, link)
        courier_end.close()
        return [m for m in told if isinstance(m, messages.StateReport)]

    link.report_state(
        "FAULT",
        "relay contact open while armed",
        "2026-12-07T19:00:00.000+00:00",
        fault=FaultSaid.CONTACT,
    )
    (state,) = told_on_attach()
    assert (state.state, state.fault) == ("FAULT", FaultSaid.CONTACT)
    link.report_state("STANDBY", "IMU healthy; press reset to arm", "2026-12-07T19:00:05.000+00:00")
    (state,) = told_on_attach()
    assert (state.state, state.fault) == ("STANDBY", None)
    link.close()


def test_a_courier_that_replaces_one_mid_session_is_told_the_unfinished_session() -> None:
    """Its retained progress is the session walker's, not the one chosen meanwhile for the
    next session, from the start: the link hands it the session's last record as it does the
    last state; once the session has ended, a new courier gets only what is not on disk."""
    import datetime as dt

    from core.protocol.walker import Walker
    from tests.caregiver_support import session_record

    link = CourierLink(time.monotonic)
    link.hello(messages.encode(messages.Hello(Config(), os.getpid())))
    first, first_courier = socket.socketpair()
    link.attach(first)
    started = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
    done = session_record("tm-1", started, backward_min=2, longest_min=2)
    running = msgspec.structs.replace(
        done, status="running", ended_wall=None, walker=Walker("anna", "Anna")
    )
    link.session_walker_is("anna")
    link.submit_session(running, final=False)
    assert [type(m) for m in _frames_to_courier(first_courier, link)] == [
        messages.Hello,
        messages.SessionReport,
    ]
    first_courier.close()  # the courier dies mid-session

    second, second_courier = socket.socketpair()
    link.attach(second)
    told = _frames_to_courier(second_courier, link)
    assert [type(m) for m in told] == [messages.Hello, messages.SessionReport]
    report = told[1]
    assert isinstance(report, messages.SessionReport) and not report.final
    assert report.record.id == running.id and report.record.walker.id == "anna"

    ended = msgspec.structs.replace(done, walker=Walker("anna", "Anna"))
    link.submit_session(ended, final=True)
    link.session_walker_is(None)
    _frames_to_courier(second_courier, link)
    second_courier.close()
    third, third_courier = socket.socketpair()
    link.attach(third)
    after = _frames_to_courier(third_courier, link)
    reports = [m for m in after if isinstance(m, messages.SessionReport)]
    assert [(r.record.status, r.final) for r in reports] == [("completed", True)]  # not on disk
    third_courier.close()
    link.close()


def test_a_silence_answered_while_its_courier_is_replaced_is_handed_to_the_next() -> None:
    """A caregiver's silence reached the loop through a courier that died before the loop's
    answer went out (queued unsent, dropped with its socket; or sent into the dead one): the
    reply was lost, and the caregiver's client waited for it in vain. Now the loop's recent
    answers go to the courier that replaces it, under their request ids, after its hello; an
    answer older than SILENCE_ANSWER_KEEP_S is not (its caller has given up)."""
    real = Clock()
    link = CourierLink(time.monotonic, real_clock=real)
    link.hello(messages.encode(messages.Hello(Config(), os.getpid())))
    first, first_courier = socket.socketpair()
    link.attach(first)
    channel = LoopChannel(first_courier)
    channel.send(messages.SilenceBuzzer("old"))
    assert pump_until(link, lambda: link.silence_requests == 1)
    (asked,) = link.take_silences()
    link.answer_silence(asked.request_id, SilenceResult(silence="nothing_sounding"))
    real.now += SILENCE_ANSWER_KEEP_S + 1.0
    channel.send(messages.SilenceBuzzer("s1"))
    assert pump_until(link, lambda: link.silence_requests == 1)
    (asked,) = link.take_silences()
    channel.close()  # the courier dies before the loop answers
    assert pump_until(link, lambda: not link.connected)
    stopped = SilenceResult(silence="stopped", pattern="alarm")
    link.answer_silence(asked.request_id, stopped)  # queued, with no courier to take it

    second, second_courier = socket.socketpair()
    link.attach(second)
    told = _frames_to_courier(second_courier, link)
    assert isinstance(told[0], messages.Hello)
    answers = [m for m in told if isinstance(m, messages.SilenceAnswered)]
    assert [(a.request_id, a.result) for a in answers] == [("s1", stopped)]
    second_courier.close()
    link.close()


def _answers_handed_to_a_replacing_courier(asked: list[str], after_s: float) -> list[str]:
    """The request ids of the silence answers a new courier gets, attached ``after_s`` (real
    time) after the loop answered ``asked``, all taken by a courier that then died."""
    real = Clock()
    link = CourierLink(time.monotonic, real_clock=real)
    link.hello(messages.encode(messages.Hello(Config(), os.getpid())))
    first, first_courier = socket.socketpair()
    link.attach(first)
    channel = LoopChannel(first_courier)
    taken: list[messages.SilenceBuzzer] = []
    for request_id in asked:
        channel.send(messages.SilenceBuzzer(request_id))
        assert pump_until(link, lambda: link.silence_requests == 1)
        taken += link.take_silences()
    assert [t.request_id for t in taken] == asked
    channel.close()  # the courier dies before the loop answers
    assert pump_until(link, lambda: not link.connected)
    result = SilenceResult(silence="stopped", pattern="alarm")
    for silence in taken:
        link.answer_silence(silence.request_id, result)
    real.now += after_s
    second, second_courier = socket.socketpair()
    link.attach(second)
    told = _frames_to_courier(second_courier, link)
    answers = [m for m in told if isinstance(m, messages.SilenceAnswered)]
    assert all(a.result == result for a in answers)
    second_courier.close()
    link.close()
    return [a.request_id or "" for a in answers]


def test_a_replacing_courier_gets_every_recent_answer_up_to_the_keep_each_once() -> None:
    """Silences answered while no courier is there to reply (the one that took them died):
    several callers (two caregivers' phones and Home Assistant) each get their reply from the
    next courier, attached exactly SILENCE_ANSWER_KEEP_S later (still within it), each once,
    oldest first; past SILENCE_ANSWERS_KEPT only the latest (a bound, not every one ever).
    Those of more than a minute ago are not handed over (docs/mqtt.md: the answers of the
    last 60 s; their callers have given up)."""
    callers = ["phone-1", "phone-2", "home-assistant"]
    assert _answers_handed_to_a_replacing_courier(callers, SILENCE_ANSWER_KEEP_S) == callers
    assert _answers_handed_to_a_replacing_courier(callers, 61.0) == []
    many = [f"s{n}" for n in range(SILENCE_ANSWERS_KEPT + 2)]
    kept = _answers_handed_to_a_replacing_courier(many, 0.0)
    assert kept == many[-SILENCE_ANSWERS_KEPT:]


def test_an_arming_before_the_courier_first_speaks_is_told_once_it_says_nobody_is_there() -> None:
    """Until a courier first speaks nothing is known about the caregiver service (the
    courier is still starting: a Python process, its database, its broker connection), so
    the link says undecided, not "there": the runner looks again each tick of an arming made
    meanwhile, and says the words once the courier says that nobody would be paged."""
    link = CourierLink(time.monotonic)
    heard = Heard()
    safety = Armed(SafetyState.ARMED, since=1.0)
    runner = SessionRunner(
        resolve_plan("alternate-2-2"),
        safety=safety,
        buzzer=QuietBuzzer(),
        device_id="t",
        speaker=heard,
        caregivers_away=lambda: link.caregivers_away,
        caregivers_undecided=lambda: link.caregivers_undecided,
    )
    runner.tick(1.0)  # armed with no courier heard yet: nothing known, nothing said
    assert heard.said == []
    loop_end, courier_end = socket.socketpair()
    link.attach(loop_end)
    channel = LoopChannel(courier_end)
    channel.send(
        messages.CourierAlive(
            broker_connected=False, outbox_depth=0, caregivers_away=True, caregivers_undecided=False
        )
    )
    assert pump_until(link, lambda: link.caregivers_away)
    runner.tick(1.5)  # the same arming
    assert heard.said == [runner.prompts.file.prompts.no_caregiver]
    channel.close()
    link.close()


def test_the_courier_stores_an_event_whose_walker_is_not_an_id_without_that_walker(
    tmp_path: Path,
    link_with: Callable[..., tuple[CourierLink, CourierSupervisor]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A walker id that is not one (a bug on the loop's side) never reaches the incident
    record: the event is stored, its incident is the chosen walker's, and the log says so."""
    import dataclasses

    from firmware.storage.database import connect
    from firmware.storage.walkers import add_walker, select_walker

    conn = connect(tmp_path / "events.db")
    with conn:
        add_walker(conn, "Anna", by="physio", wall="2026-12-02T10:00:00+00:00")
        select_walker(conn, "anna", by="physio", via="cli", wall="2026-12-02T10:00:01+00:00")
    conn.close()
    link, supervisor = link_with(ThreadCourier)
    supervisor.start()
    link.session_walker_is("Anna; DROP TABLE")
    alert = dataclasses.replace(event(), incident="1" * 32)
    link.submit(alert)
    assert pump_until(link, lambda: link.pending == 0)
    assert stored_ids(tmp_path) == [alert.id]
    conn = connect(tmp_path / "events.db")
    try:
        walkers = conn.execute("SELECT id, walker FROM incidents").fetchall()
    finally:
        conn.close()
    assert walkers == [("1" * 32, "anna")]
    assert f"event {alert.id}: walker 'Anna; DROP TABLE' is not a walker id; ignored" in (
        caplog.text
    )


def test_a_monitor_that_vanishes_mid_session_is_a_fault_of_the_session_s_walker(
    tmp_path: Path, link_with: Callable[..., tuple[CourierLink, CourierSupervisor]]
) -> None:
    """Anna's session is under way (its running record handed over) when the monitor dies:
    the fault the courier raises names her, as the loop's events of her session do; before,
    it named nobody (no incident to take a walker from), whoever walked."""
    import datetime as dt

    from core.protocol.walker import Walker
    from tests.caregiver_support import session_record

    link, supervisor = link_with(ProcessCourier)
    supervisor.start()
    done = session_record("tm-1", dt.datetime.now(dt.UTC), backward_min=2, longest_min=2)
    running = msgspec.structs.replace(
        done, status="running", ended_wall=None, walker=Walker("anna", "Anna")
    )
    link.session_walker_is("anna")
    link.submit_session(running, final=False)
    alert = event(EventType.STUMBLE)
    link.submit(alert)
    assert pump_until(link, lambda: link.pending == 0)
    link.close()  # the monitor's end is gone (crash, kill -9), no goodbye said
    assert supervisor.stop(WAIT)
    conn = sqlite3.connect(tmp_path / "events.db")
    try:
        rows = conn.execute("SELECT type, walker FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    assert rows == [("stumble", "anna"), ("fault", "anna")]
