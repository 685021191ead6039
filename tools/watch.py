"""``retroguard watch``: a caregiver's terminal view of one or all devices.

Subscribes (QoS 1) to availability, state, events, the open incident and
command replies and prints one line each, newest last. Events are
de-duplicated by id, because delivery is at least once. The retained
``incident`` says in plain words whether a fall (or a trip, a call for help,
a fault) is open — so a watch started after the fall says so — and, once it
closes, who closed it and which of its events were seen here: every line of
one incident carries its short id, so they read together. Stops on Ctrl-C, or
after ``--count`` events.
The ``watching ...`` line is printed once the subscription is confirmed, so a
script (or a test) knows from then on nothing will be missed. Until then, and
whenever the broker is lost, a line on stderr says it cannot be reached and
is being retried: a broker that is down must not look like a quiet device.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.cliargs import tcp_port, whole_number
from core.errors import ConfigError
from core.mqttlink import MqttSetupError, make_client
from core.plan_presets import stage_words
from core.progress import utc_of
from core.protocol.commands import CommandName
from core.protocol.events import Severity
from core.protocol.messages import (
    DeviceState,
    EventMessage,
    FaultSaid,
    IncidentMessage,
    InvalidMessage,
    NotJson,
    ProtocolError,
    ReplyMessage,
    SilenceResult,
    StageMessage,
    StateMessage,
    WornSaid,
    self_test_outcome,
    worn_said,
)
from core.protocol.payloads import decode, decode_as
from core.protocol.topics import BadTopic, TopicKind, Topics, parse_topic
from core.protocol.words import FAULT_KIND_SAID, alert_said, closed_via_said, event_said
from core.zones import system_zone, zone_said
from firmware.config import MqttConfig


class EventId(msgspec.Struct):
    """Just the id of an event, to drop QoS 1 repeats before anything else is read."""

    id: str


CLOCK_NOT_SET = "clock not set"
"""Marks a time the device stamped before NTP set its clock (the message's ``wall_unsynced``,
an incident's ``opened_unsynced``): a Pi after a power cut stamps the time of its last
shutdown, hours or days off, and a caregiver must not read it as when it happened."""
WORN_WORDS = {
    WornSaid.NOT_WORN: "the sensor is NOT WORN",
    WornSaid.MEASURING: "still checking the sensor is worn: it may well be",
}
"""What a state line adds of the sensor-worn check (the state message's ``worn``; a release
before it: its reason's prefix, :func:`~core.protocol.messages.worn_said`). Both reasons begin
"sensor not worn": a press refused while the check still measures read as a sensor off the
body, to a caregiver watching a walker with it clipped on."""
_SEVERITY_MARK = {Severity.CRITICAL: "!!", Severity.WARNING: "! ", Severity.INFO: "  "}
DEFAULT_PREFIX = MqttConfig().topic_prefix

_INCIDENT_MARK = {"stumble": "! ", "fault": "! ", "fall": "!!", "no_recovery": "!!", "help": "!!"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``watch`` on an ``argparse`` subparsers object and return its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "watch",
        help="print events from the MQTT broker as a caregiver would see them",
        description="Subscribe to RetroGuard devices on an MQTT broker and print their "
        "availability, state changes, events and command replies.",
    )
    parser.add_argument(
        "--config",
        help="read the broker's address, TLS and topic prefix from this config's [mqtt] "
        "(not its account: the monitor's own)",
    )
    parser.add_argument("--host", help="broker host (default: [mqtt] host, else 127.0.0.1)")
    parser.add_argument("--port", type=tcp_port, help="broker port (default: [mqtt] port)")
    parser.add_argument("--username", help="broker user (default: none)")
    parser.add_argument(
        "--password-file",
        help="file whose first line is the password (never on the command line); install-pi.sh "
        "--broker makes /etc/retroguard/caregiver-watch-mqtt-password for caregiver-watch",
    )
    parser.add_argument("--tls", action="store_true", default=None, help="connect with TLS")
    parser.add_argument("--ca-file", help="CA certificate (PEM) for TLS")
    parser.add_argument("--device", default="+", help="device id to watch (default: all)")
    parser.add_argument("--prefix", help="topic prefix (default: [mqtt] topic_prefix)")
    parser.add_argument(
        "--count", type=whole_number(0), default=0, help="exit after N events (0: never)"
    )
    parser.add_argument("--json", action="store_true", help="print raw JSON payloads")
    parser.set_defaults(func=run)
    return parser


def _monitor_account(config: str, username: str) -> str:
    return (
        f"retroguard watch: --username {username} is the monitor's own broker account "
        f"({config}'s [mqtt] username): on the documented broker a client's id is its user "
        "name, so this watch would take the monitor's session over (the treadmill would "
        "show offline). Log in with an account of its own, e.g. --username caregiver-watch "
        "--password-file /etc/retroguard/caregiver-watch-mqtt-password (made by install-pi.sh "
        '--broker; docs/mqtt.md, "retroguard watch")'
    )


def _settings(args: argparse.Namespace) -> MqttConfig:
    """The broker settings: ``--config``'s ``[mqtt]`` section for the address, TLS and topic
    prefix (its account is the monitor's, never taken), the options over it."""
    config = MqttConfig()
    if args.config:
        from firmware.config import load_config

        device = load_config(args.config).mqtt
        if device.username and args.username == device.username:
            raise ConfigError([_monitor_account(args.config, device.username)])
        # The broker's address, TLS and prefix, never the monitor's own account: on the
        # documented broker a client's id is its user name (docs/mqtt.md), so a watch logged
        # in as the device would take the monitor's session over.
        config = dataclasses.replace(device, username="", password="", password_file="")
    changes: dict[str, Any] = {"client_id": ""}
    for attr, key in (
        ("host", "host"),
        ("port", "port"),
        ("username", "username"),
        ("password_file", "password_file"),
        ("tls", "tls"),
        ("ca_file", "ca_file"),
        ("prefix", "topic_prefix"),
    ):
        value = getattr(args, attr, None)
        if value is not None:
            changes[key] = value
    if changes.get("password_file"):
        changes["password"] = ""
    config = dataclasses.replace(config, **changes)
    if config.password_file and not config.username:
        raise ConfigError(
            [
                "retroguard watch: --password-file needs --username: a password is sent only "
                "with a user name"
            ]
        )
    if not config.host:
        config = dataclasses.replace(config, host="127.0.0.1")
    return config


def silence_words(result: object) -> str:
    """What the monitor loop did with a caregiver's silence, in words (the reply's ``result``,
    :class:`~core.protocol.messages.SilenceResult`).

    Before, every silence the device took read "ok", even one whose alarm the loop **kept**
    because another alarm (a newer fall nobody has seen) was sounding, and one that found
    nothing sounding: the caregiver thought the alarm they named was stopped."""
    try:
        answer = msgspec.convert(result, SilenceResult)
    except (msgspec.ValidationError, TypeError):
        return f"ok (what the loop did is unreadable: {str(result)[:60]!r})"
    named = ", ".join(
        f"{label} {value[:8]}"
        for label, value in (("event", answer.event_id), ("incident", answer.incident))
        if value
    )
    about = f" ({named})" if named else ""
    match answer.silence:
        case "stopped":
            return f"{answer.pattern or 'alarm'} stopped{about}"
        case "not_that_alarm":
            return (
                f"KEPT: the {answer.pattern or 'alarm'} sounding is another alarm{about}, "
                "not the one named: see it before silencing it"
            )
        case "cue_left_playing":
            return f"no alarm sounding: the walker's cue ({answer.pattern}) plays on"
        case _:
            return "nothing was sounding"


def format_message(topic: str, payload: bytes, prefix: str = DEFAULT_PREFIX) -> str | None:
    """One display line for a message, or None for a message not worth a line."""
    try:
        parsed = parse_topic(prefix, topic)
    except BadTopic:
        return None
    if parsed is None:
        return None
    device, kind = parsed.device_id, parsed.kind
    if kind is TopicKind.AVAILABILITY:
        return f"{'':28} {device:<14} {'--':2} {payload.decode('utf-8', 'replace').upper()}"
    if kind not in (TopicKind.EVENT, TopicKind.STATE, TopicKind.REPLY, TopicKind.INCIDENT):
        return None
    try:
        message = decode(kind, payload)
    except NotJson:
        text = payload.decode("utf-8", errors="replace")
        return f"{'':28} {device:<14} ?? unreadable {kind.value}: {text[:60]!r}"
    except InvalidMessage:
        return None
    match message:
        case EventMessage():
            return _event_line(device, message)
        case IncidentMessage():
            return incident_line(device, message)
        case StateMessage(state=state, reason=reason, wall_time=wall):
            said = worn_said(message.worn, reason)
            worn = f" [{WORN_WORDS[said]}]" if said is not None else ""
            # who must act, for a FAULT whose kind the worn words do not say already
            fault = message.fault if state is DeviceState.FAULT else None
            if fault is not None and fault is not FaultSaid.NOT_WORN:
                worn = f" [{FAULT_KIND_SAID[fault].then}]"
            unset = f" ({CLOCK_NOT_SET})" if message.wall_unsynced else ""
            return f"{_when(wall):<28} {device:<14} -> {state.value}: {reason}{worn}{unset}"
        case ReplyMessage(command=command, request_id=request_id, ok=ok, error=error):
            verdict = "ok" if ok else f"REFUSED: {error}"
            if command == CommandName.SELF_TEST:
                # a self-test that ran and failed is a device problem, which "ok" hid; one
                # refused unrun (a retained command) is not, and says why
                outcome, words = self_test_outcome(message)
                verdict = {"passed": "passed", "failed": f"FAILED: {words}"}.get(
                    outcome, f"REFUSED (not run, no device problem): {words}"
                )
            elif command == CommandName.SILENCE and ok:
                verdict = silence_words(message.result)
            return (
                f"{_when(message.wall_time):<28} {device:<14} <- {command} ({request_id}) {verdict}"
            )
    return None


def stage_line(device: str, stage: StageMessage) -> str:
    """One walker's progression as the device keeps it, in a physio's words: the stage's plan
    by its name and what it prescribes (:func:`core.plan_presets.stage_words`, as the
    dashboard says it; a custom stage's plan, which the message does not carry, by its name)."""
    held = " (held)" if stage.held and stage.status != "held" else ""
    words = stage_words(stage)
    plan = f"{stage.stage_name}: {words}" if words else stage.stage_name
    return (
        f"{_when(stage.changed_wall):<28} {device:<14} ** {stage.walker.id}: "
        f"{stage.progression} stage {stage.stage} of {stage.stages} ({plan}), "
        f"{stage.status}{held}: {stage.change}; this week {stage.week_done} of "
        f"{stage.sessions_per_week}, {stage.weeks_done} of {stage.stage_weeks} "
        f"week{'' if stage.stage_weeks == 1 else 's'} done"
    )


def _when(wall_time: str, zone: dt.tzinfo | None = None) -> str:
    """A device's UTC wall time as the person at this terminal reads it: in ``zone`` (default
    the system's), with the zone's name; the text as sent if it is not a time."""
    try:  # utc_of: a time at the calendar's ends (no clock's) is shown as sent, not a crash
        moment = utc_of(wall_time)
    except ValueError:
        return wall_time[:23]
    zone = zone if zone is not None else system_zone()
    local = moment.astimezone(zone)
    millis = local.microsecond // 1000
    return f"{local:%Y-%m-%d %H:%M:%S}.{millis:03d} {zone_said(zone, moment)}"


def _event_line(device: str, event: EventMessage) -> str:
    mark = _SEVERITY_MARK[event.severity]
    figures = " ".join(f"{k}={v:g}" for k, v in sorted(event.figures.items()))
    # labelled as the dashboard's timeline rows (it printed the type: "RESET", "NO_RECOVERY")
    label = event_said(event.type.value).row
    line = (
        f"{_when(event.wall_time):<28} {device:<14} {mark} {label:<22} "
        f"#{event.seq:<5} state={event.state.value} {event.reason}"
    )
    if figures:
        line += f" ({figures})"
    if event.imu_window is not None:
        line += f" [{len(event.imu_window.rows)} IMU samples]"
    if event.recording is not None:
        line += f" [{event.recording.count} IMU samples]"
    if event.by is not None:
        line += f" by {event.by}" + (f" via {event.via}" if event.via is not None else "")
    if event.incident is not None:
        line += f" incident={event.incident[:8]}"  # the lines of one incident read together
    line += f" id={event.id}"
    if event.wall_unsynced:
        line += f" ({CLOCK_NOT_SET})"
    return line


def incident_line(device: str, message: IncidentMessage, seen: Sequence[str] = ()) -> str:
    """The retained ``incident`` in plain words: what is open, since when, or who closed it.

    ``seen``: the event types of this incident that came past this watch, in order (its
    closing line lists them, in the dashboard's words, so an incident reads as one story).
    """
    if message.incident is None or message.severity is None:
        return f"{_when(message.wall_time):<28} {device:<14} {'--':2} no incident open"
    said = alert_said(message.severity)  # the dashboard's words (it said "a trip (stumble)")
    head = f"{device:<14} {{mark}} INCIDENT {message.incident[:8]}"
    unset = f", {CLOCK_NOT_SET}" if message.opened_unsynced else ""
    opened = "" if message.opened_wall is None else f" (opened {_when(message.opened_wall)}{unset})"
    walker = "" if message.walker is None else f" walker={message.walker}"
    if message.open:
        mark = _INCIDENT_MARK.get(message.severity, "! ")
        line = f"{head.format(mark=mark)} OPEN: {said.open}{opened}, not closed yet"
        return f"{_when(message.wall_time):<28} {line}{walker}"
    if message.closed_by == "walker":
        who = 'by the walker at the machine ("I\'m OK")'
    else:
        via = closed_via_said(message.closed_via)
        how = f" {via}" if via else ""
        who = f"by {message.closed_by or 'someone'}{how}"
    line = f"{head.format(mark='  ')} closed {who}: {said.name}{opened}"
    if seen:
        line += f"; seen here: {', '.join(event_said(kind).row for kind in seen)}"
    return f"{_when(message.closed_wall or message.wall_time):<28} {line}{walker}"


class Watcher:
    """Subscribes and prints; :meth:`run` returns the exit status."""

    def __init__(
        self, config: MqttConfig, device: str, count: int, raw: bool, out: TextIO = sys.stdout
    ) -> None:
        self.config = config
        self.count = count
        self.raw = raw
        self.out = out
        topics = Topics(config.topic_prefix, device)
        self.topics = [
            topics.of(TopicKind.AVAILABILITY),
            topics.of(TopicKind.STATE),
            topics.of(TopicKind.EVENT),
            topics.of(TopicKind.INCIDENT),
            topics.of(TopicKind.REPLY),
            topics.stage("+"),
        ]
        self.seen: set[str] = set()
        self._stage_said: dict[tuple[str, str], tuple[object, ...]] = {}
        """Per device and walker, what their stage line last said: the device publishes the
        retained stage again at least every minute (a new ``wall_time``), and only a change
        is news."""
        self._incident_said: dict[str, tuple[object, ...]] = {}
        """Per device, what its incident line last said: the device sends the retained message
        again on every connect, and a repeat is not news."""
        self._incident_events: dict[tuple[str, str], list[str]] = {}
        """The event types of each incident (device, id) seen here, for its closing line."""
        self.done = threading.Event()
        self.error: str | None = None
        self.reachable = True
        """False from a failed attempt to reach the broker until it answers: one line per
        outage, not one per retry."""
        self.connected_once = False
        """Whether the broker ever answered: a connection dropped before it did (a port that
        takes TCP but speaks no MQTT, TLS expected) is "cannot reach", not "lost"."""
        self.client = make_client(
            config.link(), "", on_fault=lambda fault: self._say(fault.words())
        )
        # A terminal waiting for a local broker should notice it quickly.
        self.client.reconnect_delay_set(0.5, 2)  # type: ignore[arg-type]  # paho takes floats
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self.error = f"broker refused the connection: {reason_code}"
            self.done.set()
            return
        self.connected_once = True
        if not self.reachable:
            self.reachable = True
            self._say(f"reached the broker at {self._where}")
        client.subscribe([(t, 1) for t in self.topics])

    @property
    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _say(self, text: str) -> None:
        print(f"retroguard watch: {text}", file=sys.stderr, flush=True)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # Nothing is watched until the broker answers: the person at the terminal must see
        # that, not a silent screen that looks like a quiet device.
        if self.reachable:
            self.reachable = False
            self._say(f"cannot reach the broker at {self._where}; retrying (Ctrl-C to stop)")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure and self.reachable and not self.done.is_set():
            self.reachable = False
            what = "lost" if self.connected_once else "cannot reach"
            self._say(f"{what} the broker at {self._where}; retrying (Ctrl-C to stop)")

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [t for t, rc in zip(self.topics, reason_codes, strict=False) if rc.is_failure]
        if refused:
            # An ACL written before a release added a topic to the watch (stage/<walker>) lets
            # it read the rest: it watches them, and says what the account's block lacks.
            self._say(
                f"not allowed to read {', '.join(refused)}: the broker's ACL does not give "
                f"this account {'it' if len(refused) == 1 else 'them'} (add "
                + "; ".join(f"'topic read {t}'" for t in refused)
                + ' to its user block and reload Mosquitto: docs/mqtt.md, "Watching from a '
                'terminal"); watching the rest'
            )
        print(
            f"watching {', '.join(self.topics)} on {self.config.host}:{self.config.port}",
            file=self.out,
            flush=True,
        )

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        is_event = message.topic.endswith("/" + TopicKind.EVENT.value)
        if is_event:
            try:
                event_id = decode_as(EventId, payload).id
            except ProtocolError:
                event_id = ""
            if event_id in self.seen:
                return  # a QoS 1 repeat
            self.seen.add(event_id)
        if self.raw:
            line: str | None = f"{message.topic} {payload.decode('utf-8', errors='replace')}"
        elif message.topic.endswith("/" + TopicKind.INCIDENT.value):
            line = self._incident(message.topic, payload)
        elif f"/{TopicKind.STAGE.value}/" in message.topic:
            line = self._stage(message.topic, payload)
        else:
            line = format_message(message.topic, payload, self.config.topic_prefix)
            if is_event:
                self._note_event(message.topic, payload)
        if line is not None:
            print(line, file=self.out, flush=True)
        if is_event and self.count and len(self.seen) >= self.count:
            self.done.set()

    def _device(self, topic: str) -> str | None:
        try:
            parsed = parse_topic(self.config.topic_prefix, topic)
        except BadTopic:
            return None
        return None if parsed is None else parsed.device_id

    def _note_event(self, topic: str, payload: bytes) -> None:
        """Remember an incident's event (its type), for the incident's closing line."""
        device = self._device(topic)
        try:
            event = decode_as(EventMessage, payload)
        except ProtocolError:
            return
        if device is not None and event.incident is not None:
            self._incident_events.setdefault((device, event.incident), []).append(event.type.value)

    def _incident(self, topic: str, payload: bytes) -> str | None:
        """The incident's line when it says something new for its device (None: a repeat)."""
        device = self._device(topic)
        if device is None:
            return None
        try:
            message = decode_as(IncidentMessage, payload)
        except NotJson:
            return format_message(topic, payload, self.config.topic_prefix)
        except ProtocolError:
            return None
        said = (message.incident, message.open, message.severity, message.closed_by)
        if self._incident_said.get(device) == said:
            return None
        self._incident_said[device] = said
        seen: list[str] = []
        if message.incident is not None and not message.open:
            seen = self._incident_events.pop((device, message.incident), [])
        return incident_line(device, message, seen)

    def _stage(self, topic: str, payload: bytes) -> str | None:
        """A walker's stage line when it says something new (None: a repeat, or not a stage
        message: a valid one about another walker than its topic's is shown as nothing)."""
        try:
            parsed = parse_topic(self.config.topic_prefix, topic)
        except BadTopic:
            return None
        if parsed is None or parsed.kind is not TopicKind.STAGE or parsed.walker is None:
            return None
        device, walker = parsed.device_id, parsed.walker
        if not payload:  # the device cleared it: the walker was removed at the treadmill
            if self._stage_said.pop((device, walker), None) is None:
                return None
            return f"{'':28} {device:<14} ** {walker}: no progression kept (walker removed)"
        try:
            message = decode_as(StageMessage, payload)
        except NotJson:
            text = payload.decode("utf-8", errors="replace")
            return f"{'':28} {device:<14} ?? unreadable stage of {walker}: {text[:60]!r}"
        except ProtocolError:
            return None
        if message.walker.id != walker or message.device_id != device:
            return None
        said = msgspec.structs.astuple(message)[4:]  # what it says, not when it was computed
        if self._stage_said.get((device, walker)) == said:
            return None
        self._stage_said[(device, walker)] = said
        return stage_line(device, message)

    def run(self) -> int:
        self.client.connect_async(self.config.host, self.config.port, keepalive=30)
        self.client.loop_start()
        try:
            while not self.done.wait(0.5):  # a bounded wait keeps Ctrl-C responsive
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.done.set()  # what follows is our own leaving, not a lost broker
            self.client.disconnect()
            self.client.loop_stop()
        if self.error:
            print(f"retroguard watch: {self.error}", file=sys.stderr)
            return 1
        return 0


def run(args: argparse.Namespace) -> int:
    """Entry point for ``retroguard watch``; returns the process exit status."""
    try:
        config = _settings(args)
        watcher = Watcher(config, args.device, args.count, args.json)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except MqttSetupError as exc:
        print(f"retroguard watch: {exc}", file=sys.stderr)
        return 2
    return watcher.run()


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.watch`` (the same as ``retroguard watch``)."""
    parser = argparse.ArgumentParser(prog="retroguard")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["watch", *(argv if argv is not None else sys.argv[1:])])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
