"""Two caregiver instances on one PostgreSQL and one Mosquitto, with real faults (issue 16,
item 3): an instance killed with SIGKILL during a burst, and the database server restarted
during ingest. Nothing is lost and nothing is stored twice.

The killed instance is a real ``retroguard caregiver`` process; it comes back as systemd's
``Restart=always`` would bring it back, with the same client id: Mosquitto keeps handing a
share of the stream to a dead member's persistent session (docs/provider.md), and the
returning instance takes it from there.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.caregiver_db import execute
from tests.caregiver_support import SimDevice, make_config, running_service
from tests.process_support import LoggedProcess
from tests.storage_support import wait_for
from tools.broker import Mosquitto
from tools.pgcluster import PostgresCluster

GROUP = "caregivers"
BURST = 120


def _stored(url: str) -> int:
    return int(execute(url, "SELECT count(*) FROM events")[0][0])


class Instance(LoggedProcess):
    """``retroguard caregiver -c <file>`` in a process of its own; its log is collected."""

    def __init__(self, config_file: Path) -> None:
        self.config_file = config_file
        super().__init__(
            [sys.executable, "-c", "import sys; from launcher.cli import main; sys.exit(main())",
             "caregiver", "-c", str(config_file)],
        )  # fmt: skip


def _config_file(tmp_path: Path, broker: Mosquitto, url: str, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[server]\nport = 0\ndatabase = "{url}"\n\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nclient_id = "care-{name}"\n'
        f'shared_group = "{GROUP}"\n'
    )
    return path


@pytest.fixture
def instances() -> Iterator[list[Instance]]:
    started: list[Instance] = []
    yield started
    for instance in started:
        instance.stop()


def _burst(device: SimDevice, count: int) -> list[str]:
    return [
        device.event("start", severity="info", state="STARTING", reason="monitor started")["id"]
        for _ in range(count)
    ]


def test_an_instance_killed_during_a_burst_loses_nothing_and_duplicates_nothing(
    mosquitto: Mosquitto,
    tmp_path: Path,
    postgres_cluster: PostgresCluster,
    instances: list[Instance],
) -> None:
    url = postgres_cluster.new_database()
    a_file = _config_file(tmp_path, mosquitto, url, "a")
    b_file = _config_file(tmp_path, mosquitto, url, "b")
    for path in (a_file, b_file):
        instances.append(Instance(path))
        assert instances[-1].wait_log("subscribed to every device"), instances[-1].lines
    a = instances[0]
    device = SimDevice(mosquitto, "treadmill-1")
    device.online()
    sent = _burst(device, BURST)
    assert wait_for(lambda: _stored(url) >= BURST // 4)
    a.kill()  # mid-burst: some of its messages are taken but not acknowledged
    sent += _burst(device, BURST)
    instances.append(Instance(a_file))  # back, as systemd restarts it: the same session
    assert instances[-1].wait_log("subscribed to every device"), instances[-1].lines
    assert wait_for(lambda: _stored(url) >= len(sent), 60), (_stored(url), len(sent))
    rows = execute(url, "SELECT id FROM events")
    assert sorted(r[0] for r in rows) == sorted(sent)  # every one, once
    device.close()


def test_a_database_restart_during_ingest_loses_nothing(
    mosquitto: Mosquitto, tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """The messages that meet the stopped server stay unacknowledged with the broker (QoS 1)
    and are stored once it is back."""
    url = postgres_cluster.new_database()
    configs = []
    for name in ("a", "b"):
        config = make_config(mosquitto, tmp_path / name, database=url, client_id=f"care-{name}")
        configs.append(
            dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt, shared_group=GROUP))
        )
    with (
        running_service(configs[0], web=False, background=False) as a,
        running_service(configs[1], web=False, background=False) as b,
    ):
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        sent = _burst(device, BURST // 2)
        assert wait_for(lambda: _stored(url) >= BURST // 4)
        postgres_cluster.stop("fast")
        sent += _burst(device, BURST // 2)  # the broker takes them; the database is down
        assert wait_for(lambda: a.ingestor.storage_fault is not None
                      or b.ingestor.storage_fault is not None)  # fmt: skip
        postgres_cluster.start()
        assert wait_for(lambda: _stored(url) >= len(sent), 60), (_stored(url), len(sent))
        assert sorted(r[0] for r in execute(url, "SELECT id FROM events")) == sorted(sent)

        def counted() -> int:  # each instance's count moves after its batch commits
            return a.ingestor.events_stored + b.ingestor.events_stored

        def redelivered() -> int:
            return a.ingestor.duplicates + b.ingestor.duplicates

        # A commit the server took while the connection died under its answer ("cannot exit
        # pipeline mode while busy") is not counted by the instance that sent it: it cannot know
        # the rows are in, keeps the messages unacknowledged, and meets them again as duplicates.
        assert wait_for(lambda: counted() + redelivered() >= len(sent)), (
            counted(),
            redelivered(),
            len(sent),
        )
        assert counted() <= len(sent)  # none counted twice
        # no message of the burst was taken for a bad one (acknowledged unstored) on the way
        assert a.ingestor.rejected + b.ingestor.rejected == 0
        device.close()
