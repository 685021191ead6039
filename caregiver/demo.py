"""The caregiver service for ``retroguard demo``, on a free loopback port.

``retroguard demo`` runs it in a process of its own (:func:`spawn_demo_caregiver`), as a
real installation does: the dashboard's rendering, ingest and notification imports then
never take CPU or the GIL from the monitor's real-time loop. Scripts that need to reach
into the service (the README's screenshots) start it in-process with
:func:`start_demo_caregiver`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import secrets
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig
from caregiver.service import CaregiverService
from caregiver.storage import Role
from core.logsetup import setup_logging


@dataclass
class DemoCaregiver:
    service: CaregiverService
    url: str
    username: str
    password: str

    def stop(self) -> None:
        self.service.stop()


def start_demo_caregiver(
    broker_host: str,
    broker_port: int,
    workdir: Path,
    *,
    username: str = "",
    password_file: str = "",
) -> DemoCaregiver:
    """Start the dashboard (uvicorn in a thread) against the demo's broker, with a demo login.

    No contacts are configured, so alerts show on the dashboard and nobody is paged.
    ``username`` / ``password_file``: its broker account, as an installed service's
    ``[mqtt]`` names it (``retroguard demo``'s broker has the installed one's accounts).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=str(workdir / "caregiver.db")),
        mqtt=CaregiverMqttConfig(
            host=broker_host,
            port=broker_port,
            username=username,
            password_file=password_file,
            client_id="retroguard-caregiver-demo-" + secrets.token_hex(4),
            session_expiry_s=0,
        ),
    )
    service = CaregiverService(config)
    username, password = "demo", "demo-" + secrets.token_hex(6)
    service.accounts.add_user(username, password, Role.PHYSIO)  # the demo shows plans too
    service.start(port=0)
    server = dataclasses.replace(config.server, public_url=service.url)
    service.config = dataclasses.replace(config, server=server)
    service.alerting.config = service.config
    return DemoCaregiver(service, service.url, username, password)


@dataclass(frozen=True)
class DemoStarted:
    """Child → parent: the dashboard is up, with this login."""

    url: str
    username: str
    password: str


@dataclass(frozen=True)
class DemoFailed:
    """Child → parent: the service could not start, and why."""

    error: str


@dataclass(frozen=True)
class DemoStop:
    """Parent → child: stop the service and exit."""


class DemoCaregiverProcess:
    """The demo's caregiver service in a child process, stopped with :meth:`stop`.

    The child also stops when the parent dies: its end of the pipe then reads EOF.
    """

    def __init__(
        self, process: multiprocessing.process.BaseProcess, conn: Connection, started: DemoStarted
    ) -> None:
        self._process = process
        self._conn = conn
        self.url = started.url
        self.username = started.username
        self.password = started.password

    @property
    def exitcode(self) -> int | None:
        """None while the service runs; 0 once it stopped cleanly."""
        return self._process.exitcode

    def stop(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(DemoStop())
        self._conn.close()
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def spawn_demo_caregiver(
    broker_host: str,
    broker_port: int,
    workdir: Path,
    *,
    start_timeout: float = 60.0,
    log_level: int = logging.INFO,
    username: str = "",
    password_file: str = "",
) -> DemoCaregiverProcess:
    """Start the demo caregiver service in a fresh (spawned, not forked) process, logged in to
    the broker as ``username`` with ``password_file`` (:func:`start_demo_caregiver`).

    Spawned, so the child holds none of the parent's threads, locks or sockets.
    Raises RuntimeError if it fails or does not answer within ``start_timeout``.
    """
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    process = context.Process(
        target=_serve,
        args=(
            child_end,
            broker_host,
            broker_port,
            str(workdir),
            log_level,
            username,
            password_file,
        ),
        name="retroguard-caregiver-demo",
        daemon=True,
    )
    process.start()
    child_end.close()
    reply: object = None
    with contextlib.suppress(EOFError, OSError):
        if parent_end.poll(start_timeout):
            reply = parent_end.recv()
    if isinstance(reply, DemoStarted):
        return DemoCaregiverProcess(process, parent_end, reply)
    parent_end.close()
    process.kill()
    process.join()
    if isinstance(reply, DemoFailed):
        raise RuntimeError(reply.error)
    raise RuntimeError(f"the caregiver service did not start within {start_timeout:g} s")


def _serve(
    conn: Connection,
    host: str,
    port: int,
    workdir: str,
    log_level: int,
    username: str = "",
    password_file: str = "",
) -> None:
    """The child's whole life: start, say so, wait for the word to stop (or the parent's end)."""
    setup_logging(logging.getLevelName(log_level).lower())
    try:
        demo = start_demo_caregiver(
            host, port, Path(workdir), username=username, password_file=password_file
        )
    except Exception as exc:  # reported to the parent, which prints it and runs on without
        conn.send(DemoFailed(f"{type(exc).__name__}: {exc}"))
        return
    try:
        conn.send(DemoStarted(demo.url, demo.username, demo.password))
        with contextlib.suppress(EOFError, OSError):
            conn.recv()
    finally:
        demo.stop()
