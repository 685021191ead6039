"""The caregiver service tells systemd it is alive only while the parts that page and show
alerts are turning (caregiver/liveness.py, systemd/retroguard-caregiver.service).

The notifications go over a real ``AF_UNIX`` datagram socket, as systemd's would; the
service is a real one on a real Mosquitto and SQLite file. Time is a clock the test moves:
the allowances are tens of seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from caregiver.broker_link import Lost
from caregiver.changes import DeviceChanged, encode
from caregiver.config import Contact
from caregiver.liveness import Liveness, SystemdPinger
from caregiver.presence import PresenceTiming
from caregiver.service import CaregiverService
from caregiver.storage import StorageFault
from core.sdnotify import Notifier
from tests.caregiver_support import Http, make_config, running_service
from tests.mqtt_helpers import subscriber
from tests.test_caregiver_ingest_batch import _event
from tests.test_caregiver_missed_alarms import _Stream
from tools.broker import Mosquitto, mosquitto_available
from tools.pgcluster import PostgresCluster

ROOT = Path(__file__).resolve().parent.parent
WAIT = 60.0


class Moving:
    """A monotonic clock the test sets."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[socket.socket]:
    """The socket systemd would listen on (``NOTIFY_SOCKET``)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(WAIT)
    yield sock
    sock.close()


def heard(sock: socket.socket) -> list[str]:
    """Every datagram already waiting, as their lines (local datagrams arrive at once)."""
    lines: list[str] = []
    sock.setblocking(False)
    try:
        while True:
            lines += sock.recv(4096).decode().splitlines()
    except BlockingIOError:
        return lines
    finally:
        sock.settimeout(WAIT)


def hang_the_ticker(cg: CaregiverService, hold: threading.Event) -> None:
    """Make the escalation ticker stick inside its next tick until ``hold`` is set; returns
    once it is stuck there."""
    held = threading.Event()
    ticking = cg.alerting.tick

    def hung_tick() -> None:
        held.set()
        hold.wait()
        ticking()

    cg.alerting.tick = hung_tick  # type: ignore[method-assign]
    assert held.wait(WAIT)  # the ticker is stuck inside its tick


def test_each_kind_of_part_is_alive_until_its_allowance_passes() -> None:
    clock = Moving()
    live = Liveness(clock)
    ticker = live.heartbeat("the ticker", 30)
    store = live.busy("storing", 60)
    done = threading.Event()
    thread = threading.Thread(target=done.wait)
    thread.start()
    live.thread("the worker", lambda: thread)
    assert live.problems() == []
    clock.now += 30
    assert live.problems() == []  # exactly the allowance is still alive
    clock.now += 1
    assert live.problems() == ["the ticker silent for 31 s (allowed 30 s)"]
    ticker.beat()
    with store.working():
        clock.now += 61
        ticker.beat()
        assert live.problems() == ["storing stuck for 61 s (allowed 60 s)"]
    assert live.problems() == []  # waiting for work is not being stuck
    clock.now += 600
    ticker.beat()
    assert live.problems() == []
    done.set()
    thread.join()
    assert live.problems() == ["the worker has stopped"]


def test_ready_once_serving_then_pings_only_while_alive(
    tmp_path: Path, systemd: socket.socket
) -> None:
    clock = Moving()
    live = Liveness(clock)
    ticker = live.heartbeat("the escalation ticker", 30)
    serving = False
    pinger = SystemdPinger(
        Notifier(str(tmp_path / "notify")), live, watchdog_s=30, serving=lambda: serving
    )
    assert pinger.interval_s == 7.5
    pinger.round()
    assert heard(systemd) == []  # not serving yet: not even READY
    serving = True
    pinger.round()
    assert heard(systemd) == [
        "READY=1",
        "STATUS=serving; every part is turning",
        "WATCHDOG=1",
    ]
    clock.now += 31
    pinger.round()
    clock.now += 7.5  # the silence grows: the same episode, not said again
    pinger.round()
    assert heard(systemd) == [
        "STATUS=not alive: the escalation ticker silent for 31 s (allowed 30 s)"
    ]  # said once, and no ping: systemd restarts the service
    ticker.beat()
    pinger.round()
    assert heard(systemd) == ["STATUS=serving; every part is turning", "WATCHDOG=1"]
    assert pinger.pings == 2


def test_a_hung_escalation_ticker_or_dashboard_stops_the_real_service_s_pings(
    tmp_path: Path, mosquitto: Mosquitto, systemd: socket.socket
) -> None:
    clock = Moving()
    hold = threading.Event()
    with running_service(make_config(mosquitto, tmp_path), monotonic=clock) as cg:
        pinger = cg.systemd_pinger(
            Notifier(str(tmp_path / "notify")), watchdog_s=30, serving=lambda: True
        )
        pinger.round()
        assert heard(systemd)[-1] == "WATCHDOG=1"

        def on_loop() -> None:
            ran = threading.Event()
            assert cg.hub.run_on_loop(ran.set)
            assert ran.wait(WAIT)  # the event loop ran everything posted before this

        def dashboard_beats_now() -> None:
            assert pinger.dashboard is not None  # each round posts a beat and looks at the
            assert cg.hub.run_on_loop(pinger.dashboard.beat)  # one the round before posted
            on_loop()

        hang_the_ticker(cg, hold)
        clock.now += 31
        dashboard_beats_now()
        pinger.round()
        pinger.round()
        assert heard(systemd) == [
            "STATUS=not alive: the escalation ticker silent for 31 s (allowed 30 s)"
        ]
        hold.set()
        beat_again = threading.Event()
        cg.alerting.tick = beat_again.set  # type: ignore[method-assign]
        assert beat_again.wait(WAIT)  # the ticker turned again (it beats before each tick)
        on_loop()
        pinger.round()
        assert heard(systemd) == ["STATUS=serving; every part is turning", "WATCHDOG=1"]
        on_loop()  # that round's beat ran now, not after the clock moves on below

        # The dashboard's event loop blocked: its beat is posted but never runs.
        unblock = threading.Event()
        assert cg.hub.run_on_loop(lambda: unblock.wait(WAIT) and None)
        clock.now += 31
        cg._ticker_beat.beat()  # the ticker is fine; only the loop is stuck
        pinger.round()
        pinger.round()
        status = heard(systemd)
        unblock.set()
        assert status == [
            "STATUS=not alive: the dashboard's event loop silent for 31 s (allowed 30 s)"
        ]


def test_retroguard_caregiver_as_installed_says_ready_pings_and_stopping(
    tmp_path: Path, mosquitto: Mosquitto, systemd: socket.socket
) -> None:
    config = tmp_path / "caregiver.toml"
    config.write_text(
        "[server]\n"
        'host = "127.0.0.1"\n'
        "port = 0\n"
        f'database = "{tmp_path / "caregiver.db"}"\n'
        "[mqtt]\n"
        f'host = "{mosquitto.host}"\n'
        f"port = {mosquitto.port}\n"
    )
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "WATCHDOG_USEC": "2000000",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("WATCHDOG_PID", None)
    cli = [sys.executable, "-c", "from launcher.cli import main; main()"]
    service = subprocess.Popen(
        [*cli, "caregiver", "-c", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        while lines.count("WATCHDOG=1") < 2:  # each recv waits for systemd's next datagram
            lines += systemd.recv(4096).decode().splitlines()
        assert lines[:2] == ["READY=1", "STATUS=serving; every part is turning"]
        service.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in lines:
            lines += systemd.recv(4096).decode().splitlines()
        assert service.wait(WAIT) == 0
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
        assert service.stderr is not None
        errors = service.stderr.read()
    assert "Traceback" not in errors, errors


def _health(url: str) -> tuple[int, dict[str, object]]:
    """``GET url`` with no login, as a load balancer or an uptime monitor asks: the status and
    the JSON body (which 503 carries too)."""
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, json.loads(refused.read())


def test_healthz_says_without_a_login_whether_the_service_works_and_whether_falls_reach_it(
    tmp_path: Path,
) -> None:
    """``/healthz`` (a load balancer's question: do the parts that show and page alerts turn)
    and ``/healthz/receiving`` (an uptime monitor's: and do falls reach it) on a real service:
    200 connected; with the broker stopped the instance still works (the dashboard and its
    banner are worth serving) and is not receiving; a hung escalation ticker is not alive.
    Nothing in the answers names a device, a person or the broker's address."""
    if not mosquitto_available():
        pytest.skip("mosquitto not installed")
    broker = Mosquitto()
    broker.start()
    clock = Moving()
    hold = threading.Event()
    try:
        with running_service(make_config(broker, tmp_path), monotonic=clock) as cg:
            assert _health(f"{cg.url}/healthz") == (
                200,
                {
                    "status": "ok",
                    "alive": True,
                    "problems": [],
                    "receiving": True,
                    "broker": "connected",
                    "broker_problem": None,
                    "down_s": None,
                    "storing": True,
                    "database_damaged": False,
                    "notify_hanging": 0,
                    "database_parts": [],
                    "message_held": False,
                },
            )
            assert _health(f"{cg.url}/healthz/receiving")[0] == 200

            broker.stop()
            link = cg.ingestor.link
            assert link.wait_for(lambda s: isinstance(s, Lost), WAIT), link.state
            code, body = _health(f"{cg.url}/healthz")
            assert code == 200 and body["status"] == "not receiving" and body["alive"] is True
            assert body["receiving"] is False and body["broker"] == "lost"
            assert body["broker_problem"] in ("dropped", "unreachable")
            code, body = _health(f"{cg.url}/healthz/receiving")
            assert code == 503 and body["status"] == "not receiving"
            assert str(broker.port) not in json.dumps(body)

            hang_the_ticker(cg, hold)
            clock.now += 31
            code, body = _health(f"{cg.url}/healthz")
            assert code == 503 and body["status"] == "not alive" and body["alive"] is False
            assert body["problems"] == ["the escalation ticker silent for 31 s (allowed 30 s)"]
            assert _health(f"{cg.url}/healthz/receiving")[0] == 503
            hold.set()
    finally:
        hold.set()
        broker.cleanup()


def test_the_escalation_ticker_turns_while_the_housekeeping_is_stuck(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A WAL checkpoint that does not return (a disk that stalls, a lock) holds the
    housekeeping thread alone: the escalation ticker goes on ticking, and the service is
    alive. Before, the checkpoint (and the sweep, and the side-table look) ran on the ticker's
    thread before each tick, and the reminders waited behind it."""
    service = CaregiverService(make_config(mosquitto, tmp_path))
    stuck, release, ticked = threading.Event(), threading.Event(), threading.Event()

    def stuck_checkpoint() -> tuple[int, int]:
        stuck.set()
        release.wait(WAIT)
        return 0, 0

    ticking = service.alerting.tick

    def counted_tick() -> int:
        ticked.set()
        return ticking()

    service.store.checkpoint = stuck_checkpoint  # type: ignore[method-assign]
    service.alerting.tick = counted_tick  # type: ignore[method-assign]
    try:
        service.start(web=False)
        assert stuck.wait(WAIT)
        for _ in range(2):  # ticks begun after the checkpoint stuck
            ticked.clear()
            assert ticked.wait(WAIT), "the ticker waited for the housekeeping"
        assert service.health().problems == ()
    finally:
        release.set()
        service.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the bug
def test_a_housekeeping_thread_that_died_is_said(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A bug in the housekeeping (anything but a storage fault) ends its thread: the service
    says so (not alive: systemd restarts it), where before the same bug ended the ticker."""
    service = CaregiverService(make_config(mosquitto, tmp_path))
    failed = threading.Event()

    def broken_checkpoint() -> tuple[int, int]:
        failed.set()
        raise KeyError("a bug")

    service.store.checkpoint = broken_checkpoint  # type: ignore[method-assign]
    try:
        service.start(web=False)
        assert failed.wait(WAIT)
        thread = service._housekeeping
        assert thread is not None
        thread.join(WAIT)
        assert service.health().problems == ("the housekeeping thread has stopped",)
    finally:
        service.stop()


def said_stopped(cg: CaregiverService, part: str, tmp_path: Path, systemd: socket.socket) -> None:
    """``part``, a thread of ``cg``, ended: the liveness names it (and nothing else), and the
    systemd pinger says so instead of pinging (systemd restarts the service)."""
    assert cg.liveness.problems() == [f"{part} has stopped"]
    pinger = cg.systemd_pinger(
        Notifier(str(tmp_path / "notify")), watchdog_s=30, serving=lambda: True
    )
    pinger.round()
    assert heard(systemd) == [
        "READY=1",
        "STATUS=serving; every part is turning",
        f"STATUS=not alive: {part} has stopped",
    ]  # and no WATCHDOG=1


def ended(thread: threading.Thread | None) -> None:
    """Wait for ``thread`` (started) to end."""
    assert thread is not None
    thread.join(WAIT)
    assert not thread.is_alive()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the bug
def test_a_held_message_retry_thread_that_died_is_said(
    mosquitto: Mosquitto, tmp_path: Path, systemd: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fall arrives while the database refuses writes (read-only, for real): it is held for
    the retry thread. A bug there (``handle`` raising: the one thing monkeypatched) ends that
    thread, and with it every held alert's chance to be stored and paged: the service says
    so. Before, it went on pinging with the fall held for ever."""
    with (
        running_service(make_config(mosquitto, tmp_path), web=False) as cg,
        subscriber(mosquitto, ["retroguard/+/receipt"]) as device,
    ):
        ingestor = cg.ingestor
        with cg.store._lock:  # refuses every write, as a disk remounted read-only does
            cg.store._db.execute("PRAGMA query_only = 1")
        device.client.publish(*_event(1, "fall"), qos=1)
        assert ingestor.wait_for(lambda: ingestor.held == 1)

        def broken(topic: str, payload: bytes, retained: bool = False) -> bool:
            raise KeyError("a bug")

        monkeypatch.setattr(ingestor, "handle", broken)
        ended(ingestor.retry_thread)
        said_stopped(cg, "the held-message retry thread", tmp_path, systemd)
        with cg.store._lock:
            cg.store._db.execute("PRAGMA query_only = 0")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the bug
def test_a_presence_renewal_thread_that_died_is_said(
    mosquitto: Mosquitto, tmp_path: Path, systemd: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread that says the service's ``online`` again before it expires on the broker
    (caregiver/presence.py) catches what a renewal raises; a bug in its own loop (its period
    made one ``Event.wait`` refuses: monkeypatched) ends it. Dead, the ``online`` lapses on
    every treadmill within its expiry (three minutes) while the service stores and pages:
    every walker is told nobody will be paged, and nothing said why. The service says so, and
    systemd's restart says ``online`` again. Before, it went on pinging."""
    config = make_config(mosquitto, tmp_path)
    with running_service(config, web=False, presence=PresenceTiming(expiry_s=3)) as cg:
        renewal = cg.ingestor._renewal
        assert renewal is not None
        monkeypatch.setattr(renewal, "_every_s", "a bug")
        ended(cg.ingestor.renewal_thread)
        said_stopped(cg, "the presence renewal thread", tmp_path, systemd)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the bug
def test_a_receipts_thread_that_died_is_said(
    mosquitto: Mosquitto, tmp_path: Path, systemd: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync before a fall's receipt fails (the disk's EIO: monkeypatched, as a disk cannot
    be made to fail here) and a bug in what hears of it (``on_storing_changed`` raising,
    monkeypatched) ends the receipts thread: no device would hear of any event stored again,
    and resend it for ever. The service says so."""
    with running_service(make_config(mosquitto, tmp_path), web=False) as cg:
        ingestor = cg.ingestor
        durable = ingestor._durable_receipts
        assert durable is not None

        def failing() -> None:
            raise StorageFault("caregiver database: syncing its log to disk: EIO")

        def broken() -> None:
            raise KeyError("a bug")

        monkeypatch.setattr(durable, "_sync", failing)
        monkeypatch.setattr(ingestor, "on_storing_changed", broken)
        assert ingestor.handle_batch([_event(1, "fall")])
        ended(ingestor.receipts_thread)
        said_stopped(cg, "the receipts thread", tmp_path, systemd)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the bug
def test_a_notifier_supervisor_that_died_is_said(
    mosquitto: Mosquitto, tmp_path: Path, systemd: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notifier process's supervisor (in the service's process: the child has no unit of
    its own) passes wakes on and starts a new child when one exits. A bug in it (its
    ``_send`` raising: monkeypatched) ends it, and with it the paging of every alert once the
    child exits: the service says so."""
    ann = Contact("Ann", ("json://127.0.0.1:9/ann",))
    with running_service(make_config(mosquitto, tmp_path, contacts=(ann,)), web=False) as cg:
        process = cg.notifier_process
        assert process is not None
        assert process.ready.wait(WAIT)

        def broken(child: object, message: object) -> None:
            raise KeyError("a bug")

        monkeypatch.setattr(process, "_send", broken)
        process.wake()
        ended(process.thread)
        said_stopped(cg, "the notifier's thread", tmp_path, systemd)
        monkeypatch.undo()  # the stop tells the child to stop


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the bug
def test_a_live_feed_thread_that_died_is_said(
    mosquitto: Mosquitto, tmp_path: Path, systemd: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page is open; a bug in the feed (``_hand_over`` raising: monkeypatched) ends the
    thread that sends changes to the browsers: no page would show a new fall until reloaded.
    The service says so."""
    with running_service(make_config(mosquitto, tmp_path)) as cg:
        ann = Http(cg.port)
        assert ann.login() == 303
        with _Stream(cg.port, ann) as stream:
            stream.hello()

            def broken(messages: object) -> None:
                raise KeyError("a bug")

            monkeypatch.setattr(cg._feed, "_hand_over", broken)
            cg._feed.publish(DeviceChanged("treadmill-1"))
            ended(cg._feed.thread)
            said_stopped(cg, "the live feed's thread", tmp_path, systemd)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the bug
def test_postgresql_listen_and_announce_threads_that_died_are_said(
    mosquitto: Mosquitto,
    tmp_path: Path,
    systemd: socket.socket,
    postgres_cluster: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL the instances show each other's alerts through LISTEN/NOTIFY threads. A
    bug in either (a hearing's ``_deliver_batch``, an announcing's ``_send`` raising:
    monkeypatched) ends it, and the pages of one instance no longer show the falls stored by
    another: the service says so."""
    config = make_config(mosquitto, tmp_path, database=postgres_cluster.new_database())
    with running_service(config, web=False) as cg:
        listener = cg.listener
        announcer = cg.store._announcer
        assert listener is not None and announcer is not None
        assert listener.listening.wait(WAIT)

        def broken(*args: object) -> None:
            raise KeyError("a bug")

        monkeypatch.setattr(listener, "_deliver_batch", broken)
        cg.store.announce(encode(DeviceChanged("treadmill-1"), "instance-b"))
        ended(listener.thread)
        assert cg.liveness.problems() == ["the thread hearing other instances has stopped"]
        monkeypatch.setattr(announcer, "_send", broken)
        cg.store.announce(encode(DeviceChanged("treadmill-1"), "instance-b"))
        ended(announcer.thread)
        assert cg.liveness.problems() == [
            "the thread hearing other instances has stopped",
            "the thread announcing to other instances has stopped",
        ]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the bug
def test_an_in_process_notifier_thread_that_died_is_said(
    mosquitto: Mosquitto, tmp_path: Path, systemd: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender other than Apprise's runs in the service's own thread; a bug before its loop
    (``warm_up`` raising: monkeypatched) ends it, and nobody would be paged: said."""
    monkeypatch.setattr("caregiver.notify.warm_up", lambda urls: {}["a bug"])
    with running_service(make_config(mosquitto, tmp_path), web=False, send=lambda *a: False) as cg:
        assert cg.notifier_process is None
        ended(cg.notifier.thread)
        said_stopped(cg, "the notifier's thread", tmp_path, systemd)
