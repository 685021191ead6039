"""The treadmill's walker profiles on the wire: the device publishes them retained (typed
:class:`~core.protocol.messages.WalkersMessage`, ``docs/mqtt/schemas/walkers.schema.json``),
the caregiver service keeps the latest (caregiver schema 11) and its plan page offers those
walkers by name. Information only: nothing from the network adds, removes or chooses a walker,
and nothing here touches the relay."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import jsonschema
import msgspec
import pytest

from core.protocol.messages import InvalidMessage, WalkersMessage
from core.protocol.payloads import decode_as
from core.protocol.topics import TopicKind, Topics, parse_topic
from core.protocol.walker import DEFAULT_WALKER, Walker
from firmware.mqtt.status import RetainedStatus
from firmware.storage.database import connect, transaction
from firmware.storage.runs import begin_run
from firmware.storage.walkers import add_walker, remove_walker, roster, select_walker
from tests.app_support import close_rigs, make_rig, pump_link_until
from tests.caregiver_support import Http, SimDevice, running_service
from tests.caregiver_support import make_config as caregiver_config
from tests.log_support import LogLines
from tests.mqtt_helpers import WAIT, config_for, schema
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
ANNA_B = Walker("anna-b", "Anna B")


def _change(db: Path, work: object) -> None:
    conn = connect(db)
    try:
        with transaction(conn):
            work(conn)  # type: ignore[operator]
    finally:
        conn.close()


def test_the_walkers_schema_agrees_with_the_type_and_a_bad_roster_is_refused_naming_the_field(
    tmp_path: Path,
) -> None:
    typed = msgspec.json.schema(Walker)["$defs"]["Walker"]
    documented = schema("walkers")["$defs"]["walker"]
    assert set(documented["required"]) == set(typed["required"])
    assert documented["properties"]["id"]["pattern"] == typed["properties"]["id"]["pattern"]
    assert parse_topic("retroguard", Topics("retroguard", DEVICE).walkers).kind is (  # type: ignore[union-attr]
        TopicKind.WALKERS
    )

    status = RetainedStatus(tmp_path / "device.db", Topics("retroguard", DEVICE))
    first = status.walkers()
    assert first is not None and first.topic == f"retroguard/{DEVICE}/walkers"
    jsonschema.validate(json.loads(first.payload), schema("walkers"))
    assert decode_as(WalkersMessage, first.payload.encode()).walkers == [DEFAULT_WALKER]
    status.close()

    good = json.loads(first.payload)
    for bad, field in (
        ({**good, "walkers": []}, r"\$\.walkers"),
        ({**good, "walkers": [{"id": "Anna B", "name": "Anna"}]}, r"\$\.walkers\[0\]\.id"),
        ({**good, "walkers": [{"id": "anna", "name": ""}]}, r"\$\.walkers\[0\]\.name"),
        ({**good, "walkers": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}]}, "twice"),
        ({**good, "walkers": [{"id": "a", "name": "A", "arm": True}]}, "arm"),
        ({k: v for k, v in good.items() if k != "walkers"}, "walkers"),
    ):
        with pytest.raises(InvalidMessage, match=field):
            decode_as(WalkersMessage, json.dumps(bad).encode())
    with pytest.raises(InvalidMessage, match=r"walkers|Expected"):
        decode_as(WalkersMessage, b'{"walkers": "everyone"}')


def test_the_retained_walkers_follow_adds_and_removes_not_selections(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    status = RetainedStatus(db, Topics("retroguard", DEVICE))
    first = status.walkers()
    assert first is not None
    status.published(first)  # the client took it
    assert status.walkers() is None  # the same: nothing to publish
    _change(db, lambda c: add_walker(c, "Anna B", by="Jo", wall="2026-03-02T09:00:00+00:00"))
    added = status.walkers()
    assert added is not None
    message = decode_as(WalkersMessage, added.payload.encode())
    assert message.walkers == [DEFAULT_WALKER, ANNA_B]
    assert message.wall_time == "2026-03-02T09:00:00+00:00"  # the change's: repeats are equal
    status.published(added)
    _change(db, lambda c: select_walker(c, "anna-b", by="Jo", via="cli", wall="w"))
    assert status.walkers() is None  # whose next session it is: not the roster
    status.forget()  # after a reconnect: the same bytes again
    again = status.walkers()
    assert again is not None and again.payload == added.payload
    _change(db, lambda c: remove_walker(c, "anna-b", by="Jo", wall="2026-03-03T09:00:00+00:00"))
    removed = status.walkers()
    assert removed is not None
    assert decode_as(WalkersMessage, removed.payload.encode()).walkers == [DEFAULT_WALKER]
    status.close()


def test_a_roster_never_changed_is_the_same_bytes_after_a_restart_of_the_courier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No walker was ever added or removed: the roster's time is the monitor's first run on
    this database, not the courier's start, so a restarted courier says it byte for byte the
    same (before: each start published a new wall_time)."""
    db = tmp_path / "device.db"
    _change(db, lambda c: begin_run(c, "101", "2026-03-01T08:00:00.000+00:00"))
    _change(db, lambda c: begin_run(c, "202", "2026-03-05T08:00:00.000+00:00"))  # a later boot
    said = []
    for started in ("2026-03-05T08:00:01.000+00:00", "2026-03-06T10:00:00.000+00:00"):
        monkeypatch.setattr("core.protocol.payloads.wall_now", lambda started=started: started)
        courier = RetainedStatus(db, Topics("retroguard", DEVICE))  # one courier's start
        message = courier.walkers()
        assert message is not None
        said.append(message.payload)
        courier.close()
    assert said[0] == said[1]
    first = decode_as(WalkersMessage, said[0].encode())
    assert first.wall_time == "2026-03-01T08:00:00.000+00:00" and first.walkers == [DEFAULT_WALKER]


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_walker_added_at_the_treadmill_is_offered_on_the_plan_page_by_name(
    tmp_path: Path,
    mosquitto: Mosquitto,
    caregiver_db: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Real Mosquitto, the monitor on simulated hardware, the caregiver service (SQLite and
    PostgreSQL): ``retroguard walker add`` at the treadmill, and the plan page offers Anna B
    by name before she ever walked; the relay never moves. A malformed roster from the network
    is refused with the field named (no crash: a good one is stored after it), and no roster
    from the network changes the device's walkers."""
    from launcher.cli import main

    (tmp_path / "cg").mkdir()
    config = caregiver_config(mosquitto, tmp_path / "cg", database=caregiver_db)
    with running_service(config, background=False) as cg:
        rig = make_rig(tmp_path, mqtt=config_for(mosquitto))
        rig.run_for(0.5)
        assert cg.ingestor.wait_for(
            lambda: cg.store.device_walkers(DEVICE) == [("default", "Default walker")], WAIT
        )
        relay_before = list(rig.hardware.history)

        db = str(tmp_path / "events.db")
        assert main(["walker", "--db", db, "add", "Anna B"]) == 0
        assert "Walker anna-b added: Anna B." in capsys.readouterr().out
        assert cg.ingestor.wait_for(
            lambda: (
                cg.store.device_walkers(DEVICE)
                == [("default", "Default walker"), ("anna-b", "Anna B")]
            ),
            WAIT,
        )
        assert cg.store.walkers(DEVICE) == []  # nobody has walked: sessions name no one
        web = Http(cg.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
        assert status == 200
        assert '<option value="anna-b">Anna B</option>' in page
        assert '<span class="walker" data-walker="anna-b">Anna B</span>' in page

        # From the network: a malformed roster, then a well-formed one nobody at the
        # treadmill made. The service refuses the first, naming the field, and goes on.
        forger = SimDevice(mosquitto, DEVICE)
        said = LogLines(logging.WARNING)
        logging.getLogger("caregiver.ingest").addHandler(said)
        try:
            rejected = cg.ingestor.rejected
            malformed = {"schema": 1, "device_id": DEVICE, "wall_time": "w",
                         "walkers": [{"id": "Mallory!", "name": "M"}]}  # fmt: skip
            forger.publish("walkers", json.dumps(malformed))
            assert cg.ingestor.wait_for(lambda: cg.ingestor.rejected == rejected + 1, WAIT)
            assert any("$.walkers[0].id" in m and "ignored" in m for m in said.lines)
            assert cg.store.device_walkers(DEVICE)[-1] == ("anna-b", "Anna B")
            forged = {"schema": 1, "device_id": DEVICE, "wall_time": "w",
                      "walkers": [{"id": "mallory", "name": "Mallory"}]}  # fmt: skip
            forger.publish("walkers", json.dumps(forged))
            assert cg.ingestor.wait_for(
                lambda: cg.store.device_walkers(DEVICE) == [("mallory", "Mallory")], WAIT
            )  # stored: the service is up after the bad one (the broker's ACL vouches)
        finally:
            logging.getLogger("caregiver.ingest").removeHandler(said)
            forger.close()
        rig.run_for(1.0)
        assert pump_link_until(rig.app.link, lambda: rig.app.link.storage_ok is True)
        raw = sqlite3.connect(db)
        try:
            on_device = roster(raw)
        finally:
            raw.close()
        assert on_device.walkers == (DEFAULT_WALKER, ANNA_B)  # nothing from the network
        assert on_device.selected == DEFAULT_WALKER
        assert rig.state == "STANDBY" and rig.hardware.history == relay_before
