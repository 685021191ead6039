"""The config a doc shows is one the program takes: docs/caregiver.md's ``caregiver.toml``
loads as written, with the values it says (a key renamed or a bound tightened would make the
documented file refused at the service's start)."""

from __future__ import annotations

import re
from pathlib import Path

from caregiver.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def test_the_caregiver_config_in_docs_caregiver_md_loads_as_written(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "caregiver.md").read_text(encoding="utf-8")
    section = text.split("## Config (`caregiver.toml`)", 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert match is not None, "docs/caregiver.md lost its caregiver.toml example"
    path = tmp_path / "caregiver.toml"
    path.write_text(match.group(1), encoding="utf-8")
    config = load_config(path)
    assert (config.server.host, config.server.port, config.server.secure_cookies) == (
        "0.0.0.0",
        8080,
        True,
    )
    # The service's state directory, as installed: a relative name would land beside the file,
    # in /etc/retroguard, which the service may not write (refused at load).
    assert config.server.database == "/var/lib/retroguard/caregiver.db"
    assert (config.mqtt.port, config.mqtt.tls, config.mqtt.username) == (8883, True, "caregiver")
    assert [c.name for c in config.contacts] == ["Ann", "Clinic desk"]
    assert config.devices == {"treadmill-1": "Dad's treadmill"}
