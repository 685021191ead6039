"""The config a doc shows is one the program takes: docs/caregiver.md's ``caregiver.toml``
loads as written, with the values it says (a key renamed or a bound tightened would make the
documented file refused at the service's start); and docs/mqtt.md's topic table, schema list
and account list, the schemas' device id and docs/mqtt/mosquitto.acl name every topic kind of
core.protocol.topics as the code has them (a kind added without its row, schema or ACL line
fails here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from caregiver.config import load_config
from core.protocol.commands import COMMANDS
from core.protocol.ids import DEVICE_ID_PATTERN
from core.protocol.topics import TopicKind, Topics
from firmware.mqtt.discovery import discovery_payload

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


MQTT_DOC = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
SCHEMA_DIR = ROOT / "docs" / "mqtt" / "schemas"
ACL = (ROOT / "docs" / "mqtt" / "mosquitto.acl").read_text(encoding="utf-8")

# The topic kinds with a level after the kind: its name in docs and the ACL's wildcard.
_SUBTOPIC = {TopicKind.COMMAND: ("<name>", "+"), TopicKind.STAGE: ("<walker>", "+")}
# What a device publishes: every kind but what is sent to it.
_DEVICE_PUBLISHES = [k for k in TopicKind if k not in (TopicKind.COMMAND, TopicKind.RECEIPT)]


def _level(kind: TopicKind, *, acl: bool) -> str:
    if kind in _SUBTOPIC:
        return f"{kind.value}/{_SUBTOPIC[kind][1 if acl else 0]}"
    return kind.value


def test_the_topic_table_in_docs_mqtt_md_has_a_row_for_every_topic_kind() -> None:
    """A kind added to core.protocol.topics without its row leaves a technician a topic the
    reference does not name (stage/<walker> is the newest)."""
    missing = [
        kind.value
        for kind in TopicKind
        if f"| `<prefix>/<id>/{_level(kind, acl=False)}` |" not in MQTT_DOC
    ]
    assert missing == []


def test_every_schema_file_is_named_in_docs_mqtt_md_and_every_named_one_exists() -> None:
    named = set(re.findall(r"([a-z_]+\.schema\.json)", MQTT_DOC))
    files = {path.name for path in SCHEMA_DIR.glob("*.schema.json")}
    assert files - named == set(), "a schema docs/mqtt.md does not name"
    assert named - files == set(), "docs/mqtt.md names a schema that is not there"


def test_every_schema_s_device_id_is_the_protocol_s_pattern() -> None:
    """The type and the documented schemas refuse the same ids ('.' and '..' among them)."""
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        properties = json.loads(path.read_text(encoding="utf-8")).get("properties", {})
        if "device_id" in properties:
            assert properties["device_id"]["pattern"] == DEVICE_ID_PATTERN, path.name


def _acl_rules(heading: str | None, text: str | None = None) -> list[str]:
    """The rule lines of ACL ``text``'s (the documented ACL's) ``user`` block ``heading``, or
    its ``pattern`` lines for ``heading`` None."""
    rules: list[str] = []
    user: str | None = None
    for line in (line.strip() for line in (ACL if text is None else text).splitlines()):
        if line.startswith("user "):
            user = line.removeprefix("user ")
        elif line.startswith(("topic ", "pattern ")) and user == heading:
            rules.append(line)
    return rules


def test_the_acl_lets_each_account_what_docs_mqtt_md_says_for_every_topic_kind() -> None:
    """docs/mqtt/mosquitto.acl (what the installer puts in place) against the topic kinds: a
    device writes each kind it publishes, the caregiver reads them all but the device's view
    of it, Home Assistant what the caregiver reads but walkers and stages, plus caregiver; and
    docs/mqtt.md's account list names each of the device's."""
    device = {f"pattern write retroguard/%u/{_level(k, acl=True)}" for k in _DEVICE_PUBLISHES}
    assert device <= set(_acl_rules(None))
    caregiver_reads = [k for k in _DEVICE_PUBLISHES if k is not TopicKind.CAREGIVER]
    reads = {f"topic read retroguard/+/{_level(k, acl=True)}" for k in caregiver_reads}
    assert {r for r in _acl_rules("caregiver") if r.startswith("topic read ")} == reads
    ha_kinds = [k for k in _DEVICE_PUBLISHES if k not in (TopicKind.WALKERS, TopicKind.STAGE)]
    ha_reads = {f"topic read retroguard/+/{_level(k, acl=True)}" for k in ha_kinds}
    ha_reads.add("topic read homeassistant/#")
    ha_reads.add("topic read retroguard/caregiver/health/+")  # the service's Database sensor
    assert {r for r in _acl_rules("homeassistant") if r.startswith("topic read ")} == ha_reads
    bullet = MQTT_DOC.split("* each **device** account", 1)[1].split("\n* ", 1)[0]
    said = set(re.findall(r"`([a-z_/+]+)`", bullet.split("read only its", 1)[0]))
    assert {_level(k, acl=True) for k in _DEVICE_PUBLISHES} <= said


def test_every_home_assistant_entity_is_named_in_docs_mqtt_md() -> None:
    """Each named entity of the discovery message (all announced: telemetry and a caregiver
    service expected) is in docs/mqtt.md's Home Assistant section in bold, as its table and
    notes name them, and the section names no entity the device does not announce."""
    payload = json.loads(discovery_payload(Topics("retroguard", "tm-1"), "Tm", "https://x/"))
    names = {c["name"] for c in payload["cmps"].values() if c.get("name")}
    section = MQTT_DOC.split("## Home Assistant", 1)[1].split("\n## ", 1)[0]
    table = section.split("| Entity | Kind | From | Shows |", 1)[1].split("\n\n", 1)[0]
    assert names - set(re.findall(r"\*\*([^*]+)\*\*", section)) == set()
    assert set(re.findall(r"^\| \*\*([^*]+)\*\*", table, re.MULTILINE)) <= names


def test_docs_provider_md_gives_each_instance_the_acl_s_caregiver_rules() -> None:
    """The ``user caregiver-a``/``caregiver-b`` blocks docs/provider.md says to append are the
    ACL's ``caregiver`` block line for line (tests/test_caregiver_instances.py loads them on a
    broker too, but only where PostgreSQL is installed)."""
    doc = (ROOT / "docs" / "provider.md").read_text(encoding="utf-8")
    start = doc.index("  ```\n  user caregiver-a\n") + len("  ```\n")
    appended = doc[start : doc.index("  ```\n", start)]
    for account in ("caregiver-a", "caregiver-b"):
        assert _acl_rules(account, appended) == _acl_rules("caregiver"), account


def test_every_command_has_a_row_in_docs_mqtt_md_and_a_name_in_its_schema() -> None:
    """A command the device takes (core.protocol.commands) is in the Commands table and the
    schema's title, and neither names one it does not take."""
    section = MQTT_DOC.split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))
    assert rows == set(COMMANDS)
    title = json.loads((SCHEMA_DIR / "command.schema.json").read_text(encoding="utf-8"))["title"]
    listed = re.search(r"name one of ([a-z_, ]+)\)", title)
    assert listed is not None, "command.schema.json's title lost its list of names"
    assert set(listed.group(1).split(", ")) == set(COMMANDS)
