"""A throwaway local Mosquitto: for the test fixtures and for ``retroguard demo``.

Why a real broker rather than a fake: the properties we promise (retained
availability, the Last Will, QoS 1 PUBACKs, ACL refusals, TLS) are the
broker's behaviour, and a fake would only test our idea of it.

Mosquitto drops to the ``mosquitto`` user even when started by root, so the
broker gets its own world-readable working directory under the system temp
directory (pytest's ``tmp_path`` is private to root) and its persistence
directory is handed to that user. Readiness is a bounded poll of the TCP
port, paced by waiting on the process — so a broker that dies at start
(bad config, port taken) is reported at once with its own log.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


class BrokerError(RuntimeError):
    """Mosquitto could not be started (the message includes the end of its log)."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Server-side TLS material (PEM). With ``require_certificate`` clients need a cert too."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_certificate: bool = False


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


PORT_SLICE: tuple[int, int] = (0, 1)
"""``(i, n)``: :func:`free_port` chooses from the ``i``-th of ``n`` equal slices of its range.
Parallel test processes each take their own slice (tests/conftest.py), so none is handed
the port on which another's stopped broker or database is about to start again."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host``, chosen *below* the ephemeral range.

    Why not bind to port 0: that hands out an ephemeral port, and while the
    broker is stopped a client retrying ``connect()`` to it can be given the
    very same port as its source and connect to itself (TCP simultaneous
    open) — the restarted broker then finds its port taken.
    """
    low, _ = _ephemeral_range()
    index, count = PORT_SLICE
    span = max(1, (max(10001, low) - 10000) // count)
    first = 10000 + index * span
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(first, first + span)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Ask a process still running to stop (SIGTERM), as its service manager would, so it saves
    what it keeps; SIGKILL when it has not exited within ``timeout`` s. Returns once it is gone.
    Mosquitto here, and the processes a benchmark starts (benchmarks/faults.py)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def mosquitto_available() -> bool:
    return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()


def _executable(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    if found is None:
        raise BrokerError(
            f"{name} not found: install it with `apt-get install -y mosquitto mosquitto-clients`"
        )
    return found


class Mosquitto:
    """One local Mosquitto process on 127.0.0.1 (a free port unless given).

    ``users`` (name → password) switches anonymous access off and writes a
    password file with ``mosquitto_passwd -U`` (hashed from a private file: no password on a
    command line; none may hold ':'), and — as the documented broker
    does — makes every client's id its user name (``use_username_as_clientid``),
    so one account cannot take over another's session; ``acl`` is the text of
    an ACL file; ``tls`` adds TLS on the same port; ``persistence`` keeps
    retained messages and persistent sessions across :meth:`stop` /
    :meth:`start` and a crash, saved every second (``autosave_interval 1``),
    like a real deployment; ``persistence=False`` models a broker that lost
    its database. ``config`` replaces all of that with a whole configuration of one's own,
    used as it is (its listener on ``port``): a broker as an installer set it up.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        tls: TlsFiles | None = None,
        persistence: bool = True,
        extra_config: str = "",
        workdir: Path | None = None,
        config: str | None = None,
    ) -> None:
        self.host = host
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port(host)
        self._users = dict(users or {})
        self._acl = acl
        self._tls = tls
        self._persistence = persistence
        self._extra = extra_config
        self._config = config
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="retroguard-mosquitto-"))
        self.workdir.chmod(0o755)
        self.log_file = self.workdir / "mosquitto.log"
        self.config_file = self.workdir / "mosquitto.conf"
        self._proc: subprocess.Popen[bytes] | None = None
        self._prepared = False
        self._started_once = False

    # --------------------------------------------------------------- files

    def _install(self, src: Path, name: str) -> Path:
        """Copy a file into the broker's directory, readable by the ``mosquitto`` user."""
        dst = self.workdir / name
        shutil.copyfile(src, dst)
        dst.chmod(0o644)
        self._give_to_broker_user(dst)
        return dst

    @staticmethod
    def _give_to_broker_user(path: Path) -> None:
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam("mosquitto")
        except KeyError:
            return
        os.chown(path, user.pw_uid, user.pw_gid)

    def _prepare(self) -> None:
        if self._prepared:
            return
        if self._config is not None:
            self.config_file.write_text(self._config)
            self.config_file.chmod(0o644)
            self._prepared = True
            return
        lines = [
            f"listener {self.port} {self.host}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if self._persistence:
            data = self.workdir / "data"
            data.mkdir(exist_ok=True)
            data.chmod(0o755)
            self._give_to_broker_user(data)
            lines += ["persistence true", f"persistence_location {data}/", "autosave_interval 1"]
        else:
            lines.append("persistence false")
        if self._users:
            passwd = self.workdir / "passwd"
            tool = _executable("mosquitto_passwd")
            # Hashed in place from plain "name:password" lines in a file only this user can
            # read (mosquitto_passwd -U), as scripts/install-pi.sh does: never a password on
            # a command line, which every local user can read (retroguard demo's accounts
            # were handed to mosquitto_passwd -b so).
            passwd.unlink(missing_ok=True)
            fd = os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as plain:
                for name, password in self._users.items():
                    # -U reads a line up to its second ':' (a password "a:b" would be "a")
                    if any(c in name + password for c in ":\r\n"):
                        raise BrokerError(
                            f"account {name!r}: a name or password with ':' or a line break"
                        )
                    plain.write(f"{name}:{password}\n")
            subprocess.run([tool, "-U", str(passwd)], check=True, capture_output=True)
            passwd.chmod(0o644)
            self._give_to_broker_user(passwd)
            lines += [
                "allow_anonymous false",
                f"password_file {passwd}",
                "use_username_as_clientid true",
            ]
        else:
            lines.append("allow_anonymous true")
        if self._acl is not None:
            acl = self.workdir / "acl"
            acl.write_text(self._acl)
            acl.chmod(0o644)
            self._give_to_broker_user(acl)
            lines.append(f"acl_file {acl}")
        if self._tls is not None:
            lines += [
                f"cafile {self._install(self._tls.ca_file, 'ca.pem')}",
                f"certfile {self._install(self._tls.cert_file, 'server.pem')}",
                f"keyfile {self._install(self._tls.key_file, 'server.key')}",
                f"require_certificate {'true' if self._tls.require_certificate else 'false'}",
            ]
        if self._extra:
            lines.append(self._extra)
        self.config_file.write_text("\n".join(lines) + "\n")
        self.config_file.chmod(0o644)
        self._prepared = True

    # ------------------------------------------------------------- process

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start (or restart, always on the same port) once it accepts TCP connections.

        A port still held by the previous run (a lingering socket) is retried
        a bounded number of times; only the very first start may move to
        another free port, and only when the port was not given.
        """
        if self.running:
            return self
        for attempt in range(50):
            self._prepare()
            with self.log_file.open("ab") as log_fh:
                log_start = log_fh.tell()
                self._proc = subprocess.Popen(
                    [_executable("mosquitto"), "-c", str(self.config_file)],
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_accepting(timeout):
                self._started_once = True
                return self
            if "Address already in use" not in self.log()[log_start:] or attempt == 49:
                break
            if not self._fixed_port and not self._started_once:
                self.port = free_port(self.host)
                self._prepared = False
        raise BrokerError(
            f"mosquitto did not start on {self.host}:{self.port}:\n{self.log()[-2000:]}"
        )

    def _wait_accepting(self, timeout: float) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return True
            except OSError:
                pass
            try:
                self._proc.wait(timeout=0.005)  # paces the poll; returns early if it died
            except subprocess.TimeoutExpired:
                continue
            return False
        self.kill()
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM): Mosquitto saves retained messages and sessions."""
        proc = self._proc
        if proc is None:
            return
        stop_process(proc, timeout)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: a crash or power cut of the broker (no will, nothing saved)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._proc = None

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections on its port, and the broker answers
        none until :meth:`resume` (a broker hung, or slow to answer a connection)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`: it answers what waited meanwhile."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)

    def reload_acl(self, acl: str) -> None:
        """Replace the ACL and have the running broker read it again (SIGHUP), as an operator
        who fixed it would: connected clients stay connected."""
        path = self.workdir / "acl"
        path.write_text(acl)
        self._acl = acl
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGHUP)

    def restart(self, timeout: float = 10.0) -> Mosquitto:
        self.stop()
        return self.start(timeout)

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def cleanup(self) -> None:
        """Stop and delete the working directory (if this object created it)."""
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
