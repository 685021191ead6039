"""ntfy and JSON sent with the standard library: the request Apprise sends, the same failures.

Every comparison sends the same message twice to a real HTTP server on 127.0.0.1, once
through Apprise (:func:`caregiver.notify.apprise_send`) and once through
:mod:`caregiver.notify_http`, and compares what arrived: method, path and query, body
byte for byte, and every header but the transport's own (``Accept-Encoding``,
``Connection``: ``requests`` keeps connections open and accepts gzip).
"""

from __future__ import annotations

import http.server
import json
import queue
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from caregiver import notify_http
from caregiver.config import (
    CaregiverConfig,
    CaregiverMqttConfig,
    Contact,
    EscalationConfig,
    ServerConfig,
)
from caregiver.notify import Notifier, Sender, apprise_send, send_notification
from caregiver.outbox import SqliteOutbox, open_outbox, url_key
from caregiver.storage import Store, Urgency
from tests.caregiver_support import BY_HAND, WAIT

TRANSPORT = {"accept-encoding", "connection"}


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """Records each request; answers with the next of ``answers`` (then 200)."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    arrived: queue.Queue[Seen] = field(default_factory=queue.Queue)
    """Each request as it arrives (a test waits on it rather than polling ``seen``)."""

    def take(self) -> list[Seen]:
        taken, self.seen[:] = list(self.seen), []
        return taken


@pytest.fixture
def server() -> Iterator[Server]:
    record = Server()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_one(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items() if k.lower() not in TRANSPORT}
            record.seen.append(Seen(self.command, self.path, headers, body))
            record.arrived.put(record.seen[-1])
            status, extra = record.answers.pop(0) if record.answers else (200, {})
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = do_PATCH = do_GET = handle_one

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.port = httpd.server_address[1]
    # its loop looks for shutdown() every poll_interval: at the default 0.5 s, each test's
    # teardown waited out up to half a second of it
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield record
    httpd.shutdown()
    httpd.server_close()


URLS = [
    "json://127.0.0.1:{port}/ann",
    "jsons://127.0.0.1:{port}",  # (the https variant: compared by its request below)
    "json://127.0.0.1:{port}/hooks/ann.phone",
    "json://me:p%40ss@localhost:{port}/ann?method=PUT&+X-Token=abc%2520d&-room=k&:extra=1",
    "json://127.0.0.1:{port}/ann?:type=&:title=heading&METHOD=patch",
    "ntfy://127.0.0.1:{port}/ann-phone",
    "ntfy://127.0.0.1:{port}/ann-phone?priority=low&tags=retroguard,b%20a&click=https://x/e?a=1",
    "ntfy://me:p%40ss@127.0.0.1:{port}/ann/bob_2?image=no&delay=5m&email=a@b.example",
    "ntfy://tk_AbC123@localhost:{port}/ann?xtags=fall",
    "ntfy://me:pw@127.0.0.1:{port}/ann?token=tk_other&click=https://d.example/événement",
]
"""Contact URLs as people write them; each gets the message's priority (prioritised)."""


@pytest.mark.parametrize("template", [u for u in URLS if not u.startswith("jsons")])
@pytest.mark.parametrize("urgency", list(Urgency))
def test_the_standard_library_sends_the_request_apprise_sends(
    server: Server, template: str, urgency: Urgency, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apprise.plugins.base import NotifyBase

    # Apprise waits 5.5 s before a URL's next request (ntfy's second topic, 22 s of the
    # file): its pace, not what it sends, which is what is compared here.
    monkeypatch.setattr(NotifyBase, "request_rate_per_sec", 0)
    url = template.format(port=server.port)
    title, body = "  RetroGuard: FALL - Dad's treadmill ", 'FALL on Dad\'s "treadmill" ✓\n\n'
    assert notify_http.handles(url)
    assert apprise_send(url, title, body, urgency)
    by_apprise = server.take()
    assert notify_http.send(url, title, body, urgency)
    ours = server.take()
    assert ours == by_apprise
    assert by_apprise and all(s.headers.get("user-agent") == "Apprise" for s in ours)


def test_ntfy_headers_carry_priority_type_tags_and_click(server: Server) -> None:
    """What the comparison covers, spelt out once: a fall at max priority with the failure
    icon, a follow-up at ntfy's default (no header), tags sorted, the click link."""
    url = f"ntfy://127.0.0.1:{server.port}/ann?tags=b,a&click=https://dash.example/e/1"
    notify_http.send(url, "FALL", "body", Urgency.CRITICAL)
    notify_http.send(url, "OK", "body", Urgency.NORMAL)
    fall, normal = server.take()
    assert (fall.method, fall.target) == ("POST", "/")
    assert fall.body == b'{"topic": "ann", "title": "FALL", "message": "body"}'
    assert fall.headers["x-priority"] == "max" and "x-priority" not in normal.headers
    assert fall.headers["x-icon"].endswith("/apprise-failure-256x256.png")
    assert normal.headers["x-icon"].endswith("/apprise-info-256x256.png")
    assert fall.headers["x-tags"] == "a,b"
    assert fall.headers["x-click"] == "https://dash.example/e/1"


def test_https_and_ntfy_sh_go_where_apprise_sends_them() -> None:
    """Not sent (no network here): the server each URL's requests are for, and the ntfy
    topics in their order, against the plugin Apprise makes from the same URL."""
    import apprise

    cases = {
        "ntfy://ann-7f3c": ("ntfy.sh", 443, True),  # a topic alone: ntfy.sh, always https
        "ntfys://ntfy.sh/ann-7f3c?priority=max": ("ntfy.sh", 443, True),
        "ntfy://ntfy.sh/ann": ("ntfy.sh", 80, False),  # a host and a topic: as written
        "ntfys://ann-7f3c/bob/carol": ("ann-7f3c", 443, True),
        "ntfys://ntfy.home:8443/ann": ("ntfy.home", 8443, True),
        "jsons://hooks.example/ann": ("hooks.example", 443, True),
        "json://hooks.example:8123/api/webhook/x": ("hooks.example", 8123, False),
    }
    for url, expected in cases.items():
        posts = notify_http.requests_for(url, "t", "b", "info")
        assert {(p.host, p.port, p.secure) for p in posts} == {expected}, url
        plugin = apprise.Apprise.instantiate(url)
        assert plugin is not None
        if url.startswith("json"):
            assert (plugin.host, plugin.port or 443, plugin.secure) == expected
            continue
        cloud = plugin.mode == "cloud"
        host = "ntfy.sh" if cloud else plugin.host
        secure = cloud or plugin.secure
        assert (host, 443 if cloud else plugin.port or (443 if secure else 80), secure) == (
            expected
        )
        topics = [json.loads(p.body)["topic"] for p in posts]
        assert topics == list(reversed(plugin.topics)), url


@pytest.mark.parametrize(
    "url",
    [
        "tgram://123456789:abcdefg_hijklmnop/-1001",
        "json://127.0.0.1:{port}/ann?verify=no",
        "json://127.0.0.1:{port}/ann?format=markdown",
        "json://me@127.0.0.1:{port}/ann",
        "json://127.0.0.1:{port}/ann?method=GET",
        "ntfy://127.0.0.1:{port}/ann?mode=private",
        "ntfy://127.0.0.1:{port}/ann?actions=view,Open,https://x",
        "ntfy://bob@127.0.0.1:{port}/ann",
        "ntfy://my_host:{port}/ann",
        "ntfy://127.0.0.1:{port}/a.b",
        "ntfy://127.0.0.1:{port}/ann?tags=a&tags=b",
        "https://ntfy.sh/ann",
    ],
)
def test_what_it_does_not_know_is_left_to_apprise(server: Server, url: str) -> None:
    assert not notify_http.handles(url.format(port=server.port))


def test_a_url_left_to_apprise_is_still_delivered(server: Server) -> None:
    url = f"json://127.0.0.1:{server.port}/ann?verify=no"
    assert send_notification(url, "t", "b", Urgency.CRITICAL)
    (seen,) = server.take()
    assert seen.target == "/ann" and b'"type": "failure"' in seen.body


def test_a_redirect_is_followed_by_apprise(server: Server) -> None:
    """``requests`` follows redirects and the socket path does not: the message goes
    through Apprise, which posts it again where it was sent (307 keeps POST and body)."""
    url = f"json://127.0.0.1:{server.port}/old"
    server.answers = [(307, {"Location": f"http://127.0.0.1:{server.port}/new"})] * 2
    assert send_notification(url, "t", "b", Urgency.CRITICAL)
    first, by_apprise, follow = server.take()
    assert (first.target, by_apprise.target, follow.target) == ("/old", "/old", "/new")
    assert first.body == follow.body


def test_a_long_ntfy_message_goes_through_apprise_as_its_attachment(server: Server) -> None:
    url = f"ntfy://127.0.0.1:{server.port}/ann"
    with pytest.raises(notify_http.ForApprise):
        notify_http.requests_for(url, "t", "x" * 9000, "info")
    assert send_notification(url, "t", "x" * 9000, Urgency.CRITICAL)
    (seen,) = server.take()
    assert seen.target.startswith("/ann?filename=") and seen.body.endswith(b"x" * 9000)


# ------------------------------------------------------------------ failures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that takes connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


def test_failures_say_why_without_the_url(
    server: Server, silent: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify_http, "TIMEOUT_S", 0.3)
    refused = f"ntfy://127.0.0.1:{_free_port()}/secret-topic"
    with pytest.raises(notify_http.NotDelivered, match="refused the connection") as err:
        notify_http.send(refused, "t", "b")
    server.answers = [(503, {})]
    with pytest.raises(notify_http.NotDelivered, match="answered 503 Service Unavailable"):
        notify_http.send(f"json://127.0.0.1:{server.port}/x", "t", "b")
    with pytest.raises(notify_http.NotDelivered, match="did not answer within"):
        notify_http.send(f"json://127.0.0.1:{silent}/x", "t", "b")
    assert "secret-topic" not in str(err.value)


def _config(url: str, db: Path) -> CaregiverConfig:
    return CaregiverConfig(
        server=ServerConfig(database=str(db), public_url="http://dash.example"),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
        escalation=EscalationConfig(retry_s=10, max_attempts=3),
        contacts=(Contact(name="Ann", urls=(url,)),),
    )


def _pending(db: Path) -> list[tuple[str, int, float, str | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT status, attempts, next_at, last_error FROM notifications")
        return [tuple(r) for r in rows]


@pytest.mark.parametrize("send", [apprise_send, send_notification], ids=["apprise", "stdlib"])
@pytest.mark.parametrize("failure", ["refused", "5xx", "timeout"])
def test_a_failed_message_is_kept_retried_and_given_up_as_before(
    server: Server,
    silent: int,
    tmp_path: Path,
    send: Sender,
    failure: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both senders: a failure leaves the row pending with its error, due again after
    ``retry_s`` (doubling); a later success marks it sent; three failures give it up. The
    rows are queued by the store and marked through the notifier process's own outbox
    connection (caregiver/outbox.py), as in the service. Apprise's own timeouts are cut to
    the same 0.3 s as ours (equal in the service: ``TIMEOUT_S``): at its 4 s, the silent
    server's six attempts took 24 s."""
    import apprise.url

    monkeypatch.setattr(notify_http, "TIMEOUT_S", 0.3)
    monkeypatch.setattr(apprise.url.URLBase, "socket_connect_timeout", 0.3)
    monkeypatch.setattr(apprise.url.URLBase, "socket_read_timeout", 0.3)
    port = {"refused": _free_port(), "5xx": server.port, "timeout": silent}[failure]
    db = tmp_path / "c.db"
    clock = [1000.0]
    store = Store(str(db))
    outbox = open_outbox(str(db))
    assert isinstance(outbox, SqliteOutbox)
    notifier = Notifier(outbox, _config(f"json://127.0.0.1:{port}/ann", db), lambda: clock[0], send)
    with store.transaction() as tx:
        for _ in range(2):
            alert = tx.page_alert("fall", "treadmill-1", None, 1.0, 301.0, frame=BY_HAND)
            tx.queue_notification(
                alert,
                "Ann",
                0,
                0,
                "FALL",
                "body",
                1000.0,
                urgency=Urgency.CRITICAL,
                contact_key="Ann",
                url_key=url_key(f"json://127.0.0.1:{port}/ann"),
            )
    server.answers = [(500, {})] * 2
    assert notifier.deliver_due() == 0
    rows = _pending(db)
    assert [r[:3] for r in rows] == [("pending", 1, 1010.0)] * 2 and all(r[3] for r in rows)
    if failure == "5xx":  # the service is back: the first row goes, the second fails again
        server.answers = [(200, {}), (500, {})]
    clock[0] = 1010.0
    assert notifier.deliver_due() == (1 if failure == "5xx" else 0)
    server.answers = [(500, {})]
    clock[0] = 1030.0
    notifier.deliver_due()
    states = [r[:2] for r in _pending(db)]
    if failure == "5xx":
        assert states == [("sent", 2), ("failed", 3)]
    else:
        assert states == [("failed", 3)] * 2
    assert store.notifications_due(clock[0] + 1e6) == []  # the store reads what it marked
    outbox.close()
    store.close()


# ------------------------------------------------------------------ name lookups


class Resolver:
    """A resolver of its own in place of the system's (no DNS): every name is 127.0.0.1,
    but a lookup of ``slow.test`` blocks until the test releases it (at most ``WAIT``, then
    fails as a resolver that gave up would)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[notify_http.Address]:
        self.asked.append(host)
        if host == "slow.test" and not self.release.wait(WAIT):
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [*socket.getaddrinfo("127.0.0.1", port, 0, socket.SOCK_STREAM)]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Resolver]:
    fake = Resolver()
    monkeypatch.setattr(notify_http, "resolve", fake)
    yield fake
    fake.release.set()


def _contacts(db: Path, *urls: str) -> CaregiverConfig:
    return CaregiverConfig(
        server=ServerConfig(database=str(db), public_url="http://dash.example"),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
        escalation=EscalationConfig(retry_s=10, max_attempts=3),
        contacts=tuple(Contact(name=f"c{i}", urls=(u,)) for i, u in enumerate(urls)),
    )


def test_a_name_lookup_that_hangs_is_a_failed_attempt_within_the_timeout(
    tmp_path: Path, server: Server, resolver: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The system's lookup has no timeout: before, a message to a server whose name did not
    resolve waited for the resolver to give up (here ``WAIT``; 10-40 s with real DNS).
    Now it fails after ``TIMEOUT_S`` saying so and is retried on the schedule; two messages
    to the server wait for one lookup, not a thread each. Once the name resolves the retry
    is delivered."""
    monkeypatch.setattr(notify_http, "TIMEOUT_S", 0.2)
    db = tmp_path / "c.db"
    clock = [1000.0]
    store = Store(str(db))
    outbox = open_outbox(str(db))
    url = f"json://slow.test:{server.port}/ann"
    notifier = Notifier(outbox, _contacts(db, url), lambda: clock[0])
    with store.transaction() as tx:
        for _ in range(2):
            alert = tx.page_alert("fall", "treadmill-1", None, 1.0, 301.0, frame=BY_HAND)
            tx.queue_notification(
                alert,
                "c0",
                0,
                0,
                "FALL",
                "body",
                1000.0,
                urgency=Urgency.CRITICAL,
                contact_key="c0",
                url_key=url_key(url),
            )
    assert notifier.deliver_due() == 0
    why = "name lookup for slow.test took longer than 0.2 s"
    assert _pending(db) == [("pending", 1, 1010.0, why)] * 2
    assert resolver.asked == ["slow.test"]
    resolver.release.set()
    clock[0] = 1010.0
    assert notifier.deliver_due() == 2
    assert [r[:2] for r in _pending(db)] == [("sent", 2)] * 2
    assert len(server.take()) == 2
    outbox.close()
    store.close()


def test_a_contact_whose_name_hangs_does_not_hold_up_the_others_pages(
    tmp_path: Path, server: Server, resolver: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first contact's server name does not resolve; the second contact's fall page is
    delivered while that lookup is still blocked. Before, the round sent one message after
    another and the second page waited behind the first contact's lookup. The timeout is
    set longer than the test waits, so only sending to contacts at once passes."""
    monkeypatch.setattr(notify_http, "TIMEOUT_S", WAIT * 3)
    db = tmp_path / "c.db"
    store = Store(str(db))
    outbox = open_outbox(str(db))
    urls = (f"json://slow.test:{server.port}/ann", f"json://fast.test:{server.port}/bob")
    notifier = Notifier(outbox, _contacts(db, *urls), lambda: 1000.0)
    with store.transaction() as tx:
        alert = tx.page_alert("fall", "treadmill-1", None, 1.0, 301.0, frame=BY_HAND)
        for index in (0, 1):  # the first contact's page is queued (and read) first
            tx.queue_notification(
                alert,
                f"c{index}",
                index,
                0,
                "FALL",
                "body",
                1000.0,
                urgency=Urgency.CRITICAL,
                contact_key=f"c{index}",
                url_key=url_key(urls[index]),
            )
    delivered: list[int] = []
    round_ = threading.Thread(target=lambda: delivered.append(notifier.deliver_due()))
    round_.start()
    try:
        first = server.arrived.get(timeout=WAIT)  # before the fix: nothing while blocked
        assert first.target == "/bob"
        assert not resolver.release.is_set() and round_.is_alive()
    finally:
        resolver.release.set()
        round_.join(WAIT * 4)
    assert delivered == [2]
    assert [s.target for s in server.take()] == ["/bob", "/ann"]
    assert [r[:2] for r in _pending(db)] == [("sent", 1)] * 2
    outbox.close()
    store.close()


# ------------------------------------------------------------------ memory


def test_ntfy_and_json_contacts_never_import_apprise(server: Server) -> None:
    """In a fresh interpreter, as the notifier process: warm up for the contacts, send to
    each; neither Apprise, ``requests``, ``http.client`` nor (for http) ``ssl`` is loaded."""
    code = f"""
        import sys
        from caregiver.notify import send_notification, warm_up
        from caregiver.storage import Urgency
        urls = ["json://127.0.0.1:{server.port}/ann", "ntfy://127.0.0.1:{server.port}/ann"]
        warm_up(urls)
        print(all(send_notification(u, "t", "b", Urgency.CRITICAL) for u in urls))
        print(*[m for m in ("apprise", "requests", "http.client", "ssl") if m in sys.modules])
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=WAIT * 4,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["True", ""]
    assert len(server.take()) == 2
