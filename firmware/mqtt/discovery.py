"""Home Assistant MQTT device-based discovery: what a Home Assistant user sees of the device.

One retained message on ``homeassistant/device/<id>/config`` describes the
device (``dev``, with the caregiver dashboard as its configuration link),
who announced it (``o``) and its components (``cmps``):

* **Fall** (binary sensor, ``safety``) and **Incident** (enum: No incident,
  Stumble, Fall, ...; every enum sensor shows words, its wire word in ``code``)
  from the retained ``incident`` topic, so both are right after a Home Assistant
  restart — and they stay on while the device is offline: a
  fall nobody closed is still a fall when the Pi loses power;
* **Fault** (binary sensor, ``problem``) and **Safety state** (enum sensor)
  from the retained ``state`` topic;
* **Safety event** (event entity: trip, fall, no_recovery, help, fault, ok,
  closed, reset, test) and two **device triggers** (fall, no recovery) from
  the event stream, so a fall shows up in the automation editor;
* buttons: **Acknowledge** (closes the open incident everywhere), **Silence**,
  **Self-test** (its verdict is the **Self-test result** enum sensor, from the
  command replies: passed, failed — the failed checks named in its attributes — or
  refused, with why) and **Test alarm**;
* **Guided session**, **Sessions at goal this week** and **Backward walking
  this week** from the retained ``progress`` topic, and from it too **Latest
  sway (balance check)** and **Latest step-time variability**, each with its
  minimal detectable change as an attribute (``docs/gait.md``);
* the **Last event** (an enum sensor too: words, the wire type in ``code``),
  the outbox depth and a **Storage fault** (on while the device's disk refuses
  writes: alerts are kept in memory and no new walk can be armed) — these two
  from telemetry, so only when the device sends it.

Availability is the device's retained ``online``/``offline``, so Home
Assistant greys entities out when the Last Will fires. The message is
published on every connect and again whenever Home Assistant announces itself
(``homeassistant/status`` = ``online``). An empty retained message on the
same topic (:data:`core.protocol.discovery.REMOVE_PAYLOAD`) removes the device from Home Assistant:
the reporter sends it when ``mqtt.discovery = false``, and ``retroguard ha
remove`` for a device that is gone.

The templates are plain Jinja, as Home Assistant renders them (``value_json``
is the payload); ``tests/ha_discovery.py`` checks every component against
Home Assistant's discovery rules and renders every template against real
payloads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, get_args

from core.gait_trends import METRICS, Metric
from core.protocol import payloads
from core.protocol.commands import LATEST, Ack, CommandName, TestAlarm, encode_command
from core.protocol.discovery import ORIGIN, SW_VERSION
from core.protocol.events import EventType
from core.protocol.messages import (
    SELF_TEST_OUTCOMES,
    DeviceState,
    FaultSaid,
    IncidentSeverity,
    SessionState,
    WornSaid,
)
from core.protocol.topics import Topics
from core.protocol.walker import DEFAULT_WALKER, DEFAULT_WALKER_ID
from core.protocol.words import ALERT_SAID, EVENT_SAID, FAULT_KIND_SAID

HOME_ASSISTANT = "home-assistant"
"""``by`` and ``via`` of what Home Assistant's buttons send."""

ACK_PRESS_PAYLOAD = encode_command(Ack(LATEST, HOME_ASSISTANT, via=HOME_ASSISTANT))
"""What the Acknowledge button sends on ``.../cmd/ack``: close the newest open incident."""
TEST_ALARM_PRESS_PAYLOAD = encode_command(TestAlarm(HOME_ASSISTANT))
EMPTY_COMMAND = "{}"
"""Silence and self-test take no fields (Home Assistant's default ``PRESS`` is not JSON)."""

HA_EVENT_TYPES: Mapping[EventType, str] = {
    EventType.STUMBLE: "trip",
    EventType.FALL: "fall",
    EventType.NO_RECOVERY: "no_recovery",
    EventType.HELP: "help",
    EventType.FAULT: "fault",
    EventType.OK: "ok",
    EventType.CLOSED: "closed",
    EventType.RESET: "reset",
    EventType.TEST: "test",
}
"""The wire's event types as the event entity names them (a trip is a ``stumble`` on the
wire); the others (start, stop, window) do not fire it."""

DEVICE_TRIGGERS: Mapping[EventType, str] = {
    EventType.FALL: "fall",
    EventType.NO_RECOVERY: "no_recovery",
}
"""Device triggers (``type``; the ``subtype`` is ``walker``) offered in the automation editor."""
TRIGGER_SUBTYPE = "walker"

FALL_SEVERITIES = ("fall", "no_recovery")
"""An open incident with one of these severities turns the Fall sensor on."""


def _jinja(value: object) -> str:
    """A Python value as a Jinja literal (JSON's syntax is Jinja's for these types)."""
    return json.dumps(value)


INCIDENT_WORDS: Mapping[str, str] = {
    "none": "No incident",
    **{kind: ALERT_SAID[kind].name for kind in get_args(IncidentSeverity)},
}
"""The Incident sensor's words: an incident as the dashboard names it (a closed one's
headline, :data:`core.protocol.words.ALERT_SAID`; it said "Fault" where the dashboard says
"Monitor fault"); a KeyError at import when the protocol gains a severity without words."""
SAFETY_STATE_WORDS: Mapping[str, str] = {
    "STARTING": "Starting (belt stopped)",
    "STANDBY": "Standby (belt stopped)",
    "ARMED": "Armed (belt can run)",
    "TRIPPED": "Tripped (belt stopped)",
    "FAULT": "Fault (belt stopped)",
}
WORN_WORDS: Mapping[str, str] = {
    WornSaid.NOT_WORN.value: "Not worn",
    WornSaid.MEASURING.value: "Still measuring",
}
"""The Safety state sensor's ``worn`` attribute, in words, from the state message's typed
``worn``: both reasons begin "sensor not worn" (a press refused while the check is still
measuring keeps that prefix for older consumers), so an automation reading the reason paged
"not worn" for a sensor clipped on and being checked. None: the reason says neither."""
SELF_TEST_WORDS: Mapping[str, str] = {
    "passed": "Passed",
    "failed": "Failed",
    "refused": "Not run (refused)",
}
SESSION_WORDS: Mapping[str, str] = {
    "none": "No session yet",
    "running": "Running",
    "completed": "Completed",
    "stopped": "Stopped early",
    "abandoned": "Abandoned (paused too long)",
}
"""What the enum sensors show for each wire word. Home Assistant shows an MQTT enum sensor's
state as it is (an MQTT entity has no translations), so its options were the wire words a
family member read on a tile: ``no_recovery``, ``STANDBY``, ``refused``. The options are these
words; the wire word stays in the ``code`` attribute for automations. None is ``"None"``:
Home Assistant's MQTT sensor reads that payload as unknown."""
LAST_EVENT_WORDS: Mapping[str, str] = {
    t.value: EVENT_SAID[t.value].row for t in EventType if t is not EventType.WINDOW
}
"""The Last event sensor's words: every event type but ``window`` (the IMU around a trip,
which keeps the event shown: :func:`_keeping_on_window`), labelled as the dashboard's
timeline rows are (:data:`core.protocol.words.EVENT_SAID`). It had its own: "Armed again at
the machine" for the dashboard's "Reset at the machine", "Closed by a caregiver" for
"Acknowledged"."""
SHOWN_EVENT_TYPES = [t.value for t in EventType if t is not EventType.WINDOW]
"""The event types the Last event sensor shows, in the protocol's order."""


def _options(words: Mapping[str, str], values: Iterable[str]) -> list[str]:
    """The enum options for ``values`` (the protocol's, in its order): a KeyError here, at
    every announcement and in every discovery test, when the protocol gains a word."""
    return [words[v] for v in values]


def _readable(words: Mapping[str, str], expression: str) -> str:
    """A Jinja expression: the readable words of the wire word ``expression``."""
    return f"{_jinja(dict(words))}[{expression}]"


WALKER_ATTRIBUTE = (
    f"value_json.get('walker', {_jinja(DEFAULT_WALKER_ID)}) if value_json.get('incident')"
    " else value_json.get('walker')"
)
"""Whose incident it is, as a Jinja expression: the payload's ``walker``, the default walker's
id when absent (payloads leave the default walker out); without an incident, the walker of
the session under way the event names (a test alarm, a courier's fault), else none."""

CLOCK_NOT_SET_ATTRIBUTE = "value_json.get('wall_unsynced', false)"
"""An event's ``clock_not_set``, as a Jinja expression: the device's clock was not set when it
stamped the event's ``time`` (absent from the payload: it was), so that time may be hours or
days off — an automation or a card shows when Home Assistant received it instead. The
``state`` message's flag has the same key (its ``since``)."""


WORN_ATTRIBUTE = (
    _jinja({w.value: WORN_WORDS[w.value] for w in WornSaid}) + ".get(value_json.get('worn'))"
)
"""The Safety state's ``worn``, as a Jinja expression: the state message's ``worn`` in words
(:data:`WORN_WORDS`; a KeyError at import when :class:`WornSaid` gains a word), none when
absent (the reason is about something else)."""


FAULT_KIND_ATTRIBUTE = (
    "("
    + _jinja({k.value: FAULT_KIND_SAID[k.value].name for k in FaultSaid})
    + ".get(value_json.get('fault'))) if value_json.state == 'FAULT' else none"
)
"""The Fault sensor's ``kind``: the state message's ``fault`` in words
(:data:`core.protocol.words.FAULT_KIND_SAID`), none while off and for a FAULT whose kind a
release before the field did not say. "Stall (clears by itself)" goes off within seconds with
no one there; "Relay contact" means the relay may not stop the belt: an automation that calls
someone pages at once for that one and waits for a stall to clear."""

FAULT_WORN_ATTRIBUTE = f"({WORN_ATTRIBUTE}) if value_json.state == 'FAULT' else none"
"""The Fault sensor's ``worn``: "Not worn" while it is on because the belt sensor stopped
showing a body (it fell off, or was left on the console: clip it back on and press reset),
none for any other fault and while it is off: the IMU lost, a stuck relay (someone must see
to them), or a stall (a heartbeat gap, a reset let go before the latch closed), which clears
by itself within seconds, so the Fault goes off with no one there. An automation on the
Fault told "not worn" apart only by the reason's "sensor not worn" prefix, which
docs/mqtt.md tells it not to read (the Safety state's ``worn`` says the
same, with the refused presses of STANDBY too)."""


PROGRESS_WALKER_ATTRIBUTES = {
    "walker": f"value_json.get('walker', {{}}).get('id', {_jinja(DEFAULT_WALKER.id)})",
    "walker_name": f"value_json.get('walker', {{}}).get('name', {_jinja(DEFAULT_WALKER.name)})",
}
"""Whose week and session the ``progress`` sensors show, as Jinja expressions: the payload's
``walker`` (id and name; absent: the device's one walker, the default). On a shared treadmill
the progress follows the walker chosen, so without it a caregiver reading "Sessions at goal
this week" could not tell whose sessions they are."""


OPENED_CLOCK_NOT_SET_ATTRIBUTE = "value_json.get('opened_unsynced', false)"
"""The retained incident's ``clock_not_set``: the device's clock was not set when it stamped
the event that opened it, so its ``opened`` attribute may be hours or days off (absent from
the payload, as from every older release: it was set)."""


def _attributes(
    fields: Mapping[str, str],
    *,
    walker: bool = False,
    clock_flag: str | None = None,
    progress_walker: bool = False,
    code: str | None = None,
    expressions: Mapping[str, str] | None = None,
) -> str:
    """A ``json_attributes_template`` making ``{name: value_json.get(key)}`` of ``fields``
    (and, with ``walker``, a ``walker`` attribute: :data:`WALKER_ATTRIBUTE`; with
    ``clock_flag``, a ``clock_not_set`` attribute of that Jinja expression: an event's
    :data:`CLOCK_NOT_SET_ATTRIBUTE`, an incident's :data:`OPENED_CLOCK_NOT_SET_ATTRIBUTE`;
    with ``progress_walker``, the ``progress`` message's walker:
    :data:`PROGRESS_WALKER_ATTRIBUTES`; with ``code``, a ``code`` attribute of that Jinja
    expression: an enum sensor's wire word; ``expressions``: further attributes, each name's
    value a Jinja expression, such as :data:`WORN_ATTRIBUTE`)."""
    pairs = [f"{_jinja(name)}: value_json.get({_jinja(k)})" for name, k in fields.items()]
    if walker:
        pairs.append(f"{_jinja('walker')}: {WALKER_ATTRIBUTE}")
    if progress_walker:
        pairs.extend(f"{_jinja(n)}: {e}" for n, e in PROGRESS_WALKER_ATTRIBUTES.items())
    if clock_flag is not None:
        pairs.append(f"{_jinja('clock_not_set')}: {clock_flag}")
    if code is not None:
        pairs.append(f"{_jinja('code')}: {code}")
    pairs.extend(f"{_jinja(n)}: {e}" for n, e in (expressions or {}).items())
    return "{{ {" + ", ".join(pairs) + "} | tojson }}"


def _with_noise(fields: Mapping[str, str], mdc95: float, unit: str) -> str:
    """Attributes from the payload, whose measure it is (:data:`PROGRESS_WALKER_ATTRIBUTES`)
    and the metric's minimal detectable change (constant): Home Assistant users see the noise
    band beside the value, never a bare number."""
    pairs = [f"{_jinja(name)}: value_json.get({_jinja(k)})" for name, k in fields.items()]
    pairs.extend(f"{_jinja(n)}: {e}" for n, e in PROGRESS_WALKER_ATTRIBUTES.items())
    pairs.append(f"{_jinja('mdc95')}: {_jinja(round(mdc95, 4))}")
    pairs.append(f"{_jinja('mdc95_unit')}: {_jinja(unit)}")
    return "{{ {" + ", ".join(pairs) + "} | tojson }}"


def _sway_attributes() -> str:
    return _with_noise(
        {"rms_ml_ms2": "sway_rms_ml_ms2", "session_started": "sway_wall"},
        _metric("sway_rms_ap").mdc95,
        "m/s²",
    )


def _step_cv_attributes() -> str:
    return _with_noise(
        {"session_started": "gait_wall"}, _metric("step_time_cv").mdc95, "percentage points"
    )


LAST_EVENT_FIELDS: Mapping[str, str] = {
    "id": "id",
    "seq": "seq",
    "incident": "incident",
    "severity": "severity",
    "reason": "reason",
    # not "state": Home Assistant silently drops a json attribute of that name
    # (core mqtt/entity.py MQTT_ATTRIBUTES_BLOCKED)
    "safety_state": "state",
    "time": "wall_time",
}
"""The Last event sensor's attributes from the event (besides ``walker`` and
``clock_not_set``)."""


def _keeping_on_window(fields: Mapping[str, str]) -> str:
    """The Last event's attributes: the event's, except for a ``window`` event, which keeps
    the ones shown. A window is the IMU data around a trip, sent 10 s after it: shown as the
    last event, every trip and fall ended as "Last event: window" on a caregiver's
    dashboard, its attributes those of the data, not of the fall. ``this`` is the entity as
    Home Assistant holds it (core mqtt/models.py MqttValueTemplate)."""
    names = [*fields, "walker", "clock_not_set", "code"]
    kept = ", ".join(f"{_jinja(n)}: this.attributes.get({_jinja(n)})" for n in names)
    return (
        "{% if value_json.type == "
        + _jinja(EventType.WINDOW.value)
        + " %}{{ {"
        + kept
        + "} | tojson }}{% else %}"
        + _attributes(
            fields, walker=True, clock_flag=CLOCK_NOT_SET_ATTRIBUTE, code="value_json.type"
        )
        + "{% endif %}"
    )


LAST_EVENT_STATE = (
    "{% if value_json.type == "
    + _jinja(EventType.WINDOW.value)
    + " %}{{ this.state if this.state in "
    + _jinja(_options(LAST_EVENT_WORDS, SHOWN_EVENT_TYPES))
    + " else 'None' }}{% else %}{{ "
    + _jinja(dict(LAST_EVENT_WORDS))
    + ".get(value_json.type, 'None') }}{% endif %}"
)
"""The Last event sensor's state: the newest event in words (:data:`LAST_EVENT_WORDS`; its
wire type in the ``code`` attribute), as every enum sensor shows. It showed the wire's
``stumble`` or ``no_recovery`` to a family member. A ``window`` keeps the words
shown (unknown when none is)."""

_SELF_TEST = "value_json.command == " + _jinja(CommandName.SELF_TEST.value)
_SELF_TEST_OUTCOME = (
    "('refused' if not value_json.ok else 'passed' if value_json.result.passed else 'failed')"
)
"""A self-test reply's wire outcome (:func:`core.protocol.messages.self_test_outcome`)."""
SELF_TEST_STATE = (
    "{% if not ("
    + _SELF_TEST
    + ") %}{{ this.state if this.state in "
    + _jinja(_options(SELF_TEST_WORDS, SELF_TEST_OUTCOMES))
    + " else 'None' }}"
    "{% else %}{{ " + _readable(SELF_TEST_WORDS, _SELF_TEST_OUTCOME) + " }}{% endif %}"
)
"""The Self-test result's state from ``/reply``: "Not run (refused)" when the device refused
the command unrun (a retained command, a bad payload: nothing was checked, so it is not shown
as a problem), else "Passed" or "Failed" (:data:`SELF_TEST_WORDS`). Replies to other commands
keep the state shown (unknown until the first self-test)."""

_FAILED_CHECKS = (
    "{% set ns = namespace(names=[], words=[]) %}"
    "{% if " + _SELF_TEST + " and value_json.ok %}"
    "{% for name, check in (value_json.result.checks or {}).items() if not check.ok %}"
    "{% set ns.names = ns.names + [name] %}"
    "{% set ns.words = ns.words + [name ~ ': ' ~ check.detail if check.detail else name] %}"
    "{% endfor %}{% endif %}"
)
SELF_TEST_ATTRIBUTE_NAMES = ("failed_checks", "failures", "refused_because", "request_id", "code")
SELF_TEST_ATTRIBUTES = (
    _FAILED_CHECKS
    + "{% if "
    + _SELF_TEST
    + " %}{{ {"
    + '"failed_checks": ns.names, '
    + "\"failures\": ns.words | join('; ') if ns.words else none, "
    + '"refused_because": none if value_json.ok else value_json.error, '
    + '"request_id": value_json.request_id, '
    + '"code": '
    + _SELF_TEST_OUTCOME
    + "} | tojson }}{% else %}{{ {"
    + ", ".join(f"{_jinja(n)}: this.attributes.get({_jinja(n)})" for n in SELF_TEST_ATTRIBUTE_NAMES)
    + "} | tojson }}{% endif %}"
)
"""The Self-test result's attributes: ``failed_checks`` (the names), ``failures`` (each
failed check and what it read, as :meth:`core.protocol.messages.SelfTestResult.failure_words`
says it), ``refused_because`` (a refusal's reason), ``request_id`` and ``code`` (the wire
outcome: ``passed``, ``failed``, ``refused``). Replies to other commands keep the ones shown."""

_INCIDENT_CODE = "(value_json.severity if value_json.open else 'none')"
"""The Incident sensor's wire word: the open incident's severity, else ``none``."""

RETIRED_SELF_TEST_RESULT = "self_test_result"
"""The key of the binary problem sensor the enum sensor replaced; sent as a removal."""


def _metric(key: str) -> Metric:
    return next(m for m in METRICS if m.key == key)


EVENT_TEMPLATE = (
    "{% set t = "
    + _jinja({wire.value: name for wire, name in HA_EVENT_TYPES.items()})
    + '.get(value_json.type) %}{% if t %}{{ {"event_type": t, '
    + '"id": value_json.id, "incident": value_json.get("incident"), '
    + '"severity": value_json.severity, "reason": value_json.reason, '
    + '"state": value_json.state, "by": value_json.get("by"), '
    + '"walker": '
    + WALKER_ATTRIBUTE
    + ', "time": value_json.wall_time, "clock_not_set": '
    + CLOCK_NOT_SET_ATTRIBUTE
    + "} | tojson }}{% endif %}"
)
"""The event entity's template: the JSON Home Assistant expects (``event_type`` plus attributes)
for the types it knows, and nothing — which it ignores — for the others. Its ``state`` stays
``state`` (the Last event sensor's is ``safety_state``): Home Assistant's MQTT event takes
the rendered object's keys but ``event_type`` as the event's attributes as they are (core
mqtt/event.py ``_event_received``: ``self._trigger_event(event_type, event_attributes)``,
which event/__init__.py ``state_attributes`` merges in), while MQTT_ATTRIBUTES_BLOCKED
filters only a ``json_attributes_topic``'s (mqtt/entity.py ``MqttAttributesMixin``), which
the event entity has none of. Renaming it would only break automations that read it."""


def discovery_payload(
    topics: Topics,
    device_name: str,
    dashboard_url: str = "",
    *,
    telemetry: bool = True,
    caregiver: bool = True,
) -> str:
    """The retained device-based discovery message for this device.

    ``telemetry``: the device publishes telemetry (``mqtt.telemetry_interval_s`` > 0). Without
    it nothing ever reaches the telemetry topic, so **Outbox depth** and **Storage fault**
    would stay "unknown" for ever — a storage fault sensor that never says anything reads as
    "no fault" on a dashboard; they are left out (a storage fault still reaches Home
    Assistant as a ``fault`` event: the **Safety event** entity and the **Incident**).

    ``caregiver``: a caregiver service is expected (``mqtt.caregiver_expected``): **Caregiver
    service** (connectivity) and **Oldest unreceived alert** (timestamp) from the retained
    ``caregiver`` topic. Without one they are removed (an installation with Home Assistant
    alone would otherwise show a service "disconnected" for ever)."""
    uid = f"retroguard_{topics.device_id}"
    device: dict[str, Any] = {
        "ids": [uid],
        "name": device_name,
        "mf": "RetroGuard",
        "mdl": "Backward treadmill fall monitor",
        "sw": SW_VERSION,
    }
    if dashboard_url:
        device["cu"] = dashboard_url
    components: dict[str, dict[str, Any]] = {}

    def add(key: str, platform: str, name: str, **config: Any) -> None:
        components[f"{uid}_{key}"] = {"p": platform, "name": name, "uniq_id": f"{uid}_{key}"}
        components[f"{uid}_{key}"].update(config)

    # -- the incident: retained, right after a restart, and still shown while offline
    always: dict[str, Any] = {
        "avty": []
    }  # a fall nobody closed stays a fall while the device is unreachable
    add(
        "fall",
        "binary_sensor",
        "Fall",
        dev_cla="safety",
        stat_t=topics.incident,
        val_tpl="{{ 'ON' if value_json.open and value_json.get('severity') in "
        + _jinja(list(FALL_SEVERITIES))
        + " else 'OFF' }}",
        json_attr_t=topics.incident,
        json_attr_tpl=_attributes(
            {
                "incident": "incident",
                "severity": "severity",
                "opened": "opened_wall",
                "closed_by": "closed_by",
                "closed_via": "closed_via",
            },
            walker=True,
            clock_flag=OPENED_CLOCK_NOT_SET_ATTRIBUTE,
        ),
        **always,
    )
    add(
        "incident",
        "sensor",
        "Incident",
        dev_cla="enum",
        ops=_options(INCIDENT_WORDS, ["none", *get_args(IncidentSeverity)]),
        stat_t=topics.incident,
        val_tpl="{{ " + _readable(INCIDENT_WORDS, _INCIDENT_CODE) + " }}",
        json_attr_t=topics.incident,
        json_attr_tpl=_attributes(
            {"incident": "incident", "opened": "opened_wall", "closed_by": "closed_by"},
            walker=True,
            clock_flag=OPENED_CLOCK_NOT_SET_ATTRIBUTE,
            code=_INCIDENT_CODE,
        ),
        ic="mdi:alert-octagon",
        **always,
    )
    # -- the safety state
    add(
        "fault",
        "binary_sensor",
        "Fault",
        dev_cla="problem",
        stat_t=topics.state,
        val_tpl="{{ 'ON' if value_json.state == 'FAULT' else 'OFF' }}",
        json_attr_t=topics.state,
        json_attr_tpl=_attributes(
            {"reason": "reason", "since": "wall_time"},
            clock_flag=CLOCK_NOT_SET_ATTRIBUTE,
            expressions={"worn": FAULT_WORN_ATTRIBUTE, "kind": FAULT_KIND_ATTRIBUTE},
        ),
    )
    add(
        "state",
        "sensor",
        "Safety state",
        dev_cla="enum",
        ops=_options(SAFETY_STATE_WORDS, [s.value for s in DeviceState]),
        stat_t=topics.state,
        val_tpl="{{ " + _readable(SAFETY_STATE_WORDS, "value_json.state") + " }}",
        json_attr_t=topics.state,
        json_attr_tpl=_attributes(
            {"reason": "reason", "since": "wall_time"},
            clock_flag=CLOCK_NOT_SET_ATTRIBUTE,
            code="value_json.state",
            expressions={"worn": WORN_ATTRIBUTE},
        ),
        ic="mdi:shield-check",
    )
    # -- the event stream
    add(
        "event",
        "event",
        "Safety event",
        evt_typ=list(HA_EVENT_TYPES.values()),
        stat_t=topics.event,
        val_tpl=EVENT_TEMPLATE,
        ic="mdi:human-handsdown",
    )
    for wire, trigger in DEVICE_TRIGGERS.items():
        components[f"{uid}_{trigger}_trigger"] = {
            "p": "device_automation",
            "atype": "trigger",
            "t": topics.event,
            "type": trigger,
            "stype": TRIGGER_SUBTYPE,
            "pl": wire.value,
            "val_tpl": "{{ value_json.type }}",
        }
    add(
        "last_event",
        "sensor",
        "Last event",
        dev_cla="enum",
        ops=_options(LAST_EVENT_WORDS, SHOWN_EVENT_TYPES),
        stat_t=topics.event,
        val_tpl=LAST_EVENT_STATE,
        json_attr_t=topics.event,
        json_attr_tpl=_keeping_on_window(LAST_EVENT_FIELDS),
        ic="mdi:history",
    )
    # -- buttons: nothing here can arm (docs/mqtt.md, "Commands")
    add(
        "ack",
        "button",
        "Acknowledge",
        cmd_t=topics.command(CommandName.ACK),
        pl_prs=ACK_PRESS_PAYLOAD,
        ic="mdi:check-circle",
    )
    add(
        "silence",
        "button",
        "Silence alarm",
        cmd_t=topics.command(CommandName.SILENCE),
        pl_prs=EMPTY_COMMAND,
        ic="mdi:volume-off",
    )
    add(
        "test_alarm",
        "button",
        "Test alarm",
        cmd_t=topics.command(CommandName.TEST_ALARM),
        pl_prs=TEST_ALARM_PRESS_PAYLOAD,
        ic="mdi:bell-ring",
    )
    add(
        "self_test",
        "button",
        "Self-test",
        cmd_t=topics.command(CommandName.SELF_TEST),
        pl_prs=EMPTY_COMMAND,
        ent_cat="diagnostic",
        ic="mdi:stethoscope",
    )
    add(
        "self_test_outcome",
        "sensor",
        # not "Self-test" as the button is: two "Self-test" rows on one device page read as
        # the same thing
        "Self-test result",
        dev_cla="enum",
        ops=_options(SELF_TEST_WORDS, SELF_TEST_OUTCOMES),
        stat_t=topics.reply,
        val_tpl=SELF_TEST_STATE,
        json_attr_t=topics.reply,
        json_attr_tpl=SELF_TEST_ATTRIBUTES,
        ent_cat="diagnostic",
        ic="mdi:stethoscope",
    )
    # The problem sensor it replaces (it said "Problem" for a refused self-test, and not
    # which check failed): only its platform, which is how Home Assistant removes one
    # component of a device (its entity goes; docs/mqtt.md). Home Assistant core,
    # components/mqtt/discovery.py: a device component whose config is empty once its
    # platform is popped "is assumed to remove the existing config".
    components[f"{uid}_{RETIRED_SELF_TEST_RESULT}"] = {"p": "binary_sensor"}
    # -- guided sessions
    add(
        "session",
        "sensor",
        "Guided session",
        dev_cla="enum",
        ops=_options(SESSION_WORDS, get_args(SessionState)),
        stat_t=topics.progress,
        val_tpl="{{ " + _readable(SESSION_WORDS, "value_json.session") + " }}",
        json_attr_t=topics.progress,
        json_attr_tpl=_attributes(
            {
                "plan": "plan",
                "started": "started_wall",
                "ended": "ended_wall",
                "planned_s": "planned_s",
                "done_s": "done_s",
                "backward_s": "backward_s",
                "clock_not_set": "clock_not_set",
                "interrupted": "session_interrupted",
            },
            progress_walker=True,
            code="value_json.session",
        ),
        ic="mdi:walk",
    )
    add(
        "week_at_goal",
        "sensor",
        "Sessions at goal this week",
        stat_t=topics.progress,
        val_tpl="{{ value_json.week_at_goal }}",
        stat_cla="measurement",
        json_attr_t=topics.progress,
        json_attr_tpl=_attributes(
            {
                "week": "week",
                "sessions": "week_sessions",
                "goal_sessions": "goal_sessions",
                "goal_backward_s": "goal_backward_s",
                "longest_backward_s": "week_longest_backward_s",
                "sessions_clock_not_set": "week_clock_not_set",
            },
            progress_walker=True,
        ),
        ic="mdi:trophy",
    )
    add(
        "week_backward",
        "sensor",
        "Backward walking this week",
        dev_cla="duration",
        unit_of_meas="min",
        # A week's figure of the walker the progress follows (the one chosen on a shared
        # treadmill): it falls when another walker is chosen and rises when the first is
        # chosen again, which "total_increasing" would read as a reset and a new total,
        # summing the same minutes again in the long-term statistics.
        stat_cla="measurement",
        stat_t=topics.progress,
        val_tpl="{{ (value_json.week_backward_s / 60) | round(1) }}",
        json_attr_t=topics.progress,
        json_attr_tpl=_attributes({"week": "week"}, progress_walker=True),
    )
    # -- the physio's goals (core/progress.py): adherence, progression, weeks at goal
    add(
        "week_done",
        "sensor",
        "Sessions done this week",
        stat_t=topics.progress,
        # unknown (not 0) from a device that predates adherence
        val_tpl="{{ value_json.get('week_done') }}",
        stat_cla="measurement",
        json_attr_t=topics.progress,
        json_attr_tpl=_attributes(
            {
                "week": "week",
                "prescribed": "week_prescribed",
                "sessions_clock_not_set": "week_clock_not_set",
            },
            progress_walker=True,
        ),
        ic="mdi:calendar-check",
    )
    add(
        "week_longest",
        "sensor",
        "Longest backward stretch this week",
        dev_cla="duration",
        unit_of_meas="min",
        stat_cla="measurement",
        sug_dsp_prc=1,
        stat_t=topics.progress,
        val_tpl="{{ (value_json.week_longest_backward_s / 60) | round(1) }}",
        json_attr_t=topics.progress,
        json_attr_tpl=_attributes(
            {"week": "week", "goal_backward_s": "goal_backward_s"}, progress_walker=True
        ),
        ic="mdi:timer-sand",
    )
    add(
        "weeks_at_goal",
        "sensor",
        "Weeks at goal",
        stat_t=topics.progress,
        val_tpl="{{ value_json.get('weeks_at_goal') }}",
        stat_cla="measurement",
        json_attr_t=topics.progress,
        json_attr_tpl=_attributes({"milestone_weeks": "milestone_weeks"}, progress_walker=True),
        ic="mdi:flag-checkered",
    )
    # -- balance and gait (docs/gait.md: what they are, and what change is more than noise)
    add(
        "sway",
        "sensor",
        "Latest sway (balance check)",
        unit_of_meas="m/s²",
        stat_cla="measurement",
        sug_dsp_prc=3,
        stat_t=topics.progress,
        val_tpl="{{ value_json.get('sway_rms_ap_ms2') }}",
        json_attr_t=topics.progress,
        json_attr_tpl=_sway_attributes(),
        ic="mdi:human-handsdown",
    )
    add(
        "step_time_cv",
        "sensor",
        "Latest step-time variability",
        unit_of_meas="%",
        stat_cla="measurement",
        sug_dsp_prc=1,
        stat_t=topics.progress,
        val_tpl="{{ value_json.get('step_time_cv_pct') }}",
        json_attr_t=topics.progress,
        json_attr_tpl=_step_cv_attributes(),
        ic="mdi:shoe-print",
    )
    if caregiver:
        _caregiver_components(add, topics)
    else:  # removed, should an earlier message have announced them
        for key, platform in CAREGIVER_COMPONENTS.items():
            components[f"{uid}_{key}"] = {"p": platform}
    if telemetry:
        _telemetry_components(add, topics)
    return payloads.dumps(
        {
            "dev": device,
            "o": ORIGIN,
            "avty": [
                {
                    "t": topics.availability,
                    "pl_avail": payloads.ONLINE,
                    "pl_not_avail": payloads.OFFLINE,
                }
            ],
            "qos": 1,
            "cmps": components,
        }
    )


CAREGIVER_COMPONENTS = {"caregiver": "binary_sensor", "unreceived": "sensor"}
"""The components read from the device's ``caregiver`` topic, and their platforms."""


def _caregiver_components(add: Callable[..., None], topics: Topics) -> None:
    """Whether the caregiver service is there (what the device hears of it), and since when the
    oldest alert waits for its receipt: a fall while it is off pages nobody. Online but unable
    to store what it receives (``storing`` false) pages nobody either: off too, its words in
    the ``cannot_store`` attribute (a device from before the field never sends it: on)."""
    add(
        "caregiver",
        "binary_sensor",
        "Caregiver service",
        dev_cla="connectivity",
        stat_t=topics.caregiver,
        val_tpl=(
            "{{ 'ON' if value_json.state == 'online' and value_json.storing | default(true) "
            "else 'OFF' }}"
        ),
        json_attr_t=topics.caregiver,
        json_attr_tpl=_attributes(
            {
                "heard": "state",
                "since": "since",
                "alerts_awaiting": "awaiting",
                "cannot_store": "fault",
                "cannot_store_since": "fault_since",
            }
        ),
        ic="mdi:account-heart",
    )
    add(
        "unreceived",
        "sensor",
        "Oldest unreceived alert",
        dev_cla="timestamp",
        stat_t=topics.caregiver,
        val_tpl="{{ value_json.get('oldest_awaiting') }}",
        ic="mdi:email-alert",
    )


def _telemetry_components(add: Callable[..., None], topics: Topics) -> None:
    """The diagnostics read from the (unretained) telemetry topic."""
    add(
        "outbox",
        "sensor",
        "Outbox depth",
        stat_t=topics.telemetry,
        val_tpl="{{ value_json.outbox_depth }}",
        ent_cat="diagnostic",
        stat_cla="measurement",
    )
    add(
        "storage",
        "binary_sensor",
        "Storage fault",
        dev_cla="problem",
        stat_t=topics.telemetry,
        # on while the device's disk refuses writes: alerts are kept in memory, no new walk arms
        val_tpl="{{ 'OFF' if value_json.storage_ok | default(true) else 'ON' }}",
        ent_cat="diagnostic",
    )
