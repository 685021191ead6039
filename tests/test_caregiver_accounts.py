"""Caregiver accounts: listed, removed, limited to some devices; Argon2 lazy and off the loop.

The command line is run as an installer runs it (``launcher.cli.main``); the
limits are checked over HTTP against the real service and a real Mosquitto,
the live feed by reading ``/stream`` as a browser's ``EventSource`` does.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from caregiver import auth
from caregiver.auth import Accounts
from caregiver.service import CaregiverService
from caregiver.storage import Store
from launcher.cli import main
from tests.caregiver_support import (
    PASSWORD,
    WAIT,
    Http,
    SimDevice,
    make_config,
    running_service,
)
from tools.broker import Mosquitto

# ------------------------------------------------------------------ the command line


def _cli(tmp_path: Path, *argv: str, database: str | None = None) -> int:
    """``retroguard caregiver ...`` on a config naming ``database`` (the first call's; a
    SQLite file in ``tmp_path`` when None)."""
    config = tmp_path / "caregiver.toml"
    if not config.exists():
        config.write_text(f'[server]\ndatabase = "{database or tmp_path / "caregiver.db"}"\n')
    return main(["caregiver", *argv, "-c", str(config)])


def test_accounts_are_listed_limited_and_removed_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caregiver_db: str
) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    if caregiver_db.startswith("postgresql"):  # a server's database, already there, empty
        assert _cli(tmp_path, "users", database=caregiver_db) == 0
        assert "no caregiver accounts yet" in capsys.readouterr().out
    else:  # a listing makes no SQLite file: the service or add-user does
        assert _cli(tmp_path, "users", database=caregiver_db) == 2
        assert "no such database" in capsys.readouterr().err
        assert not Path(caregiver_db).exists()
    assert _cli(tmp_path, "add-user", "ann", "--password-file", str(secret)) == 0
    argv = ["add-user", "bob", "--password-file", str(secret), "--device", "treadmill-2"]
    assert _cli(tmp_path, *argv, "--device", "clinic-3") == 0
    capsys.readouterr()
    assert _cli(tmp_path, "users") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("ann ") and lines[0].endswith("every device")
    assert lines[1].startswith("bob ") and lines[1].endswith("only clinic-3, treadmill-2")
    assert "0 logins open" in lines[0]

    # a new password keeps the limit; limit-user changes it
    assert _cli(tmp_path, "add-user", "bob", "--password-file", str(secret)) == 0
    assert _cli(tmp_path, "limit-user", "ann", "treadmill-1") == 0
    assert _cli(tmp_path, "limit-user", "bob", "--all") == 0
    capsys.readouterr()
    assert _cli(tmp_path, "users") == 0
    ann, bob = capsys.readouterr().out.splitlines()
    assert ann.endswith("only treadmill-1") and bob.endswith("every device")
    assert _cli(tmp_path, "limit-user", "ann") == 2  # neither devices nor --all
    assert "name the devices, or give --all" in capsys.readouterr().err

    assert _cli(tmp_path, "remove-user", "bob") == 0
    assert "user bob removed" in capsys.readouterr().out
    assert _cli(tmp_path, "remove-user", "bob") == 2
    assert _cli(tmp_path, "limit-user", "bob", "--all") == 2
    assert "no account 'bob'" in capsys.readouterr().err
    store = Store(caregiver_db)
    try:
        assert [a.username for a in Accounts(store).users()] == ["ann"]
        assert not Accounts(store).verify("bob", PASSWORD)
    finally:
        store.close()


def test_without_a_subcommand_it_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[int] = []
    monkeypatch.setattr(
        CaregiverService, "serve_forever", lambda self: served.append(self.config.server.port)
    )
    monkeypatch.setattr(CaregiverService, "stop", lambda self: None)
    assert _cli(tmp_path, "--port", "8123") == 0
    assert served == [8123]


# ------------------------------------------------------------------ over the web


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str) -> Iterator[CaregiverService]:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False) as s:
        yield s


def test_removing_an_account_ends_its_logins_at_once(service: CaregiverService) -> None:
    client = Http(service.port)
    assert client.login() == 303
    assert client.request("GET", "/")[0] == 200
    (ann,) = service.accounts.users()
    assert ann.sessions == 1
    assert service.accounts.remove_user("ann")
    status, headers, _ = client.request("GET", "/")
    assert status == 303 and headers["location"].startswith("/login")
    assert client.login() == 401


def test_a_missing_event_page_links_back_to_the_dashboard(service: CaregiverService) -> None:
    """An event id that does not exist (an old notification's link): a 404 page saying so,
    with a link back to the dashboard, not a bare line of text."""
    client = Http(service.port)
    assert client.login() == 303
    status, _, page = client.request("GET", "/events/no-such-event-id")
    assert status == 404
    assert "<h1>No such alert</h1>" in page  # the dashboard's word for them
    assert '<a class="btn" href="/">&larr; Back to the dashboard</a>' in page


class Stream:
    """``/stream`` read as an EventSource does: each ``data:`` message, in order (but its
    first, the hello). Made once the hello has come: the service sends it after the stream
    is listening, so every change made after this reaches it."""

    def __init__(self, port: int, cookies: dict[str, str]) -> None:
        self.messages: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.listening = threading.Event()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self.conn.request("GET", "/stream", headers={"cookie": cookie})
        response = self.conn.getresponse()
        assert response.status == 200
        self.thread = threading.Thread(target=self._read, args=(response,), daemon=True)
        self.thread.start()
        assert self.listening.wait(WAIT), "no hello from /stream"

    def _read(self, response: http.client.HTTPResponse) -> None:
        # read1: what has arrived (iterating the response waits for a full buffer)
        pending = b""
        try:
            while chunk := response.read1(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.startswith(b"data: "):
                        message = json.loads(line[6:])
                        if message["kind"] == "hello":  # where the changes stood: none
                            self.listening.set()
                            continue
                        with self.cond:
                            self.messages.append(message)
                            self.cond.notify_all()
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # closed at the end of the test (mid-chunk, or http.client reads from None)

    def wait_for(self, kind: str, device_id: str) -> list[dict[str, Any]]:
        """Every message so far, once one of ``kind`` about ``device_id`` has arrived."""
        with self.cond:
            assert self.cond.wait_for(
                lambda: any(
                    m["kind"] == kind and m["device_id"] == device_id for m in self.messages
                ),
                WAIT,
            ), self.messages
            return list(self.messages)

    def close(self) -> None:
        # Shut the socket first: the reader thread blocks in read1 holding the response's
        # buffer, which close() would otherwise wait on until the read timed out (WAIT).
        if self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()
        self.thread.join(WAIT)


def test_a_caregiver_limited_to_some_devices_sees_only_those(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    service.accounts.add_user("bob", "another good password")
    assert service.accounts.limit("bob", ["treadmill-2"])
    mine, other = SimDevice(mosquitto, "treadmill-2"), SimDevice(mosquitto, "treadmill-1")
    for device in (mine, other):
        device.online()
    hidden, shown = other.fall(), mine.fall()
    store = service.store
    assert service.ingestor.wait_for(
        lambda: store.event(hidden["id"]) is not None and store.event(shown["id"]) is not None
    )

    bob = Http(service.port)
    assert bob.login("bob", "another good password") == 303
    status, _, page = bob.request("GET", "/")
    assert status == 200
    assert 'id="card-treadmill-2"' in page and shown["id"] in page
    assert "treadmill-1" not in page and "Dad" not in page and hidden["id"] not in page
    status, _, body = bob.request("GET", "/api/fleet", headers={"accept": "application/json"})
    assert [d["device_id"] for d in json.loads(body)["devices"]] == ["treadmill-2"]
    for path in (
        "/devices/treadmill-2",
        f"/events/{shown['id']}",
        f"/api/events/{shown['id']}/plot",
        "/devices/treadmill-2/progress",
        "/api/devices/treadmill-2/progress",
    ):
        assert bob.request("GET", path, headers={"accept": "*/*"})[0] == 200, path
    for path in (  # another device's pages do not exist for bob
        "/devices/treadmill-1",
        f"/events/{hidden['id']}",
        f"/api/events/{hidden['id']}/plot",
        "/devices/treadmill-1/progress",
        "/api/devices/treadmill-1/progress",
    ):
        status, _, body = bob.request("GET", path, headers={"accept": "*/*"})
        assert status == 404 and "treadmill-1" not in body and "impact" not in body, path
    _, _, page = bob.request("GET", "/devices/treadmill-2")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    for path in (f"/events/{hidden['id']}/ack", "/devices/treadmill-1/ack"):
        assert bob.request("POST", path, {"csrf": csrf[1]})[0] == 404, path
    assert store.event(hidden["id"]).acked_by is None  # type: ignore[union-attr]
    assert other.commands == []

    # the live feed: nothing about treadmill-1 reaches bob; ann (every device) gets both
    ann = Http(service.port)
    assert ann.login() == 303
    feeds = {"bob": Stream(service.port, bob.cookies), "ann": Stream(service.port, ann.cookies)}
    try:
        late = other.stumble()
        assert service.ingestor.wait_for(lambda: store.event(late["id"]) is not None)
        ours = mine.stumble()  # stored (and pushed) after the other device's
        seen = feeds["bob"].wait_for("event", "treadmill-2")
        assert {m["device_id"] for m in seen} == {"treadmill-2"}
        assert ours["id"] in {m["event"]["id"] for m in seen if m["kind"] == "event"}
        everything = feeds["ann"].wait_for("event", "treadmill-2")
        assert late["id"] in {m["event"]["id"] for m in everything if m["kind"] == "event"}
    finally:
        for feed in feeds.values():
            feed.close()
    mine.close()
    other.close()


# ------------------------------------------------------------------ Argon2


def test_importing_the_service_hashes_nothing() -> None:
    """A 64 MiB Argon2 hash at import made the service peak at 104 MB before anyone logged in."""
    probe = (
        "import caregiver.service, caregiver.auth as a\n"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(a._dummy_hash.cache_info().currsize, int(peak.split()[1]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    made, peak_kib = map(int, out.stdout.split())
    assert made == 0
    assert peak_kib < 64 * 1024  # the old import-time hash alone took 64 MiB


def test_every_hash_and_check_runs_off_the_event_loop(
    service: CaregiverService, monkeypatch: pytest.MonkeyPatch
) -> None:
    callers: list[str] = []
    real = auth._hasher

    class Noting:
        """The service's hasher, noting the thread of every hash and check."""

        def hash(self, password: str) -> str:
            callers.append(threading.current_thread().name)
            return real.hash(password)

        def verify(self, stored: str, password: str) -> bool:
            callers.append(threading.current_thread().name)
            return real.verify(stored, password)

        def check_needs_rehash(self, stored: str) -> bool:
            return real.check_needs_rehash(stored)

    monkeypatch.setattr(auth, "_hasher", Noting())
    auth._dummy_hash.cache_clear()  # made at the first login of an unknown name: this one
    assert Http(service.port).login("nobody", PASSWORD) == 401  # the dummy hash, then its check
    assert Http(service.port).login("ann", "wrong password!") == 401
    assert Http(service.port).login() == 303
    assert len(callers) == 4  # the dummy hash and three checks
    assert "caregiver-web" not in callers  # uvicorn's thread runs the event loop


def test_a_password_hashed_by_an_older_release_is_rehashed_at_login(caregiver_db: str) -> None:
    store = Store(caregiver_db)
    try:
        old = PasswordHasher()  # argon2-cffi's defaults, as earlier releases hashed: 64 MiB
        store.add_user("ann", old.hash(PASSWORD), 1.0)
        accounts = Accounts(store)
        assert not accounts.verify("ann", "wrong password!")
        assert "m=65536" in (store.password_hash("ann") or "")  # a wrong password changes nothing
        assert accounts.verify("ann", PASSWORD)
        assert "$argon2id$v=19$m=7168,t=5,p=1$" in (store.password_hash("ann") or "")
        assert accounts.verify("ann", PASSWORD)
    finally:
        store.close()


def test_a_test_alarm_reaches_a_device_that_never_said_it_is_online(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    """A monitor that reported its state but no availability ("unknown") is connected: its
    card does not say offline, and its test alarm is sent, not refused as offline."""
    device = SimDevice(mosquitto, "treadmill-1")
    device.set_state("STANDBY")
    assert service.ingestor.wait_for(lambda: service.store.device("treadmill-1") is not None)
    ann = Http(service.port)
    assert ann.login("ann", PASSWORD) == 303
    _, _, page = ann.request("GET", "/devices/treadmill-1")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    status, headers, _ = ann.request("POST", "/devices/treadmill-1/test-alarm", {"csrf": csrf[1]})
    assert status == 303
    assert headers["location"] == "/devices/treadmill-1?test_alarm=sent-no-contacts"
    assert device.wait_command("test_alarm")["by"] == "ann"
    device.close()


def test_a_test_alarm_needs_the_csrf_token_and_the_device(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    mine, other = SimDevice(mosquitto, "treadmill-2"), SimDevice(mosquitto, "treadmill-1")
    for device in (mine, other):
        device.online()
    assert service.ingestor.wait_for(lambda: len(service.store.devices()) == 2)
    service.accounts.add_user("bob", "another good password")
    assert service.accounts.limit("bob", ["treadmill-2"])
    bob = Http(service.port)
    assert bob.login("bob", "another good password") == 303
    _, _, page = bob.request("GET", "/devices/treadmill-2")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf and 'action="/devices/treadmill-2/test-alarm"' in page
    assert bob.request("POST", "/devices/treadmill-2/test-alarm", {})[0] == 403  # no token
    assert bob.request("POST", "/devices/treadmill-1/test-alarm", {"csrf": csrf[1]})[0] == 404
    assert bob.request("POST", "/devices/nowhere/test-alarm", {"csrf": csrf[1]})[0] == 404
    status, headers, _ = bob.request("POST", "/devices/treadmill-2/test-alarm", {"csrf": csrf[1]})
    # this service has no contacts: the page says no phone will ring
    assert status == 303
    assert headers["location"] == "/devices/treadmill-2?test_alarm=sent-no-contacts"
    assert mine.wait_command("test_alarm")["by"] == "bob"
    assert [name for name, _ in mine.commands] == ["test_alarm"]  # the refused ones sent nothing
    _, _, page = bob.request("GET", headers["location"])
    assert "Test alarm sent" in page and "no phone will be notified" in page
    assert other.commands == []

    # a treadmill that is offline is sent nothing (its command would chirp whenever it
    # came back), and the caregiver is told so, by the form and by the page's script
    mine.offline()
    assert service.ingestor.wait_for(
        lambda: (service.store.device("treadmill-2") or {}).get("availability") == "offline"
    )
    status, headers, _ = bob.request("POST", "/devices/treadmill-2/test-alarm", {"csrf": csrf[1]})
    assert status == 303 and headers["location"] == "/devices/treadmill-2?test_alarm=offline"
    _, _, page = bob.request("GET", headers["location"])
    assert "is offline" in page and "nothing was sent" in page
    status, _, body = bob.request(
        "POST",
        "/devices/treadmill-2/test-alarm",
        {"csrf": csrf[1]},
        headers={"accept": "application/json"},
    )
    assert status == 409 and json.loads(body)["ok"] is False
    # back online, one more: it arrives, and nothing came before it (one publisher's messages
    # arrive in order), so the two refused requests published nothing
    mine.online()
    assert service.ingestor.wait_for(
        lambda: (service.store.device("treadmill-2") or {}).get("availability") == "online"
    )
    assert bob.request("POST", "/devices/treadmill-2/test-alarm", {"csrf": csrf[1]})[0] == 303
    with mine.got_command:
        assert mine.got_command.wait_for(lambda: len(mine.commands) >= 2, WAIT)
    assert [name for name, _ in mine.commands] == ["test_alarm", "test_alarm"]
    mine.close()
    other.close()
