"""Local session control: ``retroguard session start|pause|resume|stop|status`` over a Unix socket.

The running monitor listens on ``session.sock`` in its runtime directory
(``$RUNTIME_DIRECTORY``, which systemd's ``RuntimeDirectory=retroguard``
sets, else ``/run/retroguard``), mode 0660: local users with access to that
directory only, never the network. One request per connection: a command
word and a newline; the answer is one JSON line ``{"ok": bool, "message":
str}``. The answer to ``stop`` names the session it ended (:func:`stopped_message`),
so the CLI can wait for that session's final record in the database and print its summary.

The socket's thread hands the command to the loop with a non-blocking put
(:meth:`SessionRunner.request`) and waits for the loop's answer; the loop
never waits for the socket. None of the commands can arm: they reach only
the session runner, which has no reference to the relay. ``walker <id>`` is
``retroguard walker select``'s: the walker it stored, for the next session.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from core.realtime import LoopHelperThread

if TYPE_CHECKING:
    from firmware.session.runner import SessionRunner

log = logging.getLogger(__name__)

COMMANDS = ("start", "pause", "resume", "stop", "status")
REPLY_TIMEOUT_S = 3.0
_MAX_REQUEST = 64


_STOPPED = re.compile(r"^session stopped \(id ([0-9A-Za-z_-]{1,64})\)$")


def stopped_message(session_id: str) -> str:
    """The answer to a ``stop`` that ended session ``session_id``."""
    return f"session stopped (id {session_id})"


def stopped_session(message: str) -> str | None:
    """The id of the session a ``stop`` answer (:func:`stopped_message`) ended, else None."""
    match = _STOPPED.match(message)
    return match.group(1) if match else None


def default_socket_path() -> Path:
    runtime = os.environ.get("RUNTIME_DIRECTORY", "")
    base = Path(runtime.split(":")[0]) if runtime else Path("/run/retroguard")
    return base / "session.sock"


class ControlServer:
    """Accepts session commands on a Unix socket, on its own thread."""

    def __init__(self, path: str | Path, runner: SessionRunner) -> None:
        self.path = Path(path)
        self._runner = runner
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket from a previous run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o660)
            sock.listen(4)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = LoopHelperThread(self._serve, "retroguard-session-control")
        self._thread.start()
        log.info("session control on %s", self.path)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _serve(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    self._handle(conn)
                except OSError as exc:
                    log.warning("session control connection failed: %s", exc)

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(REPLY_TIMEOUT_S)
        data = b""
        while b"\n" not in data and len(data) < _MAX_REQUEST:
            chunk = conn.recv(_MAX_REQUEST)
            if not chunk:
                break
            data += chunk
        command = data.split(b"\n", 1)[0].decode("ascii", "replace").strip()
        if command not in COMMANDS and not _is_walker_command(command):
            ok, message = False, f"unknown command {command[:20]!r}; use {', '.join(COMMANDS)}"
        else:
            reply: queue.SimpleQueue[tuple[bool, str]] = queue.SimpleQueue()
            self._runner.request(command, reply)
            try:
                ok, message = reply.get(timeout=REPLY_TIMEOUT_S)
            except queue.Empty:
                ok, message = False, "the monitor loop did not answer (is it running?)"
        conn.sendall(json.dumps({"ok": ok, "message": message}).encode() + b"\n")


def _is_walker_command(command: str) -> bool:
    """``walker <id>``: ``retroguard walker select`` telling the loop the walker it stored, so
    a session started once the command has returned is theirs (the courier's roster, which
    says the same, comes up to a second later)."""
    from core.protocol.walker import is_walker_id

    word, _, walker = command.partition(" ")
    return word == "walker" and is_walker_id(walker)


def send_command(
    path: str | Path, command: str, timeout: float = REPLY_TIMEOUT_S + 1.0
) -> tuple[bool, str]:
    """The CLI's side: send ``command``, return ``(ok, message)``; OSError when nobody listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(command.encode("ascii") + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    reply = json.loads(data.decode() or "{}")
    return bool(reply.get("ok")), str(reply.get("message", "no answer"))
