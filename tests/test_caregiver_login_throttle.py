"""Failed logins slow down the guesser, not the caregivers (issue 12: no shared lockout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from caregiver.auth import LoginThrottle
from tests.caregiver_db import execute
from tests.caregiver_support import PASSWORD, Http, make_config, running_service
from tools.broker import Mosquitto, mosquitto_available


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_pair_backs_off_while_other_accounts_and_addresses_are_not_slowed() -> None:
    clock = Clock()
    throttle = LoginThrottle(free=3, window_s=900.0, clock=clock)
    for _ in range(3):
        assert throttle.wait_s("ann", "10.0.0.9") == 0
        throttle.failed("ann", "10.0.0.9")
    assert throttle.wait_s("ann", "10.0.0.9") == pytest.approx(1.0)
    assert throttle.wait_s("ann", "10.0.0.2") == 0  # ann from her own phone
    assert throttle.wait_s("ben", "10.0.0.9") == 0  # a colleague behind the same NAT
    clock.now += 1.0
    throttle.failed("ann", "10.0.0.9")
    assert throttle.wait_s("ann", "10.0.0.9") == pytest.approx(2.0)  # doubling
    for _ in range(20):
        clock.now += 400.0
        throttle.failed("ann", "10.0.0.9")
    assert throttle.wait_s("ann", "10.0.0.9") <= 300.0  # capped
    throttle.succeeded("ann", "10.0.0.9")
    assert throttle.wait_s("ann", "10.0.0.9") == 0


def test_a_distributed_guess_slows_the_account_for_at_most_half_a_minute() -> None:
    clock = Clock()
    throttle = LoginThrottle(free=3, account_failures=20, account_delay_s=30.0, clock=clock)
    for i in range(20):
        throttle.failed("ann", f"192.0.2.{i}")
    wait = throttle.wait_s("ann", "10.0.0.2")
    assert 0 < wait <= 30.0
    clock.now += 30.0
    assert throttle.wait_s("ann", "10.0.0.2") == 0


def test_a_guess_every_five_minutes_for_days_is_still_answered_with_a_wait() -> None:
    """A guesser who tries once each ``max_delay_s`` (300 s) never lets the window (900 s)
    forget the pair: its failures grow for good. The wait was ``2.0 ** (failures - free)``,
    which raises ``OverflowError`` from the 1027th failure on (three and a half days of it):
    the login page then failed with a server error, for the caregiver behind the same
    address too, where the throttle's wait should be."""
    clock = Clock()
    throttle = LoginThrottle(free=3, window_s=900.0, max_delay_s=300.0, clock=clock)
    for _ in range(1100):
        clock.now += throttle.wait_s("ann", "10.0.0.9")
        throttle.failed("ann", "10.0.0.9")
    assert throttle.wait_s("ann", "10.0.0.9") == 300.0


def test_old_failures_are_forgotten() -> None:
    clock = Clock()
    throttle = LoginThrottle(free=1, window_s=60.0, clock=clock)
    throttle.failed("ann", "a")
    throttle.failed("ann", "a")
    assert throttle.wait_s("ann", "a") > 0
    clock.now += 61.0
    assert throttle.wait_s("ann", "a") == 0


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_a_forged_forwarded_address_does_not_dodge_the_throttle(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    with running_service(
        make_config(mosquitto, tmp_path, database=caregiver_db), background=False
    ) as service:
        service.accounts.add_user("ben", PASSWORD)
        attacker = Http(service.port)
        for i in range(3):
            assert (
                attacker.login("ann", f"wrong {i}!", headers={"x-forwarded-for": f"203.0.113.{i}"})
                == 401
            )
        assert attacker.login("ann", PASSWORD, headers={"x-forwarded-for": "198.51.100.7"}) == 429
        assert Http(service.port).login("ben", PASSWORD) == 303  # nobody else locked out


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")
def test_a_nan_stored_by_an_older_version_does_not_break_the_fleet(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False) as service:
        service.store.set_state("treadmill-1", "ARMED", "armed", "2026-12-01T21:00:00Z", 1.0)
        execute(
            config.server.database,
            "UPDATE devices SET telemetry = ? WHERE device_id = 'treadmill-1'",
            ('{"sample_rate_hz": NaN, "imu_ok": true}',),
        )
        client = Http(service.port)
        assert client.login() == 303
        status, _, body = client.request("GET", "/api/fleet")
        assert status == 200
        assert '"sample_rate_hz":null' in body.replace(" ", "")
