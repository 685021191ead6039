"""A send that hangs is abandoned at the round's deadline: other contacts, the next round's
pages and the retry schedule go on, and the hang is logged and counted.

Everything is on 127.0.0.1. A hanging name lookup is the system's ``getaddrinfo`` replaced
for one name (``stuck.test``), which Apprise's ``requests`` calls with no timeout; a hanging
server takes the connection and never answers. The notifier's deadline runs on a clock of
the test's own that jumps past it once the hang has begun and the other contact's page has
arrived, so nothing waits for real time and nothing is timed.

So that slow sends never get the notifier process killed as stuck, it reports as each send
ends (checked in its pipe as the next page reaches the server), and so that one killed
mid-send has its attempt counted, each attempt is counted as it begins.
"""

from __future__ import annotations

import dataclasses
import http.server
import logging
import os
import queue
import select
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from caregiver import notify_http
from caregiver.config import (
    CaregiverConfig,
    CaregiverMqttConfig,
    Contact,
    EscalationConfig,
    ServerConfig,
)
from caregiver.notify import SEND_DEADLINE_S, Notifier, warm_up
from caregiver.notify_process import Begin, Delivered, FromNotifier, NotifierProcess, Ready
from caregiver.outbox import ESCALATION, open_outbox, url_key
from caregiver.storage import Store, Urgency
from tests.caregiver_support import BY_HAND, WAIT, make_config, running_service
from tools.broker import Mosquitto


@dataclass
class Receiver:
    """An HTTP server that answers each request 200, but only once ``gate`` is set (the
    test sets it when the other contact's send has begun to hang)."""

    port: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    arrived: queue.Queue[str] = field(default_factory=queue.Queue)
    """The path of each request as it arrives."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    record = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            record.arrived.put(self.path)
            record.gate.wait(WAIT)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    yield record
    record.gate.set()
    httpd.shutdown()
    httpd.server_close()


class Hang:
    """Where contact c0's send hangs: ``began`` is set when it has, ``release`` ends it."""

    def __init__(self) -> None:
        self.began = threading.Event()
        self.release = threading.Event()


@pytest.fixture
def stuck_lookup(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hang]:
    """The system's lookup, except that ``stuck.test`` hangs until released (then is
    127.0.0.1): a resolver that does not answer, which no socket timeout bounds."""
    hang = Hang()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "stuck.test":
            hang.began.set()
            hang.release.wait(WAIT * 2)
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield hang
    hang.release.set()


@pytest.fixture
def silent_server() -> Iterator[tuple[int, Hang]]:
    """A server that takes each connection and never answers (until released: closed)."""
    hang = Hang()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    taken: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            taken.append(conn)
            hang.began.set()

    threading.Thread(target=accept, daemon=True).start()
    yield int(listener.getsockname()[1]), hang
    hang.release.set()
    listener.close()
    for conn in taken:
        conn.close()


class Notified(logging.Handler):
    """Sets :attr:`event` when the notifier logs c1's page delivered: on the round's own
    thread, as it marks the row, before it reads the clock again."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("notified c1:"):
            self.event.set()


@pytest.fixture
def c1_notified() -> Iterator[threading.Event]:
    handler = Notified()
    logger = logging.getLogger("caregiver.notify")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler.event
    logger.removeHandler(handler)
    logger.setLevel(level)


class JumpingClock:
    """Monotonic time that stands still until c1's page (answered only once c0's send
    hangs) has been marked delivered, then is far past any deadline: c0's send, still
    running, is then overdue, and c1's, already ended, cannot be."""

    def __init__(self, *ready: threading.Event) -> None:
        self.ready = ready

    def __call__(self) -> float:
        return 1e6 if all(e.is_set() for e in self.ready) else 0.0


def _contacts(db: Path, *urls: str) -> CaregiverConfig:
    return CaregiverConfig(
        server=ServerConfig(database=str(db), public_url="http://dash.example"),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
        escalation=EscalationConfig(retry_s=10, max_attempts=3),
        contacts=tuple(Contact(name=f"c{i}", urls=(u,)) for i, u in enumerate(urls)),
    )


def _queue(store: Store, contact: int, url: str, title: str, at: float, url_index: int = 0) -> None:
    with store.transaction() as tx:
        alert = tx.page_alert("fall", "treadmill-1", None, at, at + 300.0, frame=BY_HAND)
        tx.queue_notification(
            alert,
            f"c{contact}",
            contact,
            url_index,
            title,
            "body",
            at,
            urgency=Urgency.CRITICAL,
            contact_key=f"c{contact}",
            url_key=url_key(url),
        )


def _rows(db: Path) -> list[tuple[str, str, int, float, str | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT contact, status, attempts, next_at, last_error FROM notifications ORDER BY id"
        )
        return [tuple(r) for r in rows]


def _round(notifier: Notifier) -> int:
    """One ``deliver_due`` on a thread of its own, waited for at most ``WAIT`` (a round that
    waits for the hanging send fails the test instead of hanging it)."""
    delivered: list[int] = []
    thread = threading.Thread(target=lambda: delivered.append(notifier.deliver_due()))
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "the round waited for the hanging send"
    return delivered[0]


def _answer_once_hanging(receiver: Receiver, hang: Hang) -> threading.Thread:
    """Started: c1's page (``/other``) is answered only once c0's send hangs, so the round
    has one send delivered and one overdue at its deadline. Join it after the round."""

    def hold() -> None:
        assert receiver.arrived.get(timeout=WAIT) == "/other"
        hang.began.wait(WAIT)
        receiver.gate.set()

    holder = threading.Thread(target=hold)
    holder.start()
    return holder


def _join_senders() -> None:
    """Wait for every send thread to end (the released hang's included)."""
    for thread in threading.enumerate():
        if thread.name == "notify-send":
            thread.join(WAIT)


@pytest.mark.parametrize("where", ["apprise lookup", "silent server"])
def test_a_send_that_hangs_is_abandoned_and_the_others_and_the_next_round_page_on_time(
    where: str,
    request: pytest.FixtureRequest,
    receiver: Receiver,
    c1_notified: threading.Event,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Contact c0's send hangs: through Apprise (``xml://``) on a name lookup that does not
    answer — Apprise's own timeouts cover the connection and the answer, not the lookup —
    or on a server that never answers with the stdlib sender's timeouts set out of reach
    (as a server that trickles its answer keeps them from firing). c1's fall page is
    delivered in the same round; the round ends at the deadline with c0's page a failed
    attempt, retried on the schedule and logged at ERROR naming the contact; the next round
    (here c1's reminder, as the next escalation step) is delivered while c0's send still
    hangs. Before, the round, and every page after it, waited for the hang to end (in the
    notifier process: 120 s, then the process was killed and the same row hung again,
    its attempt never counted)."""
    monkeypatch.setattr(notify_http, "TIMEOUT_S", WAIT * 3)  # c1's send waits on the gate
    if where == "apprise lookup":
        hang = request.getfixturevalue("stuck_lookup")
        stuck_url = f"xml://stuck.test:{receiver.port}/late"
        warm_up([stuck_url])  # Apprise's import is not part of the hang
    else:
        port, hang = request.getfixturevalue("silent_server")
        stuck_url = f"json://127.0.0.1:{port}/late"
    db = tmp_path / "c.db"
    store = Store(str(db))
    outbox = open_outbox(str(db))
    other_url = f"json://127.0.0.1:{receiver.port}/other"
    clock = [1000.0]
    notifier = Notifier(
        outbox,
        _contacts(db, stuck_url, other_url),
        lambda: clock[0],
        monotonic=JumpingClock(c1_notified),
    )
    _queue(store, 0, stuck_url, "FALL", 1000.0)  # c0's page is queued, and started, first
    _queue(store, 1, other_url, "FALL", 1000.0)

    holder = _answer_once_hanging(receiver, hang)
    with caplog.at_level(logging.INFO, logger="caregiver.notify"):
        assert _round(notifier) == 1
    holder.join(WAIT)
    why = f"no answer within {SEND_DEADLINE_S:g} s (the send was abandoned)"
    assert _rows(db) == [
        ("c0", "pending", 1, 1010.0, why),
        ("c1", "sent", 1, 1000.0, None),
    ]
    assert any("sending to c0 (url #1) did not end" in r.getMessage() for r in caplog.records)
    assert (notifier.abandoned, notifier.hanging, notifier.failed) == (1, 1, 1)

    # the next escalation step, and c0's retry, come due while c0's send still hangs
    clock[0] = 1010.0
    _queue(store, 1, other_url, "REMINDER", 1010.0)
    assert _round(notifier) == 1
    assert receiver.arrived.get(timeout=WAIT) == "/other"
    assert [r[:3] for r in _rows(db)] == [
        ("c0", "pending", 1),  # not sent again while the first send hangs
        ("c1", "sent", 1),
        ("c1", "sent", 1),
    ]
    assert not hang.release.is_set()
    outbox.close()
    store.close()


def test_a_contact_s_other_url_is_paged_while_one_of_its_urls_hangs(
    receiver: Receiver,
    c1_notified: threading.Event,
    stuck_lookup: Hang,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """c0 has two URLs and the first one's lookup hangs: the page to the second goes in the
    same round, after the first is abandoned, and in the next round too, while the first
    URL's retry waits for its hanging send to end."""
    monkeypatch.setattr(notify_http, "TIMEOUT_S", WAIT * 3)
    stuck_url = f"xml://stuck.test:{receiver.port}/late"
    backup_url = f"json://127.0.0.1:{receiver.port}/backup"
    other_url = f"json://127.0.0.1:{receiver.port}/other"
    warm_up([stuck_url])
    db = tmp_path / "c.db"
    store = Store(str(db))
    outbox = open_outbox(str(db))
    clock = [1000.0]
    config = _contacts(db, stuck_url, other_url)
    two_urls = Contact(name="c0", urls=(stuck_url, backup_url))
    config = dataclasses.replace(config, contacts=(two_urls, config.contacts[1]))
    notifier = Notifier(outbox, config, lambda: clock[0], monotonic=JumpingClock(c1_notified))
    _queue(store, 0, stuck_url, "FALL", 1000.0)
    _queue(store, 0, backup_url, "FALL", 1000.0, url_index=1)
    _queue(store, 1, other_url, "FALL", 1000.0)

    holder = _answer_once_hanging(receiver, stuck_lookup)
    assert _round(notifier) == 2
    holder.join(WAIT)
    assert receiver.arrived.get(timeout=WAIT) == "/backup"
    assert [r[:3] for r in _rows(db)] == [
        ("c0", "pending", 1),
        ("c0", "sent", 1),
        ("c1", "sent", 1),
    ]
    clock[0] = 1010.0  # the first URL's retry is due; so is a reminder to both URLs
    _queue(store, 0, stuck_url, "REMINDER", 1010.0)
    _queue(store, 0, backup_url, "REMINDER", 1010.0, url_index=1)
    assert _round(notifier) == 1
    assert receiver.arrived.get(timeout=WAIT) == "/backup"
    assert [r[:3] for r in _rows(db)][3:] == [("c0", "pending", 0), ("c0", "sent", 1)]
    assert (notifier.abandoned, notifier.hanging) == (1, 1)
    outbox.close()
    store.close()


def test_an_abandoned_send_that_ends_delivered_is_marked_sent_not_paged_again(
    receiver: Receiver,
    c1_notified: threading.Event,
    stuck_lookup: Hang,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lookup answers after the deadline and Apprise delivers the page: the row, still
    waiting for its retry, is marked sent at the next round, so the contact is not paged a
    second time; the contact's messages go again. (c1's page, answered once c0's lookup
    hangs, is what ends the first round's wait; the clock then says the deadline passed.)"""
    monkeypatch.setattr(notify_http, "TIMEOUT_S", WAIT * 3)
    stuck_url = f"xml://stuck.test:{receiver.port}/late"
    other_url = f"json://127.0.0.1:{receiver.port}/other"
    warm_up([stuck_url])
    db = tmp_path / "c.db"
    store = Store(str(db))
    outbox = open_outbox(str(db))
    clock = [1000.0]
    notifier = Notifier(
        outbox,
        _contacts(db, stuck_url, other_url),
        lambda: clock[0],
        monotonic=JumpingClock(c1_notified),
    )
    _queue(store, 0, stuck_url, "FALL", 1000.0)
    _queue(store, 1, other_url, "FALL", 1000.0)

    holder = _answer_once_hanging(receiver, stuck_lookup)
    assert _round(notifier) == 1
    holder.join(WAIT)
    assert [r[:3] for r in _rows(db)] == [("c0", "pending", 1), ("c1", "sent", 1)]
    stuck_lookup.release.set()
    assert receiver.arrived.get(timeout=WAIT) == "/late"
    _join_senders()
    _queue(store, 0, stuck_url, "REMINDER", 1000.0)
    assert _round(notifier) == 1  # the reminder; the page was marked sent, not sent again
    assert [r[:3] for r in _rows(db)] == [("c0", "sent", 1), ("c1", "sent", 1), ("c0", "sent", 1)]
    assert receiver.arrived.get(timeout=WAIT) == "/late"
    assert receiver.arrived.empty()
    assert (notifier.hanging, notifier.sent) == (0, 3)
    outbox.close()
    store.close()


def test_a_hanging_send_is_on_healthz_and_in_the_status_until_it_ends(
    mosquitto: Mosquitto,
    receiver: Receiver,
    c1_notified: threading.Event,
    stuck_lookup: Hang,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Staff watching ``/healthz`` (or the service's status) see that a contact's pages are
    not going out: ``notify_hanging`` counts the abandoned sends still hanging, and the
    status the sends abandoned so far; the instance stays alive (a restart would not make
    the phone service answer). Before, nothing but the notifier process's kill at 120 s
    ("finished no round", no contact named) said so."""
    monkeypatch.setattr(notify_http, "TIMEOUT_S", WAIT * 3)
    stuck_url = f"xml://stuck.test:{receiver.port}/late"
    other_url = f"json://127.0.0.1:{receiver.port}/other"
    warm_up([stuck_url])
    contacts = (Contact("c0", (stuck_url,)), Contact("c1", (other_url,)))
    with running_service(
        make_config(mosquitto, tmp_path, contacts=contacts), web=False, background=False
    ) as service:
        service.notifier.monotonic = JumpingClock(c1_notified)
        now = service.notifier.clock()
        _queue(service.store, 0, stuck_url, "FALL", now)
        _queue(service.store, 1, other_url, "FALL", now)

        holder = _answer_once_hanging(receiver, stuck_lookup)
        assert _round(service.notifier) == 1
        holder.join(WAIT)
        health = service.health()
        assert health.notify_hanging == 1 and health.alive
        status = service.status()
        assert (status["notify_hanging"], status["notify_abandoned"]) == (1, 1)

        stuck_lookup.release.set()  # the lookup answers, Apprise delivers late
        assert receiver.arrived.get(timeout=WAIT) == "/late"
        _join_senders()
        service.notifier.deliver_due()  # takes the late result
        assert service.health().notify_hanging == 0
        assert service.status()["notify_abandoned"] == 1


def test_the_notifier_process_reports_its_abandoned_and_hanging_sends() -> None:
    """The child's counters reach the service over its real pipe: sends abandoned add up
    over the child's reports, the hanging ones are the child's latest word."""
    process = NotifierProcess(_contacts(Path("unused.db")), "instance")
    read_fd, write_fd = os.pipe()
    child = subprocess.Popen(["true"])
    child.wait()
    process._process = child
    with os.fdopen(write_fd, "wb") as pipe:
        for report in (Delivered(1, 1, 1, 1), Delivered(1, 2, 2, 1), Delivered(2, 2, 2, 0)):
            pipe.write(msgspec.json.encode(report) + b"\n")
    process._read(child, os.fdopen(read_fd, "rb"))
    assert (process.sent, process.failed, process.abandoned, process.hanging) == (2, 2, 2, 0)


@dataclass
class Looking:
    """An HTTP server that answers each request 200 at once, after putting on ``looked``
    what ``look`` returns as it arrives (the test's look at what the sender did before)."""

    port: int = 0
    look: Callable[[], object] = lambda: None
    looked: queue.Queue[object] = field(default_factory=queue.Queue)


@pytest.fixture
def looking() -> Iterator[Looking]:
    record = Looking()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            record.looked.put(record.look())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    yield record
    httpd.shutdown()
    httpd.server_close()


def _reports(fd: int) -> list[Delivered | Ready]:
    """What the child has written to its pipe so far, read without waiting (nothing: [])."""
    decoder = msgspec.json.Decoder(FromNotifier)
    data = b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return [decoder.decode(line) for line in data.splitlines()]


def test_the_notifier_process_reports_each_send_as_it_ends_not_only_at_the_round_s_end(
    looking: Looking, tmp_path: Path
) -> None:
    """The service's supervisor kills a child it has not heard from in ``STUCK_S`` (120 s),
    and the child reported only when a round ended: a round holding one contact's queue of
    seven pages to a service answering in 19 s each (under the 20 s deadline, so none is
    abandoned) lasts 133 s and was killed as stuck, its send in flight uncounted and sent
    again by its successor. Now the child reports as each send ends, before it begins the
    next: here three pages in one round, and as each reaches the service the report of the
    one before it is already in the pipe (before, nothing was until the round ended)."""
    db = tmp_path / "c.db"
    store = Store(str(db))
    store.hold_lease(ESCALATION, "instance", None, time.time() + 10)
    url = f"json://127.0.0.1:{looking.port}/ann"
    for title in ("FALL 1", "FALL 2", "FALL 3"):
        _queue(store, 0, url, title, 1000.0)
    read_fd, write_fd = os.pipe()
    looking.look = lambda: _reports(read_fd)
    child = subprocess.Popen(
        [sys.executable, "-m", "caregiver.notify_process", str(write_fd)],
        stdin=subprocess.PIPE,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    try:
        assert child.stdin is not None
        begin = Begin(_contacts(db, url), "instance", logging.WARNING, poll_s=WAIT * 10)
        child.stdin.write(msgspec.json.encode(begin) + b"\n")
        child.stdin.flush()
        assert [looking.looked.get(timeout=WAIT) for _ in range(3)] == [
            [],
            [Delivered(1, 0)],
            [Delivered(2, 0)],
        ]
        with os.fdopen(read_fd, "rb", closefd=False) as pipe:
            assert msgspec.json.decode(pipe.readline(), type=FromNotifier) == Delivered(3, 0)
        assert [r[:3] for r in _rows(db)] == [("c0", "sent", 1)] * 3
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(WAIT)
        os.close(read_fd)
        store.close()


def test_a_send_cut_short_by_the_notifier_s_death_counts_as_an_attempt(tmp_path: Path) -> None:
    """A notifier process wedged mid-send is killed by its supervisor (``STUCK_S``): the row
    it was sending has its attempt counted already, as the send began, so each successor that
    is killed on it in turn counts one more, and the one that finds ``max_attempts`` (3 here)
    begun gives it up, logged, without sending it again. Before, the kill left the row as if
    never tried, and a message whose send wedged the notifier was sent by every successor
    for ever. Each "process" here is a notifier with its own connection whose round is left
    hanging in its send, as a killed one is."""
    db = tmp_path / "c.db"
    store = Store(str(db))
    url = "json://push.example/ann"
    config = _contacts(db, url)
    began: queue.Queue[str] = queue.Queue()
    wedged = threading.Event()

    def send(url: str, title: str, body: str, urgency: Urgency) -> bool:
        began.put(title)
        return not wedged.wait(WAIT)  # until the test ends: a send that never ends

    _queue(store, 0, url, "FALL", 1000.0)
    rounds: list[threading.Thread] = []
    outboxes = []
    try:
        for attempt in (1, 2, 3):
            outboxes.append(open_outbox(str(db)))
            notifier = Notifier(outboxes[-1], config, lambda: 1000.0, send, monotonic=lambda: 0.0)
            rounds.append(threading.Thread(target=notifier.deliver_due, daemon=True))
            rounds[-1].start()
            assert began.get(timeout=WAIT) == "FALL"
            assert _rows(db) == [("c0", "pending", attempt, 1000.0, None)]  # killed here
        outboxes.append(open_outbox(str(db)))
        successor = Notifier(outboxes[-1], config, lambda: 1000.0, send)
        assert _round(successor) == 0
        why = (
            "attempt 3 began and never ended: the notifier process was stopped while sending "
            "it (killed as stuck, or crashed)"
        )
        assert _rows(db) == [("c0", "failed", 3, 1000.0, why)]
        assert began.empty() and successor.failed == 1
    finally:
        wedged.set()
        for thread in rounds:
            thread.join(WAIT)
        for outbox in outboxes:
            outbox.close()
        store.close()


def test_a_url_two_contacts_share_waits_for_its_hanging_send_another_token_does_not(
    c1_notified: threading.Event, tmp_path: Path
) -> None:
    """Contacts c0 and c2 share one URL (a family's topic; or one person in two escalation
    tiers); its send for c0 hangs and is abandoned. c2's message to it then waits, unsent and
    uncounted, until that send ends: the URL is the whole address — service, server,
    account, token, recipients — so c2's message would go exactly where c0's is stuck, hang
    the same way and leave a second thread behind. c3's URL on the same service with its own
    token is another address and is sent as usual. When the hang ends (delivered after all),
    c0's row is marked sent and c2's message goes. Each send ending or abandoned is reported
    (the notifier process's heartbeat)."""
    shared = "json://push.example/family-topic"
    own_token = "json://push.example/carol-topic"
    healthy = "json://other.example/bob"
    hang = Hang()
    delivered: queue.Queue[tuple[str, str]] = queue.Queue()

    def send(url: str, title: str, body: str, urgency: Urgency) -> bool:
        if url == shared and not hang.release.is_set():
            hang.began.set()
            hang.release.wait(WAIT)
        elif url == healthy:
            hang.began.wait(WAIT)  # c1 answered once c0's send hangs (JumpingClock)
        delivered.put((url, title))
        return True

    db = tmp_path / "c.db"
    store = Store(str(db))
    outbox = open_outbox(str(db))
    progress: list[int] = []
    notifier = Notifier(
        outbox,
        _contacts(db, shared, healthy, shared, own_token),
        lambda: 1000.0,
        send,
        monotonic=JumpingClock(c1_notified),
        progress=lambda: progress.append(notifier.hanging),
    )
    try:
        _queue(store, 0, shared, "FALL", 1000.0)
        _queue(store, 1, healthy, "FALL", 1000.0)
        assert _round(notifier) == 1
        assert progress == [0, 1]  # c1's send ended, then c0's was abandoned
        assert delivered.get_nowait() == (healthy, "FALL")

        _queue(store, 2, shared, "FALL", 1000.0)
        _queue(store, 3, own_token, "FALL", 1000.0)
        assert _round(notifier) == 1
        assert delivered.get_nowait() == (own_token, "FALL")
        assert delivered.empty()
        assert [r[:3] for r in _rows(db)] == [
            ("c0", "pending", 1),
            ("c1", "sent", 1),
            ("c2", "pending", 0),  # waits: not a second send into the same hang
            ("c3", "sent", 1),
        ]
        assert (notifier.hanging, notifier.abandoned) == (1, 1)

        hang.release.set()
        assert delivered.get(timeout=WAIT) == (shared, "FALL")  # c0's, late
        _join_senders()
        assert _round(notifier) == 1
        assert delivered.get_nowait() == (shared, "FALL")  # c2's
        assert [r[:3] for r in _rows(db)] == [
            ("c0", "sent", 1),
            ("c1", "sent", 1),
            ("c2", "sent", 1),
            ("c3", "sent", 1),
        ]
        assert notifier.hanging == 0
    finally:
        hang.release.set()
        _join_senders()
        outbox.close()
        store.close()


def test_a_page_queued_during_a_round_of_another_contact_s_slow_sends_goes_at_once(
    tmp_path: Path,
) -> None:
    """c0's round holds two pages to a slow service (each answered only when the test says,
    as one answering in 19 s would, within the deadline). c1's fall page is queued while the
    first is being sent and the notifier woken, as the service does: it joins the round and
    is delivered while c0's send is still under way. Before, it waited for the round's end:
    however many slow pages c0's queue held (seven at 19 s: 133 s), and with the child no
    longer killed as stuck mid-round, for ever longer."""
    slow = "json://slow.example/ann"
    fast = "json://fast.example/bob"
    answer = threading.Semaphore(0)
    sending: queue.Queue[tuple[str, str]] = queue.Queue()
    delivered: queue.Queue[tuple[str, str]] = queue.Queue()
    recorded: queue.Queue[None] = queue.Queue()  # the notifier's progress: a send's row marked

    def send(url: str, title: str, body: str, urgency: Urgency) -> bool:
        sending.put((url, title))
        if url == slow:
            assert answer.acquire(timeout=WAIT)
        delivered.put((url, title))
        return True

    db = tmp_path / "c.db"
    store = Store(str(db))
    outbox = open_outbox(str(db))
    config = _contacts(db, slow, fast)
    notifier = Notifier(
        outbox,
        config,
        lambda: 1000.0,
        send,
        monotonic=lambda: 0.0,
        progress=lambda: recorded.put(None),
    )
    _queue(store, 0, slow, "FALL 1", 1000.0)
    _queue(store, 0, slow, "FALL 2", 1000.0)
    result: list[int] = []
    round_ = threading.Thread(target=lambda: result.append(notifier.deliver_due()))
    round_.start()
    try:
        assert sending.get(timeout=WAIT) == (slow, "FALL 1")
        _queue(store, 1, fast, "FALL", 1000.0)
        notifier.wake()
        assert delivered.get(timeout=WAIT) == (fast, "FALL")  # c0's first still sending
        recorded.get(timeout=WAIT)  # its row marked (after the send returned: not before)
        assert [r[:3] for r in _rows(db)] == [
            ("c0", "pending", 1),
            ("c0", "pending", 0),
            ("c1", "sent", 1),
        ]
    finally:
        answer.release(2)
        round_.join(WAIT)
    assert result == [3]
    assert [r[:3] for r in _rows(db)] == [("c0", "sent", 1), ("c0", "sent", 1), ("c1", "sent", 1)]
    outbox.close()
    store.close()


def test_a_wake_mid_round_takes_only_new_rows_due_now_and_keeps_one_contact_one_at_a_time(
    tmp_path: Path,
) -> None:
    """The wake that joins a round (:meth:`Notifier.wake`) reads the rows due *now* (the wall
    clock moved on since the round began: the pages queued meanwhile are due at the later
    time) and only those the round has not taken: c0's first page, in flight when the wake
    came, fails and is retried later on the usual schedule, never sent again in this round.
    c0's new page waits behind its first (one contact's pages one after another, in order)
    while c1's goes at once."""
    slow = "json://slow.example/ann"
    fast = "json://fast.example/bob"
    answer = threading.Semaphore(0)
    sending: queue.Queue[tuple[str, str]] = queue.Queue()

    def send(url: str, title: str, body: str, urgency: Urgency) -> bool:
        sending.put((url, title))
        if url == slow:
            assert answer.acquire(timeout=WAIT)
            return title != "FALL 1"  # the first attempt fails: retried in 10 s
        return True

    db = tmp_path / "c.db"
    store = Store(str(db))
    outbox = open_outbox(str(db))
    wall = [1000.0]
    notifier = Notifier(
        outbox, _contacts(db, slow, fast), lambda: wall[0], send, monotonic=lambda: 0.0
    )
    _queue(store, 0, slow, "FALL 1", 1000.0)
    result: list[int] = []
    round_ = threading.Thread(target=lambda: result.append(notifier.deliver_due()))
    round_.start()
    try:
        assert sending.get(timeout=WAIT) == (slow, "FALL 1")
        wall[0] = 1005.0
        _queue(store, 0, slow, "FALL 2", 1005.0)
        _queue(store, 1, fast, "FALL", 1005.0)
        notifier.wake()
        assert sending.get(timeout=WAIT) == (fast, "FALL")
        # c0's second is not begun (nor counted) while its first is still being sent
        # (c1's row is claimed, and is marked sent whenever its send ends: not looked at)
        assert [r[:3] for r in _rows(db)][:2] == [("c0", "pending", 1), ("c0", "pending", 0)]
    finally:
        answer.release(2)
        round_.join(WAIT)
    assert result == [2]
    assert sending.get_nowait() == (slow, "FALL 2")
    assert sending.empty()  # FALL 1 was not sent a second time in the round
    assert [r[:3] for r in _rows(db)] == [
        ("c0", "pending", 1),
        ("c0", "sent", 1),
        ("c1", "sent", 1),
    ]
    outbox.close()
    store.close()


@dataclass
class Holding:
    """An HTTP server on 127.0.0.1: ``/slow`` is answered 200 only once ``release`` is set
    (a phone service taking its time, within the deadline); ``/fast`` answers the next of
    ``fast`` (then 200)."""

    port: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    fast: list[int] = field(default_factory=list)
    arrived: queue.Queue[str] = field(default_factory=queue.Queue)
    """The path of each request as it arrives."""


@pytest.fixture
def holding() -> Iterator[Holding]:
    record = Holding()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            record.arrived.put(self.path)
            status = 200
            if self.path == "/slow":
                record.release.wait(WAIT * 2)
            elif record.fast:
                status = record.fast.pop(0)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    yield record
    record.release.set()
    httpd.shutdown()
    httpd.server_close()


def test_a_retry_that_comes_due_mid_round_is_sent_before_the_round_s_slow_send_ends(
    tmp_path: Path, holding: Holding, monkeypatch: pytest.MonkeyPatch
) -> None:
    """c0's fall page goes to a slow service (held by the server until the test releases it);
    c1's fails at once (500) and is due again 10 s later. The round wakes when it is due and
    sends it while c0's send is still under way. Before, only rows queued during a round
    joined it (the service wakes the notifier); one due by time alone waited for the round's
    end, however long slow services made it: a retry of Bob's page behind Ann's slow ones.

    The wall clock is the test's: it reads 1000 until the notifier's progress says c1's
    failed attempt is marked (its retry due at 1010), then 1010; nothing waits for real
    time, and no wake is sent."""
    monkeypatch.setattr(notify_http, "TIMEOUT_S", WAIT * 2)  # the held request is not timed out
    slow = f"json://127.0.0.1:{holding.port}/slow"
    fast = f"json://127.0.0.1:{holding.port}/fast"
    holding.fast[:] = [500]
    marked: queue.Queue[None] = queue.Queue()  # the notifier's progress: a send's row marked
    progressed: list[None] = []

    def progress() -> None:
        progressed.append(None)
        marked.put(None)

    db = tmp_path / "c.db"
    store = Store(str(db))
    outbox = open_outbox(str(db))
    notifier = Notifier(
        outbox,
        _contacts(db, slow, fast),
        lambda: 1010.0 if progressed else 1000.0,
        monotonic=lambda: 0.0,  # no send reaches its deadline
        progress=progress,
    )
    _queue(store, 0, slow, "FALL", 1000.0)
    _queue(store, 1, fast, "FALL", 1000.0)
    result: list[int] = []
    round_ = threading.Thread(target=lambda: result.append(notifier.deliver_due()))
    round_.start()
    try:
        # c0's, c1's and c1's retry, in whatever order they reach the server: on a loaded
        # machine c1's failure and its retry can both arrive before c0's send has connected
        arrived = sorted(holding.arrived.get(timeout=WAIT) for _ in range(3))
        assert arrived == ["/fast", "/fast", "/slow"]  # the retry, c0's still held
        marked.get(timeout=WAIT)  # c1's failed attempt
        marked.get(timeout=WAIT)  # c1's retry, marked sent
        assert not holding.release.is_set() and round_.is_alive()
        assert [r[:3] for r in _rows(db)] == [("c0", "pending", 1), ("c1", "sent", 2)]
    finally:
        holding.release.set()
        round_.join(WAIT)
    assert result == [2]
    assert [r[:3] for r in _rows(db)] == [("c0", "sent", 1), ("c1", "sent", 2)]
    outbox.close()
    store.close()


def test_a_retry_that_joins_the_round_keeps_its_place_in_its_contact_s_queue(
    tmp_path: Path,
) -> None:
    """c0's three pages: the first fails (due again at 1010), the second is slow, the third
    waits behind it. The first's retry comes due while the second is being sent and joins the
    round in the order the pages were queued: first, then third — as the next round would
    have sent them (by id), never the third before the first."""
    url = "json://ann.example/x"
    answer = threading.Semaphore(0)
    sent: list[str] = []
    tried: set[str] = set()
    progressed: list[None] = []

    def send(url: str, title: str, body: str, urgency: Urgency) -> bool:
        sent.append(title)
        if title == "P2":
            assert answer.acquire(timeout=WAIT)
        if title == "P1" and title not in tried:
            tried.add(title)
            return False
        return True

    db = tmp_path / "c.db"
    store = Store(str(db))
    outbox = open_outbox(str(db))
    joined = threading.Event()  # the round has read P1's retry (its query at 1010)

    class Watched:
        """The round's outbox, which says when P1's retry has been read as due."""

        def __getattr__(self, name: str) -> Any:
            return getattr(outbox, name)

        def notifications_due(self, now: float) -> Any:
            due = outbox.notifications_due(now)
            if now >= 1010.0 and any(n.title == "P1" for n in due):
                joined.set()
            return due

    notifier = Notifier(
        Watched(),  # type: ignore[arg-type]
        _contacts(db, url),
        lambda: 1010.0 if progressed else 1000.0,
        send,
        monotonic=lambda: 0.0,
        progress=lambda: progressed.append(None),
    )
    for title in ("P1", "P2", "P3"):
        _queue(store, 0, url, title, 1000.0)
    result: list[int] = []
    round_ = threading.Thread(target=lambda: result.append(notifier.deliver_due()))
    round_.start()
    try:
        assert joined.wait(WAIT)  # P2 is still being sent
        assert sent == ["P1", "P2"]
    finally:
        answer.release()
        round_.join(WAIT)
    assert result == [3]
    assert sent == ["P1", "P2", "P1", "P3"]
    outbox.close()
    store.close()


def test_a_failed_send_s_retry_is_scheduled_from_when_it_failed_not_from_the_round_s_start(
    tmp_path: Path,
) -> None:
    """A send that fails after a long wait (a slow service answering 500) is retried the
    escalation's ``retry_s`` after its failure, not after the round began: from the round's
    start, the wait already spent ate the pause, and the retry went at once. The wall clock
    is the test's: 1000 as the round begins, 1100 once the send has begun (it "took" 100 s).
    Mutant that survived: the failure recorded with the round's start time."""
    url = "json://ann.example/x"
    clock = [1000.0]

    def send(url: str, title: str, body: str, urgency: Urgency) -> bool:
        clock[0] = 1100.0
        return False

    db = tmp_path / "c.db"
    store = Store(str(db))
    outbox = open_outbox(str(db))
    config = _contacts(db, url)
    notifier = Notifier(outbox, config, lambda: clock[0], send, monotonic=lambda: 0.0)
    _queue(store, 0, url, "P1", 1000.0)
    assert notifier.deliver_due() == 0
    ((contact, status, attempts, next_at, _),) = _rows(db)
    assert (contact, status, attempts) == ("c0", "pending", 1)
    assert next_at == 1100.0 + config.escalation.retry_s
    outbox.close()
    store.close()


def test_a_failing_page_is_tried_again_at_least_hourly_while_attempts_remain(
    tmp_path: Path,
) -> None:
    """A send that fails every time: each retry ``retry_s`` doubling after the failure, at
    most an hour apart (``RETRY_EVERY_AT_MOST_S``), until ``max_attempts`` gives up. Before,
    the doubling had no ceiling: 600, 1200, 2400, 4800, 9600, 19200 s, a fall's sixth page
    more than five hours after its fifth. The wall clock is the test's, moved to each
    retry's time."""
    url = "json://ann.example/x"
    clock = [1000.0]
    db = tmp_path / "c.db"
    store = Store(str(db))
    outbox = open_outbox(str(db))
    config = dataclasses.replace(
        _contacts(db, url), escalation=EscalationConfig(retry_s=600, max_attempts=7)
    )
    notifier = Notifier(
        outbox, config, lambda: clock[0], lambda *args: False, monotonic=lambda: 0.0
    )
    _queue(store, 0, url, "P1", 1000.0)
    delays = []
    for _ in range(7):
        assert notifier.deliver_due() == 0
        ((_, status, _, next_at, _),) = _rows(db)
        if status != "pending":
            break
        delays.append(next_at - clock[0])
        clock[0] = next_at
    assert delays == [600, 1200, 2400, 3600, 3600, 3600]
    assert status == "failed"
    outbox.close()
    store.close()
