"""Shared fixtures.

``mosquitto``: a real Mosquitto on a free 127.0.0.1 port for one test (the
MQTT tests' promises are the broker's behaviour, so no fake). Tests that
need it are skipped with a clear reason when the Debian package is absent;
``scripts/test.sh`` installs it.

``postgres_cluster``: a real PostgreSQL cluster on a free 127.0.0.1 port, started
once per test session (``initdb`` + ``pg_ctl start`` take a second or two) and
thrown away at its end; each test gets a database of its own in it.
``caregiver_db``: the caregiver's ``[server] database`` for one test, once per
engine: a new SQLite file in ``tmp_path`` (the store's migrations run on its first
open), then a new PostgreSQL database, a copy of one the store's migrations took to
the schema once per session (migrating each took 0.1-0.2 s of every PostgreSQL test);
a test marked ``empty_database`` (an upgrade from an older release's rows) gets an
empty one. The PostgreSQL run is skipped with the reason when the server programs
are absent; ``scripts/test.sh`` installs them.

``disk``: the courier's disk, made fillable on command
(:class:`tests.storage_support.FillableDisk`).

``browser``: Debian's headless Chromium under Playwright, once per test module
(:mod:`tests.browser_support`, loaded as a plugin so the dashboard's browser test files
share one fixture).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app_support import close_open_rigs
from tests.storage_support import FillableDisk
from tools import broker
from tools.broker import Mosquitto, mosquitto_available
from tools.pgcluster import PostgresCluster, postgres_available

pytest_plugins = ("tests.browser_support",)

ENGINES = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker picks its brokers' and databases' ports from a slice of
    its own (:data:`tools.broker.PORT_SLICE`): a port one worker's stopped broker is about
    to restart on is never another's to take."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and worker[2:].isdigit() and count.isdigit():
        broker.PORT_SLICE = (int(worker[2:]), int(count))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``retroguard`` CLI calls in tests install their own log handler; undo it after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True, scope="module")
def _restore_logging_after_the_module() -> Iterator[None]:
    """The same at a module's end, for a module-scoped fixture's CLI calls (set up before any
    test's own snapshot): the root left at INFO made every later module of that worker hear
    INFO records its ``caplog`` assertions do not expect."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    if not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto mosquitto-clients)")
    broker = Mosquitto()
    broker.start()
    try:
        yield broker
    finally:
        # The test's monitors stop while their broker still runs, as in a real shutdown:
        # after it, each would wait out its whole drain (2 s) for a broker that is gone.
        close_open_rigs()
        broker.cleanup()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    reason = postgres_available()
    if reason is not None:
        pytest.skip(reason)
    cluster = PostgresCluster()
    _clusters.append(cluster)
    try:
        cluster.start()
        yield cluster
    finally:
        _clusters.remove(cluster)
        cluster.cleanup()


_clusters: list[PostgresCluster] = []
"""The session's cluster once a test asked for it (:func:`_drop_the_test_s_databases`)."""


@pytest.fixture(autouse=True)
def _drop_the_test_s_databases() -> Iterator[None]:
    """After each test, the PostgreSQL databases it made are dropped (autouse: torn down after
    the test's own fixtures, its services closed first). Kept to the end, they made each
    worker's last teardown 1-2 minutes of deleting files
    (:meth:`PostgresCluster.drop_new_databases`)."""
    yield
    for cluster in _clusters:
        try:
            cluster.drop_new_databases()
        except Exception:  # a database still in use by a leaked thread: cleanup() deletes it
            logging.getLogger(__name__).warning("could not drop a test's database", exc_info=True)


@pytest.fixture(scope="session")
def _migrated_postgres_database(postgres_cluster: PostgresCluster) -> str:
    """A database the store's own migrations took from empty to the schema, once per test
    session (worker) on its cluster: the template each test's ``caregiver_db`` copies. A
    migration PostgreSQL refuses fails here, and with it every PostgreSQL test."""
    from caregiver.storage import Store  # the caregiver's code: only the tests that use it

    url = postgres_cluster.new_database("template", kept=True)
    Store(url).close()
    return url.rsplit("/", 1)[1]


@pytest.fixture(params=ENGINES)
def caregiver_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "caregiver.db")
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    if request.node.get_closest_marker("empty_database") is not None:
        return cluster.new_database()
    return cluster.new_database(copy_of=request.getfixturevalue("_migrated_postgres_database"))


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FillableDisk:
    """Every connection the courier's database opens to its file can be made to find it full."""
    fillable = FillableDisk()
    monkeypatch.setattr("firmware.storage.fallback.connect", fillable.connect)
    return fillable
