"""MQTT topics: built and parsed in one place, so firmware, consumers, docs and the ACL agree.

Every device owns one subtree, ``<prefix>/<device_id>/#``: the broker ACL
(``docs/mqtt/mosquitto.acl``) confines a device account to exactly that
subtree, so a device id must be a single, wildcard-free topic level
(:func:`core.protocol.ids.check_device_id`). Consumers never split topics
themselves: :func:`parse_topic` says which device and which kind of message
a topic carries, or that it is none of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.protocol.ids import is_device_id
from core.protocol.walker import is_walker_id


class TopicKind(StrEnum):
    """The last level(s) of a device topic: what kind of message it carries."""

    AVAILABILITY = "availability"
    """Retained ``online`` / ``offline`` (plain text); ``offline`` is also the Last Will."""
    STATE = "state"
    """Retained safety state and why."""
    EVENT = "event"
    """QoS 1 event stream, not retained: each event is delivered, not overwritten."""
    TELEMETRY = "telemetry"
    """Periodic health figures."""
    SESSION = "session"
    """QoS 1 summary of each guided session when it ends."""
    REPLY = "reply"
    """Every command's reply, matched to the request by its id."""
    RECEIPT = "receipt"
    """From an alert consumer (the caregiver service): these alerts are committed on its side;
    the device may forget them (see :class:`core.protocol.messages.ReceiptMessage`)."""
    COMMAND = "cmd"
    """``<base>/cmd/<name>``: commands to the device (none can arm)."""
    INCIDENT = "incident"
    """Retained: the open incident (id, severity), or that none is open — what a consumer that
    starts late (Home Assistant after a restart) needs without replaying the event stream."""
    PROGRESS = "progress"
    """Retained: the guided session's state and this week's progress toward the goal."""
    WALKERS = "walkers"
    """Retained: the treadmill's walker profiles (``retroguard walker``), so the dashboard can
    offer a plan to a walker who has not walked yet. Information only: walkers are added,
    removed and chosen at the treadmill, never from the network."""
    CAREGIVER = "caregiver"
    """Retained: what the device hears of the caregiver service (online, offline, unknown) and
    the age of its oldest alert still waiting for the service's receipt
    (:class:`core.protocol.messages.CaregiverLinkMessage`)."""
    STAGE = "stage"
    """``<base>/stage/<walker>``, retained, one per walker with a progression: where they are
    on it (:class:`core.protocol.messages.StageMessage`). Information only."""


CONSUMED_KINDS = (
    TopicKind.AVAILABILITY,
    TopicKind.STATE,
    TopicKind.EVENT,
    TopicKind.TELEMETRY,
    TopicKind.REPLY,
    TopicKind.SESSION,
)
"""What a consumer of every device (the caregiver service) subscribes to."""

RETAINED_KINDS = (TopicKind.AVAILABILITY, TopicKind.STATE)
"""Consumed kinds a device publishes retained: a consumer that starts late learns them on
subscribing. A broker never sends retained messages to a shared subscription (MQTT 5, 4.8.2),
so consumers sharing the stream subscribe to these each on their own."""


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A parsed topic: which device, which kind, the command name for ``cmd`` topics and the
    walker for ``stage`` topics."""

    device_id: str
    kind: TopicKind
    command: str | None = None
    walker: str | None = None


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one device."""

    prefix: str
    device_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device_id}"

    def of(self, kind: TopicKind) -> str:
        return f"{self.base}/{kind.value}"

    @property
    def availability(self) -> str:
        return self.of(TopicKind.AVAILABILITY)

    @property
    def state(self) -> str:
        return self.of(TopicKind.STATE)

    @property
    def event(self) -> str:
        return self.of(TopicKind.EVENT)

    @property
    def telemetry(self) -> str:
        return self.of(TopicKind.TELEMETRY)

    @property
    def session(self) -> str:
        return self.of(TopicKind.SESSION)

    @property
    def incident(self) -> str:
        return self.of(TopicKind.INCIDENT)

    @property
    def progress(self) -> str:
        return self.of(TopicKind.PROGRESS)

    @property
    def walkers(self) -> str:
        return self.of(TopicKind.WALKERS)

    @property
    def caregiver(self) -> str:
        return self.of(TopicKind.CAREGIVER)

    def stage(self, walker: str) -> str:
        """``<base>/stage/<walker>``: ``walker``'s progression (a walker id: one topic level)."""
        return f"{self.of(TopicKind.STAGE)}/{walker}"

    @property
    def command_filter(self) -> str:
        return f"{self.base}/cmd/+"

    def command(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    @property
    def reply(self) -> str:
        return self.of(TopicKind.REPLY)

    @property
    def receipt(self) -> str:
        return self.of(TopicKind.RECEIPT)

    def command_name(self, topic: str) -> str | None:
        """The ``<name>`` of a ``.../cmd/<name>`` topic of this device, else None."""
        try:
            parsed = parse_topic(self.prefix, topic)
        except BadTopic:
            return None
        if parsed is None or parsed.device_id != self.device_id:
            return None
        return parsed.command


CAREGIVER_LEVEL = "caregiver"
"""The second level of the caregiver service's own topics: the service's account name in the
documented ACL, which no device id may be."""


def caregiver_status_topic(prefix: str) -> str:
    """``<prefix>/caregiver/status``: the caregiver service's retained presence
    (:class:`core.protocol.messages.CaregiverStatusMessage`), with its Last Will."""
    return f"{prefix}/{CAREGIVER_LEVEL}/status"


def caregiver_health_topic(prefix: str, instance: str) -> str:
    """``<prefix>/caregiver/health/<instance>``: one caregiver service instance's retained
    database health (:class:`core.protocol.messages.CaregiverHealthMessage`). One topic an
    instance: instances sharing the devices (docs/provider.md) each say their own, where one
    topic would say whichever spoke last. ``instance``: its name on the broker (its account,
    else its client id) as it is, which the documented ACL's pattern on the account's name
    must match (the service's config refuses a name that cannot be one level:
    :func:`caregiver.config.identity_problem`)."""
    return f"{prefix}/{CAREGIVER_LEVEL}/health/{instance}"


def all_devices(prefix: str, kind: TopicKind) -> str:
    """Subscription filter for one kind of message from every device (every walker's, for
    ``stage``)."""
    if kind is TopicKind.STAGE:
        return f"{prefix}/+/{kind.value}/+"
    return f"{prefix}/+/{kind.value}"


def shared(group: str, topic_filter: str) -> str:
    """The MQTT 5 shared subscription to ``topic_filter`` for consumers in ``group``: the
    broker gives each matching message to one member of the group, not to all of them."""
    return f"$share/{group}/{topic_filter}"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be an MQTT string (a topic, client id or user name), or None.

    MQTT's strings are UTF-8 without U+0000 (3.1.3), and Mosquitto drops a client whose
    packet holds any other control character as well (U+0001-U+001F, U+007F-U+009F), or a
    Unicode noncharacter (U+FDD0-U+FDEF, each plane's last two: U+FFFE, U+FFFF, ...; MQTT 5
    1.5.4 says a string should not hold them): a client id, topic or user name with one is
    refused at every connect or publish, for ever (tests/test_mqtt_strings.py)."""
    for c in value:
        code = ord(c)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return f"must not contain control characters ({c!r}): the broker refuses them"
        if 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
            return f"must not contain Unicode noncharacters ({c!r}): the broker refuses them"
    return None


def topic_level_problem(level: str) -> str | None:
    """Why ``level`` cannot be one level of a topic we publish or subscribe to, or None."""
    if not level or any(c in level for c in "+#/") or level != level.strip():
        return "must be one topic level: not empty, no '/', '+', '#' or surrounding spaces"
    return text_problem(level)


def share_group_problem(group: str) -> str | None:
    """Why ``group`` cannot name a shared subscription group (MQTT 5, 4.8.2), or None."""
    if not group:
        return "must not be empty"
    if any(c in group for c in "/+#"):
        return "must not contain '/', '+' or '#'"
    return text_problem(group)


class BadTopic(ValueError):
    """A topic shaped like a device topic whose device id breaks the id rule."""


def parse_topic(prefix: str, topic: str) -> DeviceTopic | None:
    """Which device and kind ``topic`` is about; None when it is not a RetroGuard device topic.

    Raises :class:`BadTopic` for ``<prefix>/<id>/<kind>`` with an ``<id>`` that
    cannot be a device id, and for ``<prefix>/<id>/stage/<walker>`` with a ``<walker>`` that
    cannot be a walker id: the shape is ours, the sender is broken (or hostile).
    """
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != prefix:
        return None
    device_id, rest = parts[1], parts[2:]
    walker = None
    if len(rest) == 2 and rest[0] == TopicKind.COMMAND.value:
        kind, command = TopicKind.COMMAND, rest[1]
    elif len(rest) == 2 and rest[0] == TopicKind.STAGE.value:
        kind, command, walker = TopicKind.STAGE, None, rest[1]
    elif len(rest) == 1 and rest[0] in _PLAIN_KINDS:
        kind, command = TopicKind(rest[0]), None
    else:
        return None
    if not is_device_id(device_id):
        raise BadTopic(f"{topic}: {device_id!r} is not a device id")
    if walker is not None and not is_walker_id(walker):
        raise BadTopic(f"{topic}: {walker!r} is not a walker id")
    return DeviceTopic(device_id, kind, command, walker)


_PLAIN_KINDS = frozenset(
    k.value for k in TopicKind if k not in (TopicKind.COMMAND, TopicKind.STAGE)
)


def discovery_topic(discovery_prefix: str, device_id: str) -> str:
    """Home Assistant device-based discovery topic."""
    return f"{discovery_prefix}/device/{device_id}/config"


def ha_status_topic(discovery_prefix: str) -> str:
    """Home Assistant announces ``online`` here when it (re)starts."""
    return f"{discovery_prefix}/status"
