"""The caregiver service's TOML config, in the monitor's style (see :mod:`firmware.config`).

Sections map onto frozen dataclasses; the loader walks their fields, so a new
field needs no loader code: its type and default are the schema. Every
problem is collected and reported as ``file: key: what is wrong``, all at once.

```toml
[server]
port = 8080
public_url = "http://carepc.home.lan:8080"
timezone = "Europe/Berlin"

[mqtt]
host = "broker.home.lan"
username = "caregiver"
password_file = "/etc/retroguard/caregiver-mqtt-password"

[[contacts]]
name = "Ann"
urls = ["ntfy://ntfy.sh/ann-retroguard", "mailto://ann:pw@example.com"]
```
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.errors import ConfigError
from core.protocol.messages import RECEIPT_BY_MAX
from core.protocol.topics import share_group_problem, text_problem, topic_level_problem
from core.writable import written_path_problem

if TYPE_CHECKING:  # the notifier process decodes a config, never connects or reads TOML
    from core.mqttlink import BrokerLink

Action = Literal["page", "page_unless_reset", "log"]
"""What an alert of one kind does: page at once; page only if the walker has not reset the
device within ``policy.reset_grace_s``; or only log and show it on the dashboard."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    """Address the dashboard listens on ("0.0.0.0" for the whole LAN; put HTTPS in front)."""
    port: int = 8080
    database: str = "/var/lib/retroguard/caregiver.db"
    """The service's own database: a SQLite file (relative paths are relative to the config
    file), or a PostgreSQL URL, ``postgresql://user@host:port/dbname``, for several instances
    sharing one database (docs/provider.md; the password in ``~/.pgpass`` or ``passfile=``)."""
    public_url: str = ""
    """Base URL used in notification links ("" = http://<host>:<port>)."""
    secure_cookies: bool = False
    """Mark the session cookie Secure (set true when the dashboard is served over HTTPS)."""
    session_hours: float = 12.0
    """A login lasts this long."""
    login_attempts: int = 5
    """Failed logins per account *and* client address before each next attempt from there waits
    (1 s, 2 s, 4 s ... up to 5 min). Another address, or another account, is not slowed; an
    account failing from many addresses at once is slowed for at most 30 s."""
    login_window_s: float = 300.0
    """Failed logins are forgotten after this."""
    timezone: str = ""
    """IANA time zone ("Europe/Berlin") for the times notifications and the pages state, and
    the weeks of a device that names no zone of its own (a walker's weeks are their
    treadmill's: :func:`caregiver.walkers.weeks_zone`); "" = the system's. The dashboard shows
    times in each browser's own zone."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses of reverse proxies whose X-Forwarded-For header is believed (e.g. ["127.0.0.1"]
    behind nginx on the same machine). Empty: the header is ignored, so a client cannot pick
    the address its failed logins are counted against."""


@dataclass(frozen=True, slots=True)
class CaregiverMqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    """Broker account ("caregiver" in the documented ACL; each of several instances its own,
    "caregiver-a", ...: the documented broker makes the client id the user name, so two
    instances on one account would take each other's session over, docs/provider.md)."""
    password: str = field(default="", repr=False)
    password_file: str = ""
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    topic_prefix: str = "retroguard"
    client_id: str = "retroguard-caregiver"
    """Fixed client id: the broker keeps this session (and queues QoS 1 events) while the service
    is down. Two services must not share it. The documented broker (``use_username_as_clientid``)
    ignores it and keeps the session under ``username``: see :attr:`identity`."""
    session_expiry_s: int = 7 * 24 * 3600
    """How long the broker keeps the session and its queued events after a disconnect."""
    keepalive_s: int = 30
    discovery: bool = True
    """Announce the service's database health to Home Assistant (MQTT device-based discovery:
    a **RetroGuard caregiver service** device with its **Database** problem sensor,
    :mod:`caregiver.health_discovery`); false removes an earlier announcement. The health
    message itself is published either way."""
    discovery_prefix: str = "homeassistant"
    """Home Assistant's discovery prefix (its MQTT integration setting)."""
    shared_group: str = ""
    """Several instances of the service (each its own account and ``client_id``, all on one
    ``postgresql://`` database) share the device streams through MQTT 5 shared subscriptions
    (``$share/<group>/...``) when they name the same group here: the broker hands each event,
    session summary, reply and telemetry message to one of them. Availability and state are
    retained, and every instance subscribes to them itself. "" (the default): one instance
    takes everything (docs/provider.md)."""

    @property
    def identity(self) -> str:
        """Who this service says it is: the ``by`` of its presence (``<prefix>/caregiver/status``,
        its Last Will included) and of its receipts. Its account when it logs in with one, else
        its ``client_id``: on the documented broker (``use_username_as_clientid``) the client id
        the broker gives it *is* its user name, whatever ``client_id`` says, so the presence
        names what the broker's log and a device's log name. And instances on accounts of their
        own are told apart even when they keep one ``client_id`` (the default): an instance
        takes a presence saying its own name for its own Last Will and leaves it unanswered
        (``caregiver.ingest``), so another instance's crash read as nobody paging while it
        still received every alert."""
        return self.username or self.client_id

    def link(self) -> BrokerLink:
        """The connection settings, for :func:`core.mqttlink.make_client`."""
        from core.mqttlink import BrokerLink

        return BrokerLink.of(self)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    fall: Action = "page"
    """Falls always page (anything else is refused)."""
    no_recovery: Action = "page"
    """No-recovery alerts always page (anything else is refused)."""
    fault: Action = "page"
    stumble: Action = "page_unless_reset"
    offline_while_armed: Action = "page"
    """The device went offline (or its Last Will fired) while its last state was ARMED."""
    reset_grace_s: float = 30.0
    """For page_unless_reset: how long the walker has to press reset before it pages."""


@dataclass(frozen=True, slots=True)
class EscalationConfig:
    ack_timeout_s: float = 300.0
    """An alert not acknowledged within this time is sent again / to the next contact."""
    resends: int = 1
    """Times an unanswered alert is sent again to the same contact before moving on."""
    retry_s: float = 30.0
    """A failed delivery (service down, network) is retried after this, doubling each time."""
    max_attempts: int = 6
    """Delivery attempts for one message before it is given up (logged)."""


@dataclass(frozen=True, slots=True)
class Contact:
    name: str = ""
    """Who this is, in messages and logs; unique among the contacts (:func:`parse_config`):
    queued messages are addressed by it (:func:`caregiver.outbox.addressee`), not by the
    contact's place in the list. A contact without one is known by its URLs alone."""
    urls: tuple[str, ...] = ()
    """Apprise URLs: mailto://, tgram://, signal://, ntfy://, pover://, json://, ..."""


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """How long the database keeps what grows with use; the rest is kept for good.

    Incidents, their events and who closed them stay (a few hundred bytes each: the
    history a physiotherapist reads). What is large or only operational goes: the IMU
    recordings, the delivered notifications log, routine events outside any incident.
    Freed pages go back to the disk (SQLite incremental vacuum) at each sweep.
    """

    recordings_days: float = 365.0
    """IMU recordings (about 10 kB each) are deleted this long after they arrived; 0 keeps them."""
    notifications_days: float = 90.0
    """Sent and failed notifications are deleted after this; 0 keeps them."""
    routine_events_days: float = 180.0
    """Start, stop, reset and test events outside an incident are deleted after this; 0 keeps
    them."""
    sweep_hours: float = 6.0
    """How often the sweep runs (and once at start)."""


@dataclass(frozen=True, slots=True)
class CaregiverConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    mqtt: CaregiverMqttConfig = field(default_factory=CaregiverMqttConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    escalation: EscalationConfig = field(default_factory=EscalationConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    contacts: tuple[Contact, ...] = ()
    """In escalation order: the first is paged first."""
    devices: dict[str, str] = field(default_factory=dict)
    """Display names: device id = "Dad's treadmill"."""

    @property
    def zone(self) -> dt.tzinfo:
        """``[server] timezone`` (checked when the file was read), or the system's zone."""
        from core.zones import named_zone

        return named_zone(self.server.timezone)

    @property
    def base_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        return f"http://{self.server.host}:{self.server.port}"


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


SESSION_HOURS_MAX = 400 * 24
"""The longest a login may be set to last: 400 days, the most a browser keeps a cookie
(RFC 6265bis caps Max-Age there; Chrome does). Unbounded, ``session_hours = 1e306`` was taken
and every login then failed with a traceback: its cookie's Max-Age, int(inf), overflowed."""


def _session_hours(value: Any) -> str | None:
    if 0 < value <= SESSION_HOURS_MAX:
        return None
    return f"must be in (0, {SESSION_HOURS_MAX}] h (a browser keeps a cookie 400 days at most)"


def _not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must not be negative"


RESET_GRACE_MAX_S = 3600.0
"""The longest a stumble may wait for the walker's reset before it pages: an hour. The grace
is for a walker who stumbled, caught themselves and presses "I'm OK" (seconds); a walker who
has not pressed it an hour after the belt stopped needs someone. Unbounded, ``1e12`` was taken:
nobody was paged for a stumble, and the dashboard's timer for the held stumble's paging time
(JavaScript's ``setTimeout``, which fires at once past 2**31 - 1 ms, 24.8 days) asked the
service again in a loop."""


def _reset_grace(value: Any) -> str | None:
    if 0 <= value <= RESET_GRACE_MAX_S:
        return None
    return (
        f"must be between 0 and {RESET_GRACE_MAX_S:.0f} s: a stumble the walker has not reset "
        "within an hour pages"
    )


def _must_page(value: Any) -> str | None:
    return None if value == "page" else "must be 'page': falls and no-recovery alerts always page"


def _share_group(value: Any) -> str | None:
    return None if value == "" else share_group_problem(value)


def _database(value: Any) -> str | None:
    # imported here: the notifier process decodes a config without the store's modules
    from caregiver.storage.engines import database_problem

    return database_problem(value)


def _zone(value: Any) -> str | None:
    from core.zones import named_zone

    try:
        named_zone(value)
    except ValueError as exc:
        return str(exc)
    return None


def _keepalive(value: Any) -> str | None:
    from core.mqttlink import keepalive_problem

    return keepalive_problem(value)


def _session_expiry(value: Any) -> str | None:
    from core.mqttlink import SESSION_EXPIRY_MAX_S

    if 0 <= value <= SESSION_EXPIRY_MAX_S:
        return None
    return f"must be between 0 and {SESSION_EXPIRY_MAX_S} s (MQTT 5's session expiry is 4 bytes)"


def _client_id(value: Any) -> str | None:
    if not value.strip():
        return "must not be empty: the broker keeps the service's session under it"
    return _name_problem(value)


def _name_problem(value: Any) -> str | None:
    """The service's name on the broker (its account, else its client id) signs every receipt
    it sends (:attr:`CaregiverMqttConfig.identity`): a device refuses a receipt whose name is
    longer than :data:`RECEIPT_BY_MAX`, and with it the ids it names, so every alert would
    have been sent again and again and never let go of."""
    if len(value) > RECEIPT_BY_MAX:
        return (
            f"at most {RECEIPT_BY_MAX} characters, not {len(value)}: the devices refuse "
            "receipts signed with a longer name"
        )
    return text_problem(value)


def identity_problem(mqtt: CaregiverMqttConfig) -> str | None:
    """Why the service's name on the broker (:attr:`CaregiverMqttConfig.identity`) cannot
    name its own topics, as ``key: what is wrong``, or None. The name is, as it is, one level of
    its database health topic (``<prefix>/caregiver/health/<name>``) and of its Home Assistant
    discovery topic, the two topics the documented ACL lets only the account of that name
    write (``%u``). Before, a name with other characters went into them with each one
    changed to ``_``: the broker refused the health of every such instance, and nothing but
    the broker's log said so.

    Only what no topic level can carry is refused (a ``/``, ``+`` or ``#``, surrounding
    spaces, control characters: :func:`core.protocol.topics.topic_level_problem`; Mosquitto
    also applies no ``%u`` pattern to an account with a wildcard in its name). A hosted
    broker's account such as ``care@clinic.example`` is a topic level the ACL matches, and
    the service pages with it as before; that Home Assistant ignores a discovery id with
    characters other than ``A-Z a-z 0-9 _ -`` is a warning (:mod:`caregiver.preflight`), not
    a reason to stop the service that pages for falls."""
    problem = topic_level_problem(mqtt.identity)
    if problem is None:
        return None
    key = "mqtt.username" if mqtt.username else "mqtt.client_id"
    return (
        f"{key}: {mqtt.identity!r} cannot name this service's topics: it {problem}. It is "
        "one level of its health topic (<prefix>/caregiver/health/<name>) and of its Home "
        "Assistant discovery topic, which the broker's ACL lets only the account of that name "
        "write"
    )


def _port(value: Any) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port (0-65535)"


_CHECKS: dict[str, typing.Callable[[Any], str | None]] = {
    "server.port": _port,
    "server.database": _database,
    "server.timezone": _zone,
    "server.session_hours": _session_hours,
    "server.login_attempts": _positive,
    "server.login_window_s": _positive,
    "mqtt.port": _port,
    "mqtt.session_expiry_s": _session_expiry,
    "mqtt.keepalive_s": _keepalive,
    "mqtt.topic_prefix": topic_level_problem,
    "mqtt.discovery_prefix": topic_level_problem,
    "mqtt.client_id": _client_id,
    "mqtt.username": _name_problem,
    "mqtt.shared_group": _share_group,
    "policy.fall": _must_page,
    "policy.no_recovery": _must_page,
    "policy.reset_grace_s": _reset_grace,
    "escalation.ack_timeout_s": _positive,
    "escalation.resends": _not_negative,
    "escalation.retry_s": _positive,
    "escalation.max_attempts": _positive,
    "retention.recordings_days": _not_negative,
    "retention.notifications_days": _not_negative,
    "retention.routine_events_days": _not_negative,
    "retention.sweep_hours": _positive,
}


def parse_config(data: Mapping[str, Any], source: str = "<config>") -> CaregiverConfig:
    """Validate a parsed TOML mapping; raise :class:`ConfigError` listing every problem."""
    from core import tomlschema
    from core.mqttlink import password_without_user

    problems: list[str] = []
    config = tomlschema.build(CaregiverConfig, data, problems, _CHECKS)
    if not problems:
        named: dict[str, int] = {}
        for i, contact in enumerate(config.contacts):
            if not contact.urls:
                problems.append(f"contacts[{i}].urls: give at least one Apprise URL")
            first = named.setdefault(contact.name, i) if contact.name else i
            if first != i:
                problems.append(
                    f"contacts[{i}].name: {contact.name!r} is also contacts[{first}]'s "
                    "name: give each contact its own (queued messages are addressed by it, so "
                    "that reordering the list does not page someone else)"
                )
        problems.extend(password_without_user(config.mqtt))
        if (problem := identity_problem(config.mqtt)) is not None:
            problems.append(problem)
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    assert isinstance(config, CaregiverConfig)
    return config


def load_config(path: str | Path) -> CaregiverConfig:
    """Read and validate a caregiver TOML file.

    A relative SQLite database and relative ``[mqtt]`` files (password, CA, certificate, key)
    are next to the file, as in the monitor's config: the unit runs in the state directory, so
    ``password_file = "caregiver-mqtt-password"`` beside /etc/retroguard/caregiver.toml would
    otherwise be looked for in /var/lib/retroguard."""
    from caregiver.storage.engines import engine_of
    from core import tomlschema
    from core.mqttlink import files_beside

    path = Path(path)
    data = tomlschema.read_toml(path)
    config = parse_config(data, str(path))
    mqtt_files = files_beside(config.mqtt, path.parent)
    if mqtt_files:
        config = dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt, **mqtt_files))
    db = Path(config.server.database)
    if engine_of(config.server.database) != "sqlite":
        return config
    if not db.is_absolute():
        server = dataclasses.replace(config.server, database=str(path.parent / db))
        config = dataclasses.replace(config, server=server)
    # /etc/retroguard/caregiver.toml's "caregiver.db" is /etc/retroguard/caregiver.db, which
    # the unit can never write, whoever runs this check (core/writable.py).
    problem = written_path_problem(
        "server.database",
        config.server.database,
        "name a file in the state directory, e.g. /var/lib/retroguard/caregiver.db",
    )
    if problem is not None:
        raise ConfigError([f"{path}: {problem}"])
    return config
