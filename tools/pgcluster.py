"""A throwaway local PostgreSQL cluster: for the test fixtures and the storage benchmark.

``initdb`` into a fresh temporary directory, ``pg_ctl start`` on a free loopback
port (no Unix socket, trust authentication for the one local user), ``pg_ctl
stop`` at the end and the directory removed: like :mod:`tools.broker` does for
Mosquitto, a real server rather than a fake, because the promises under test
(one row per event id when two instances race, transactional migrations, a
reconnect after a restart) are the server's behaviour.

PostgreSQL refuses to run as root, so when root starts it the cluster belongs to
the ``postgres`` user that Debian's package creates, and the commands run as that
user. Debian keeps the server programs out of ``PATH``
(``/usr/lib/postgresql/<version>/bin``); they are looked for there too.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

from tools.broker import free_port

SERVER_PROGRAMS = ("initdb", "pg_ctl")
USER = "retroguard"
"""The cluster's superuser: the databases' owner in the URLs :meth:`PostgresCluster.url` gives."""


class ClusterError(RuntimeError):
    """The cluster could not be started (the message includes the end of its log)."""


def server_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: ``PATH`` first, then Debian's newest version."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def postgres_available() -> str | None:
    """None when a cluster can be started here, else why not (a test's skip reason)."""
    if server_bin_dir() is None:
        return "PostgreSQL server programs not installed (apt-get install -y postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run the server as"
    return None


class PostgresCluster:
    """One local PostgreSQL server on 127.0.0.1, its data in a temporary directory."""

    def __init__(self, *, port: int | None = None) -> None:
        bin_dir = server_bin_dir()
        if bin_dir is None:
            raise ClusterError(postgres_available() or "PostgreSQL not found")
        self.bin_dir = bin_dir
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port(self.host)
        self.workdir = Path(tempfile.mkdtemp(prefix="retroguard-postgres-"))
        self.data = self.workdir / "data"
        self.log_file = self.workdir / "postgres.log"
        self._owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._owner = pwd.getpwnam("postgres")
            self.workdir.chmod(0o755)
            os.chown(self.workdir, self._owner.pw_uid, self._owner.pw_gid)
        self._initialised = False
        self.running = False
        self._created: list[str] = []
        """The databases :meth:`new_database` made that :meth:`drop_new_databases` has not."""

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / program), *args]
        if self._owner is not None:
            command = ["runuser", "-u", self._owner.pw_name, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])
            raise ClusterError(f"{what} failed:\n{result.stdout}{result.stderr}\n{tail}")

    def start(self) -> None:
        """Create the cluster (the first time) and start the server; returns once it accepts
        connections (``pg_ctl -w``)."""
        if not self._initialised:
            self._check(
                self._run(
                    "initdb", "-D", str(self.data), "-U", USER, "-A", "trust",
                    "-E", "UTF8", "--locale=C", "--no-sync",
                ),
                "initdb",
            )  # fmt: skip
            self._initialised = True
        options = (
            f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories='' "
            # a throwaway cluster: durability buys nothing, speed does
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._check(
            self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log_file), "-w", "-t", "60",
                "-o", options, "start",
            ),
            "pg_ctl start",
        )  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as if it crashed; the data stays for :meth:`start`)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
            self.running = False

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@{self.host}:{self.port}/{database}"

    def new_database(
        self, prefix: str = "t", *, copy_of: str | None = None, kept: bool = False
    ) -> str:
        """A new database, empty or a copy of the database ``copy_of`` (``CREATE DATABASE ...
        TEMPLATE``: no connection to it may be open); its URL. ``kept``: left out of
        :meth:`drop_new_databases` (a template the session's tests copy).

        Copied as files (``STRATEGY FILE_COPY``, PostgreSQL 15 and later; before 15 the only
        way): 15's default, ``WAL_LOG``, wrote the whole template (~4.7 MB for an empty
        database) to the write-ahead log for each test's database, roughly doubling the server's
        CPU per database; a throwaway cluster needs no log of it (``fsync=off`` makes the
        checkpoints around a file copy cheap)."""
        import psycopg  # the caregiver's driver; imported here so tools need it only for this

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        template = f' TEMPLATE "{copy_of}"' if copy_of is not None else ""
        with psycopg.connect(self.url(), autocommit=True) as db:
            row = db.execute(b"SHOW server_version_num").fetchone()
            strategy = " STRATEGY FILE_COPY" if row is not None and int(row[0]) >= 150000 else ""
            db.execute(f'CREATE DATABASE "{name}"{template}{strategy}'.encode())
        if not kept:
            self._created.append(name)
        return self.url(name)

    def drop_new_databases(self) -> None:
        """Drop every database :meth:`new_database` made since the last call (``FORCE``: a
        connection left open is ended), if the server runs; the ones it cannot are left for
        :meth:`cleanup`.

        The test fixtures call it after each test: a suite's few hundred databases, some
        10 MB and a thousand files each, kept to the end, took 1-2 minutes to delete on a
        loaded two-core machine at the end of each worker, where dropping each costs ~20 ms."""
        import psycopg

        names, self._created = self._created, []
        if not names or not self.running:
            return
        with psycopg.connect(self.url(), autocommit=True) as db:
            for name in names:
                db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
