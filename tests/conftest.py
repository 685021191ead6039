"""Shared fixtures.

``mosquitto``: a real Mosquitto on a free 127.0.0.1 port for one test (the
MQTT tests' promises are the broker's behaviour, so no fake). Tests that
need it are skipped with a clear reason when the Debian package is absent;
``scripts/test.sh`` installs it.

``disk``: the courier's disk, made fillable on command
(:class:`tests.storage_support.FillableDisk`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.storage_support import FillableDisk
from tools.broker import Mosquitto, mosquitto_available


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``retroguard`` CLI calls in tests install their own log handler; undo it after each test."""
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
        broker.cleanup()


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FillableDisk:
    """Every connection the courier's database opens to its file can be made to find it full."""
    fillable = FillableDisk()
    monkeypatch.setattr("firmware.storage.fallback.connect", fillable.connect)
    return fillable
