"""How any RetroGuard process reaches the broker: credentials, TLS, client construction.

The monitor's reporter, ``retroguard watch``, ``doctor`` and the caregiver
service all connect with :func:`make_client` from a :class:`BrokerLink`, so a
password file or a CA bundle is read the same way everywhere. Each config
section (the monitor's ``[mqtt]``, the caregiver's ``[mqtt]``) keeps its own
TOML keys and gives a ``BrokerLink`` through its ``link()`` method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from paho.mqtt.enums import MQTTProtocolVersion

    from core.mqtt_callbacks import CallbackFault, GuardedClient


KEEPALIVE_MAX_S = 65535
"""MQTT's keepalive is a two-byte number of seconds (3.1.2.10): paho fails to pack a larger one
in its connect thread, so the client would never connect."""
SESSION_EXPIRY_MAX_S = 2**32 - 1
"""MQTT 5's session expiry interval is a four-byte number of seconds (3.1.2.11.2)."""


def keepalive_problem(value: int) -> str | None:
    """Why ``value`` cannot be an MQTT keepalive (seconds), or None."""
    if 1 <= value <= KEEPALIVE_MAX_S:
        return None
    return f"must be between 1 and {KEEPALIVE_MAX_S} s (MQTT's keepalive is two bytes)"


class MqttSetupError(Exception):
    """The MQTT settings cannot work (missing password file, unreadable CA, bad device id)."""


@dataclass(frozen=True, slots=True)
class BrokerLink:
    """Where the broker is and how to prove who we are to it."""

    host: str
    port: int = 1883
    username: str = ""
    password: str = field(default="", repr=False)
    password_file: str = ""
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @classmethod
    def of(cls, section: LinkSettings) -> BrokerLink:
        """The link a config section names in this class's own keys (the monitor's and the
        caregiver's ``[mqtt]``): one place that copies them, so a new key reaches both."""
        return cls(
            host=section.host,
            port=section.port,
            username=section.username,
            password=section.password,
            password_file=section.password_file,
            tls=section.tls,
            ca_file=section.ca_file,
            cert_file=section.cert_file,
            key_file=section.key_file,
        )


class LinkSettings(Protocol):
    """A config section with :class:`BrokerLink`'s keys (read-only: the sections are frozen)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def password_file(self) -> str: ...
    @property
    def tls(self) -> bool: ...
    @property
    def ca_file(self) -> str: ...
    @property
    def cert_file(self) -> str: ...
    @property
    def key_file(self) -> str: ...


def password_without_user(section: LinkSettings) -> list[str]:
    """A config's ``mqtt.password`` or ``mqtt.password_file`` set without ``mqtt.username``:
    paho sends a password only with a user name, so it would be ignored without a word."""
    if section.username:
        return []
    return [
        f"mqtt.{key}: set, but mqtt.username is empty: a password is sent only with a user "
        f"name, so it would be ignored (set mqtt.username, or remove mqtt.{key})"
        for key in ("password_file", "password")
        if getattr(section, key)
    ]


LINK_FILES = ("password_file", "ca_file", "cert_file", "key_file")
"""The ``[mqtt]`` keys that name files: read relative to the config file's folder."""


def files_beside(section: LinkSettings, folder: Path) -> dict[str, Any]:
    """The section's relative file names (:data:`LINK_FILES`) made paths in ``folder``.

    Both configs resolve them against their own file's folder, so a config reads the same
    files from any working directory (the unit's is the state directory): a ``dataclasses.
    replace`` of the section with what this returns (``Any``: its other fields' types)."""
    return {
        key: str(folder / value)
        for key in LINK_FILES
        if (value := getattr(section, key)) and not Path(value).is_absolute()
    }


def read_password(link: BrokerLink) -> str | None:
    """The broker password: ``password``, else the first line of ``password_file``, else None."""
    if link.password:
        return link.password
    if link.password_file:
        try:
            with open(link.password_file, encoding="utf-8") as fh:
                return fh.readline().rstrip("\r\n")
        except OSError as exc:
            raise MqttSetupError(
                f"mqtt.password_file: cannot read {link.password_file}: {exc.strerror or exc}"
            ) from None
        except UnicodeDecodeError as exc:
            raise MqttSetupError(
                f"mqtt.password_file: {link.password_file}: byte {exc.start} is not UTF-8 "
                "(save it as UTF-8 text)"
            ) from None
        except ValueError:  # a NUL in the path
            raise MqttSetupError(
                f"mqtt.password_file: {link.password_file!r} is not a file name"
            ) from None
    return None


def make_client(
    link: BrokerLink,
    client_id: str,
    *,
    will: tuple[str, str] | None = None,
    protocol: MQTTProtocolVersion | None = None,
    manual_ack: bool = False,
    on_fault: Callable[[CallbackFault], None] | None = None,
) -> GuardedClient:
    """A paho client with credentials, TLS and Last Will from ``link`` (not yet connected).

    Its callbacks cannot end paho's thread (:class:`core.mqtt_callbacks.GuardedClient`): one
    that raises is logged, told to ``on_fault`` (the owner says it where people look) and
    the connection is started again, so nothing it was handling is lost; the same fault
    again holds its message on a connection that goes on (or, with no message, reconnects
    later each time), so one poisoned message cannot hold every message behind it.

    ``manual_ack``: the caller acknowledges each QoS 1 message itself
    (``client.ack``), after it has done what the message asked — committed it.
    ``protocol`` defaults to MQTT 5. paho (and ssl) load here, not with the config types,
    so a monitor without a broker never imports them.
    """
    import ssl

    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    from core.mqtt_callbacks import GuardedClient, no_one_told

    client = GuardedClient(
        CallbackAPIVersion.VERSION2,
        on_fault=on_fault or no_one_told,
        client_id=client_id,
        protocol=protocol if protocol is not None else MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )
    if link.username:
        client.username_pw_set(link.username, read_password(link))
    if link.tls:
        for key in ("ca_file", "cert_file", "key_file"):
            value = getattr(link, key)
            if not value:
                continue
            try:
                is_file = Path(value).is_file()
                if is_file:  # one this user may not read: OpenSSL's error names no file
                    with open(value, "rb"):
                        pass
            except OSError as exc:  # a name too long, a folder above it not to be entered
                raise MqttSetupError(f"mqtt.{key}: cannot read {value}: {exc.strerror}") from None
            if not is_file:
                what = "a directory, not a file" if Path(value).is_dir() else "no such file"
                raise MqttSetupError(f"mqtt.{key}: {what}: {value}")
        try:
            client.tls_set(
                ca_certs=link.ca_file or None,
                certfile=link.cert_file or None,
                keyfile=link.key_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise MqttSetupError(f"mqtt: TLS setup failed: {exc}") from None
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    return client
