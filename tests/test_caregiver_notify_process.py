"""Phone notifications from the service's own notifier process: none is lost when it dies.

The service sends through Apprise from a child process (:mod:`caregiver.notify_process`);
the notifications are rows in the database. These tests kill the child with SIGKILL at
the worst moments — while Apprise is delivering, and while nothing is running to take a
new page — and check that a fall's notification still reaches the receiver, sent by the
child the service started in its place.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from caregiver.config import Contact
from caregiver.notify_process import STUCK_S, NotifierProcess
from caregiver.service import CaregiverService
from tests.caregiver_support import WAIT, SimDevice, make_config, running_service
from tests.storage_support import wait_for
from tools.broker import Mosquitto


class HoldingReceiver:
    """Apprise's json:// target that keeps the first request open until told to answer: the
    notifier is then between sending and marking the row sent."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.holding = threading.Event()
        self.release = threading.Event()
        self.cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                with receiver.cond:
                    receiver.messages.append(body)
                    receiver.cond.notify_all()
                    first = len(receiver.messages) == 1
                if first:
                    receiver.holding.set()
                    receiver.release.wait(WAIT)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/ann"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def wait(self, count: int) -> list[dict[str, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.messages) >= count, WAIT), self.messages
            return list(self.messages)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def _paging_service(
    mosquitto: Mosquitto, tmp_path: Path, *, answer_at_once: bool = False
) -> Iterator[tuple[CaregiverService, NotifierProcess, HoldingReceiver]]:
    """A service paging Ann at a :class:`HoldingReceiver`, its notifier process ready."""
    receiver = HoldingReceiver()
    if answer_at_once:
        receiver.release.set()
    config = make_config(mosquitto, tmp_path, contacts=(Contact("Ann", (receiver.url,)),))
    try:
        with running_service(config, web=False, background=True) as service:
            notifier = service.notifier_process
            assert notifier is not None and notifier.ready.wait(WAIT)
            yield service, notifier, receiver
    finally:
        receiver.close()


def test_a_notifier_killed_while_sending_is_replaced_and_the_page_sent_again(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with _paging_service(mosquitto, tmp_path) as (service, notifier, receiver):
        first = notifier.pid
        assert first is not None and first != os.getpid()
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert receiver.holding.wait(WAIT)  # Apprise is delivering; nothing marked yet
        os.kill(first, signal.SIGKILL)
        receiver.release.set()
        again = receiver.wait(2)  # the next notifier resends it from the database
        assert all(f"/events/{fall['id']}" in m["message"] for m in again)
        assert notifier.ready.wait(WAIT)
        assert notifier.pid not in (None, first) and notifier.restarts == 1
        assert service.store.notifications_due(time.time() + 1e6) == []  # marked sent
        assert service.status()["notified"] >= 1
        device.close()


def test_a_notifier_that_stops_finishing_rounds_is_killed_and_the_page_sent_again(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A child alive but stuck (here: a delivery that never answers, past the service's
    patience but within Apprise's own timeout) is noticed by its silence, killed and replaced;
    the page goes out again from the database.

    The test's patience of 1 s is for the stuck child only: a healthy one reports a round
    every ``poll_s`` (1 s) and its first after starting Python, so on a loaded machine 1 s
    judged its successors stuck too (each killed after a longer pause, until the resend came
    later than the receiver waits), and one killed between its resend and its report left
    ``restarts`` one behind ``killed_stuck`` when the test read them."""
    with _paging_service(mosquitto, tmp_path) as (_service, notifier, receiver):
        first = notifier.pid
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert receiver.holding.wait(WAIT)  # the first delivery hangs
        assert notifier.pid == first
        notifier.stuck_s = 1.0  # Apprise's json:// read timeout is 4 s
        assert wait_for(lambda: notifier.killed_stuck >= 1)  # a bound, not a timing
        notifier.stuck_s = STUCK_S  # its successors: the service's own patience
        again = receiver.wait(2)  # sent again by the child that replaced the stuck one
        assert all(f"/events/{fall['id']}" in m["message"] for m in again)
        assert notifier.killed_stuck >= 1 and notifier.restarts == notifier.killed_stuck
        assert first is not None and not _alive(first)
        device.close()


def test_a_page_queued_while_no_notifier_runs_is_sent_by_the_next(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    paging = _paging_service(mosquitto, tmp_path, answer_at_once=True)
    with paging as (_service, notifier, receiver):
        first = notifier.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()  # queued, and its wake-up sent, while the child is dead
        (message,) = receiver.wait(1)
        assert f"/events/{fall['id']}" in message["message"]
        assert notifier.pid != first
        device.close()
    assert not _alive(first)


def test_the_notifier_ends_with_the_service(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with _paging_service(mosquitto, tmp_path) as (_service, notifier, _receiver):
        pid = notifier.pid
        assert pid is not None and _alive(pid)
    assert notifier.pid is None and not _alive(pid)


def test_the_notifier_process_of_a_json_contact_never_imports_apprise(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A json:// contact: the child will send it with the standard library
    (caregiver/notify_http.py) and has not imported Apprise when it is ready (after sending
    stays so too: tests/test_caregiver_notify_http.py, in a fresh interpreter)."""
    with _paging_service(mosquitto, tmp_path) as (_service, notifier, receiver):
        assert notifier.ready.wait(WAIT)
        assert notifier.plugins == () and notifier.apprise is False
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        device.fall()
        (message,) = receiver.wait(1)
        assert message["type"] == "failure"
        device.close()


def test_no_contact_no_notifier_process(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Without contacts nothing is ever queued (alerts are shown on the dashboard only): the
    service starts no notifier process, which would hold some 20 MB for nothing."""
    config = make_config(mosquitto, tmp_path)
    with running_service(config, web=False, background=True) as service:
        assert service.notifier_process is None
        assert service.status()["notified"] == 0


def test_the_service_process_loads_neither_apprise_nor_psycopg() -> None:
    """Apprise's memory is the notifier's, and psycopg's 20 MB are for a postgresql://
    database only: importing the service (and opening a SQLite store) loads neither."""
    probe = (
        "import sys, tempfile, caregiver.service, caregiver.storage\n"
        "caregiver.storage.Store(tempfile.mkdtemp() + '/c.db').close()\n"
        "print(sorted(m for m in ('apprise', 'psycopg') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_pages_queued_before_the_contacts_were_removed_are_not_left_pending(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A fall paged Ann; the service restarts with no contacts (and so no notifier process to
    look at the queue): her page is marked failed at start, never left pending for whoever
    later takes her place in the list."""
    ann = Contact("Ann", ("json://127.0.0.1:9/ann",))
    config = make_config(mosquitto, tmp_path, contacts=(ann,))
    with running_service(config, web=False, background=False) as service:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        device.fall()
        assert service.ingestor.wait_for(
            lambda: service.store.notifications_due(time.time() + 1e6) != []
        )
        device.close()
    with running_service(dataclasses.replace(config, contacts=()), web=False) as service:
        assert service.notifier_process is None
        assert service.store.notifications_due(time.time() + 1e6) == []


def test_the_notifier_runs_behind_the_service_for_the_cpu(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Its work comes after ingest's (a page is due once its alert is stored): during a burst
    it yields the CPU to the service, which then pages the burst's falls sooner too."""
    from caregiver.notify_process import NICENESS

    with _paging_service(mosquitto, tmp_path) as (_service, notifier, _receiver):
        assert notifier.pid is not None
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, notifier.pid) == min(19, ours + NICENESS)
