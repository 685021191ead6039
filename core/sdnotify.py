"""The systemd notification protocol (``sd_notify``) in a few lines of socket code.

Why not a library: the protocol is one ``sendto`` of ``KEY=VALUE`` lines on
an ``AF_UNIX`` datagram socket whose address systemd puts in
``NOTIFY_SOCKET``. ``systemd-python`` needs ``libsystemd-dev`` to build on
the Pi, and the pure-Python ``sdnotify`` package uses a blocking socket and
swallows nothing we could count. What the real-time loop needs is narrower
than either: a send that **never blocks and never raises** — a full socket
buffer or a restarted systemd must not stall or crash the thread that holds
the treadmill relay — and a counter of failed sends for diagnostics.

Protocol notes (see ``sd_notify(3)``):

* ``NOTIFY_SOCKET`` is a filesystem path, or an abstract-namespace name
  written with a leading ``@`` (sent as a leading NUL byte).
* One datagram carries newline-separated assignments; ``READY=1``,
  ``WATCHDOG=1``, ``STATUS=...`` and ``STOPPING=1`` are the ones used here.
* With ``NotifyAccess=main`` systemd accepts messages from the main
  process's PID only; threads share that PID, so the loop thread may send.
* When ``NOTIFY_SOCKET`` is unset (run by hand, in tests, in the demo)
  every call is a cheap no-op.

Shared by the monitor (``firmware.watchdog``: pings from the real-time loop) and the
caregiver service (``caregiver.liveness``: pings while its threads are turning).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def watchdog_timeout_from_env(env: Mapping[str, str] | None = None) -> float | None:
    """The unit's ``WatchdogSec`` in seconds, from ``WATCHDOG_USEC`` (None: no watchdog for
    this process).

    systemd sets ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``) when the unit has
    ``WatchdogSec=``; a ``WATCHDOG_PID`` naming another process means the
    watchdog belongs to it, as ``sd_watchdog_enabled(3)`` specifies.
    """
    env = os.environ if env is None else env
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(raw)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", raw)
        return None
    if usec <= 0:
        return None
    return usec / 1_000_000


def _socket_address(value: str) -> str | bytes | None:
    """Turn a ``NOTIFY_SOCKET`` value into an address for ``sendto``, or None.

    Only ``AF_UNIX`` addresses are supported; ``vsock:`` (used between VMs)
    is not something a Pi sees, so it disables notification with a warning.
    """
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET=%r is not a unix socket address; not notifying systemd", value)
    return None


class Notifier:
    """Sends ``sd_notify`` messages; a no-op when there is no socket.

    ``sent`` and ``errors`` count datagrams: a non-zero ``errors`` after a
    run means systemd may have missed pings (and will say so in its journal
    when it kills the service).
    """

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.sent = 0
        self.errors = 0
        self._target = _socket_address(address) if address else None
        self._sock: socket.socket | None = None
        if self._target is not None:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
            except OSError as exc:
                self.errors += 1
                log.warning("cannot create the systemd notify socket: %s", exc)
            else:
                self._sock = sock

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """A notifier for ``NOTIFY_SOCKET`` in ``env`` (default: the process environment)."""
        return cls((os.environ if env is None else env).get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        """True when messages actually go somewhere."""
        return self._sock is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``assignments`` (``"KEY=VALUE"``) in one datagram; True if it was sent.

        Never blocks (non-blocking socket: a full buffer is ``EAGAIN``, counted
        as an error) and never raises.
        """
        sock = self._sock
        if sock is None or self._target is None or not assignments:
            return False
        try:
            sock.sendto("\n".join(assignments).encode("utf-8", "replace"), self._target)
        except OSError:
            self.errors += 1
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up finished (with an optional status line)."""
        if status is None:
            return self.notify("READY=1")
        return self.notify("READY=1", _status_line(status))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive ping systemd expects within ``WatchdogSec``."""
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """``STATUS=...``: the one-line state ``systemctl status`` shows."""
        return self.notify(_status_line(text))

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: an orderly shutdown has begun (pings may stop now)."""
        if status is None:
            return self.notify("STOPPING=1")
        return self.notify("STOPPING=1", _status_line(status))

    def close(self) -> None:
        """Close the socket; later calls are no-ops. Idempotent."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _status_line(text: str) -> str:
    # A newline would start a new assignment, so a reason text could forge
    # READY=1 or WATCHDOG=1; keep the status on one line.
    return "STATUS=" + " ".join(text.split())
