"""Everything ``retroguard caregiver`` needs from its config, checked before anything is opened.

``retroguard caregiver config --check`` and the service's start (``retroguard caregiver``)
call the same :func:`preflight`, so the check refuses exactly what a start would refuse, with
the same lines and exit status 2 (the unit's ``RestartPreventExitStatus``: no restart cures
a config), as the monitor's ``config --check`` and ``run`` share :mod:`firmware.preflight`.
Beyond what the TOML loader checks (:func:`caregiver.config.load_config`: keys, types,
ranges, the database URL, cross-field rules) it reads what the start would read before it
opens the database or reaches the broker: the SQLite file's header (a file that is not one
is refused before SQLite answers it with a traceback) and the broker client with its
password file and TLS files (:func:`core.mqttlink.make_client`, as ingest builds it). Before,
an unreadable ``password_file`` or a missing ``ca_file`` was found only by ingest's start:
after the database was created or migrated, as a traceback, and with exit status 1, so the
unit restarted the service every 2 s to fail the same way.

It opens no database, connects to nothing and writes nothing: a check may be run on a live
service's config, as root or as the service's user, at any time.

Warnings are what a start survives but a person should know; the start logs them, the check
prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import ConfigError

if TYPE_CHECKING:
    from caregiver.config import CaregiverConfig

NO_CONTACTS_WARNING = "no [[contacts]] configured: alerts are shown on the dashboard only"
SHARED_GROUP_ON_SQLITE_WARNING = (
    "[mqtt] shared_group is set but the database is a SQLite file: the instances of a group "
    "need one postgresql:// database to share (docs/provider.md)"
)


@dataclass(frozen=True, slots=True)
class Checked:
    """A config a start takes, and what it says about it."""

    config: CaregiverConfig
    warnings: tuple[str, ...] = ()


def database_refusal(config: CaregiverConfig) -> str | None:
    """The line every command refuses a SQLite ``[server] database`` with that is not one (a
    directory, unreadable, another kind of file), read from its header before SQLite opens
    it; None when it is one, is empty, is not there yet, or is a PostgreSQL URL."""
    from caregiver.storage.engines import engine_of
    from core.dbfile import database_file_problem

    database = config.server.database
    if engine_of(database) != "sqlite":
        return None
    problem = database_file_problem(database)
    return None if problem is None else f"retroguard caregiver: [server] database: {problem}"


def _broker_problem(config: CaregiverConfig) -> str | None:
    """Why ingest could not build its broker client (a password file it cannot read, a TLS
    file missing or not a certificate), or None. Built, never connected: paho connects only
    when asked, and this client is dropped unasked."""
    from core.mqttlink import MqttSetupError, make_client

    try:
        make_client(config.mqtt.link(), config.mqtt.client_id)
    except MqttSetupError as exc:
        return str(exc)
    return None


def _discovery_ignored(config: CaregiverConfig) -> str | None:
    """Home Assistant would ignore the service's discovery (its id is ``caregiver-<name>``):
    a ``.`` in the name, which its topics and the ACL take (as a treadmill's id, whose check
    says the same: :mod:`firmware.preflight`)."""
    from caregiver.health_discovery import discovery_object_id
    from core.protocol.ids import discovery_id_problem

    mqtt = config.mqtt
    ignored = discovery_id_problem(discovery_object_id(mqtt)) if mqtt.discovery else None
    if ignored is None:
        return None
    key = "mqtt.username" if mqtt.username else "mqtt.client_id"
    return (
        f"{key}: {ignored}: the service's Database sensor would not appear there; name it "
        "with those only, or set mqtt.discovery = false"
    )


def preflight(config: CaregiverConfig, source: str) -> Checked:
    """``config`` (as :func:`caregiver.config.load_config` read it from ``source``) checked
    for what the service's start needs before it opens the database or the broker; raises
    :class:`ConfigError` with every problem, each one line."""
    from caregiver.storage.engines import engine_of

    problems = []
    refusal = database_refusal(config)
    if refusal is not None:
        problems.append(refusal)
    broker = _broker_problem(config)
    if broker is not None:
        problems.append(f"{source}: {broker}")
    if problems:
        raise ConfigError(problems)
    warnings = []
    if not config.contacts:
        warnings.append(NO_CONTACTS_WARNING)
    if config.mqtt.shared_group and engine_of(config.server.database) == "sqlite":
        warnings.append(SHARED_GROUP_ON_SQLITE_WARNING)
    if (ignored := _discovery_ignored(config)) is not None:
        warnings.append(ignored)
    return Checked(config, tuple(f"{source}: {w}" for w in warnings))
