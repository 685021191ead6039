"""The caregiver dashboard as the benchmarks reach it without a browser: a login, and the
live feed read off its socket (shared by benchmarks/caregiver.py and caregiver_fleet.py)."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
import time
import urllib.parse

PASSWORD = "benchmark-password"
"""The benchmark account's password (user ``bench``)."""


def login_cookie(port: int) -> str:
    """Log in as ``bench`` through the form (CSRF token and all); the session cookie."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/login")
    resp = conn.getresponse()
    page = resp.read().decode()
    login = resp.getheader("set-cookie", "").split(";", 1)[0]
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    body = urllib.parse.urlencode(
        {"csrf": match.group(1), "username": "bench", "password": PASSWORD}
    )
    conn.request(
        "POST",
        "/login",
        body=body,
        headers={"content-type": "application/x-www-form-urlencoded", "cookie": login},
    )
    resp = conn.getresponse()
    resp.read()
    for name, value in resp.getheaders():
        if name.lower() == "set-cookie" and value.startswith("rg_session="):
            return value.split(";", 1)[0]
    raise RuntimeError("login failed")


class SseClient:
    """One instance's /stream read off the socket in this process: when each event left the
    service, apart from a page's own work (read1: what has arrived, without waiting for a
    buffer to fill)."""

    def __init__(self, port: int, cookie: str) -> None:
        self.arrivals: dict[str, float] = {}
        self.ingested: dict[str, float] = {}
        """When the service's ingest handled each event (its ``received_at``, if it says)."""
        self.ready = threading.Event()
        self.ended = threading.Event()
        """The server ended the stream (it drops a browser that falls far behind)."""
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.conn.request("GET", "/stream", headers={"cookie": cookie})
        self.resp = self.conn.getresponse()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        self.ready.set()
        pending = b""
        with contextlib.suppress(OSError, ValueError, AttributeError, http.client.HTTPException):
            while chunk := self.resp.read1(1 << 16):
                now = time.time()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.startswith(b"data: "):
                        msg = json.loads(line[6:])
                        if msg.get("kind") == "event":
                            self.arrivals.setdefault(msg["event"]["id"], now)
                            if "received_at" in msg["event"]:
                                self.ingested[msg["event"]["id"]] = msg["event"]["received_at"]
        self.ended.set()

    def close(self) -> None:
        self.conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
