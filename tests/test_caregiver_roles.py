"""Account roles: only a physio sets plans and progressions; a caregiver sees them read-only.

On both engines (``caregiver_db``): the upgrade that adds roles keeps every
account able to do what it did (physio); new accounts are caregivers unless
made physios; the plan page hides the forms from a caregiver and a forged POST
gets 403 and publishes nothing (a plain paho client stands in for the device on
a real Mosquitto).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from caregiver.auth import Accounts, hash_password
from caregiver.service import CaregiverService
from caregiver.storage import SCHEMA_VERSION, Role, Store
from launcher.cli import main
from tests.caregiver_db import store_at_schema
from tests.caregiver_support import PASSWORD, Http, SimDevice, make_config, running_service
from tools.broker import Mosquitto

DEVICE = "treadmill-2"
BOB_PASSWORD = "another good password"


@pytest.mark.empty_database  # the upgrade from that schema's rows
def test_accounts_from_before_roles_become_physios_and_new_ones_are_caregivers(
    caregiver_db: str,
) -> None:
    with (
        store_at_schema(caregiver_db, 5) as old,
        old.transaction() as tx,
    ):  # the schema of the release before roles
        tx._db.execute(
            "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
            ("ann", hash_password(PASSWORD), 1.0),
        )
    store = Store(caregiver_db)
    try:
        assert (store.schema.before, store.schema.after) == (5, SCHEMA_VERSION)
        accounts = Accounts(store)
        accounts.add_user("bob", BOB_PASSWORD)
        assert {a.username: a.role for a in accounts.users()} == {
            "ann": Role.PHYSIO,
            "bob": Role.CAREGIVER,
        }
        assert accounts.verify("ann", PASSWORD)  # the upgraded account still logs in
        accounts.add_user("ann", "a brand new password")  # a new password keeps the role
        accounts.add_user("cat", "a third good password", Role.PHYSIO)
        assert accounts.set_role("bob", Role.PHYSIO) and not accounts.set_role(
            "nobody", Role.PHYSIO
        )
        assert {a.username: a.role for a in accounts.users()} == {
            "ann": Role.PHYSIO,
            "bob": Role.PHYSIO,
            "cat": Role.PHYSIO,
        }
        with store.transaction() as tx:  # a row written without a role gets the lesser one
            tx._db.execute(
                "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
                ("dan", hash_password(PASSWORD), 2.0),
            )
        assert {a.username: a.role for a in accounts.users()}["dan"] is Role.CAREGIVER
        token, session = accounts.create_session("bob", 1.0)
        assert session.may_prescribe and accounts.session(token).may_prescribe  # type: ignore[union-attr]
        assert accounts.set_role("bob", Role.CAREGIVER)
        assert not accounts.session(token).may_prescribe  # type: ignore[union-attr]
    finally:
        store.close()


def test_the_command_line_gives_and_changes_roles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caregiver_db: str
) -> None:
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{caregiver_db}"\n')
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")

    def cli(*argv: str) -> int:
        return main(["caregiver", *argv, "-c", str(config)])

    assert cli("add-user", "ann", "--password-file", str(secret), "--role", "physio") == 0
    assert cli("add-user", "bob", "--password-file", str(secret)) == 0
    capsys.readouterr()
    assert cli("users") == 0
    ann, bob = capsys.readouterr().out.splitlines()
    assert ann.split()[:2] == ["ann", "physio"] and bob.split()[:2] == ["bob", "caregiver"]
    assert cli("set-role", "bob", "physio") == 0
    assert "user bob is a physio" in capsys.readouterr().out
    assert cli("add-user", "ann", "--password-file", str(secret)) == 0  # keeps physio
    assert cli("set-role", "nobody", "physio") == 2
    assert "no account 'nobody'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli("set-role", "bob", "admin")
    capsys.readouterr()
    assert cli("users") == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()] == [
        "physio",
        "physio",
    ]


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str) -> Iterator[CaregiverService]:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False) as s:
        yield s


def test_a_caregiver_sees_the_plan_page_read_only_and_a_forged_post_is_refused(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    device = SimDevice(mosquitto, DEVICE)
    device.online()
    assert service.ingestor.wait_for(lambda: service.store.device(DEVICE) is not None)
    service.accounts.add_user("bob", BOB_PASSWORD)  # a caregiver: the default
    bob = Http(service.port)
    assert bob.login("bob", BOB_PASSWORD) == 303
    status, _, page = bob.request("GET", f"/devices/{DEVICE}/plan")
    assert status == 200 and 'id="plan-read-only"' in page and 'id="plan-answers"' in page
    assert 'id="plan-form"' not in page and 'id="progression-form"' not in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page) or re.search(
        r'name="csrf" value="([^"]+)"', bob.request("GET", f"/devices/{DEVICE}")[2]
    )
    assert csrf
    forged = {
        f"/devices/{DEVICE}/plan": [("csrf", csrf[1]), ("preset", "alternate-2-2")],
        f"/devices/{DEVICE}/progression": [("csrf", csrf[1]), ("action", "hold")],
    }
    own_schedule = [  # the physio's own schedule, typed a stage a line
        ("csrf", csrf[1]), ("schedule_name", "Anna, spring"),
        ("schedule", "2/2 x7, 2 forward | 2 weeks\n3/2 x4"), ("schedule_stage", "1"),
    ]  # fmt: skip
    for path, form in (*forged.items(), (f"/devices/{DEVICE}/progression", own_schedule)):
        status, _, body = bob.request("POST", path, form)
        assert status == 403 and "Only a physio" in body, path
    assert bob.request("POST", "/devices/nowhere/plan", forged[f"/devices/{DEVICE}/plan"])[0] == 404

    ann = Http(service.port)  # a physio (tests.caregiver_support makes her one)
    assert ann.login() == 303
    _, _, page = ann.request("GET", f"/devices/{DEVICE}/plan")
    assert 'id="plan-form"' in page and 'id="plan-read-only"' not in page
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    status, _, _ = ann.request(
        "POST", f"/devices/{DEVICE}/plan", [("csrf", token[1]), ("preset", "alternate-2-2")]
    )
    assert status == 303
    assert device.wait_command("plan")["by"] == "ann"
    assert [name for name, _ in device.commands] == ["plan"]  # bob's posts published nothing

    assert service.accounts.set_role("bob", Role.PHYSIO)  # his open login may now
    status, _, _ = bob.request(
        "POST", f"/devices/{DEVICE}/progression", forged[f"/devices/{DEVICE}/progression"]
    )
    assert status == 303
    assert device.wait_command("progression") == {
        "id": device.commands[-1][1]["id"],
        "action": "hold",
        "by": "bob",
    }
    device.close()
