"""Plans set by the physio: data with a schema, delivered over MQTT, stored on the device, used
from the next session start — and never a belt started, a relay touched or a monitor restarted.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
from referencing import Registry, Resource

from core.plan_presets import PRESETS, PROGRESSIONS
from core.protocol.commands import (
    AssignPlan,
    AssignProgression,
    ChangeProgression,
    CommandName,
    CommandRefused,
    encode_command,
    parse_command,
)
from core.protocol.plan import (
    Interval,
    Plan,
    PlanInvalid,
    Progression,
    Stage,
    plan_from_builtins,
    plan_from_json,
    plan_json,
    plan_to_builtins,
    progression_from_builtins,
    progression_to_builtins,
)
from core.protocol.topics import Topics
from firmware.session.runner import SessionRunner, SessionState, attach_session, detach_session
from firmware.storage.database import connect
from firmware.storage.fallback import DISK_RETRY_S, FallbackDatabase
from firmware.storage.outbox import Outbox
from firmware.storage.plans import assign_plan, current_plan, current_revision, plan_history
from firmware.storage.progressions import (
    ProgressionUnchanged,
    advance_if_done,
    change_progression,
    current_progression,
    start_progression,
)
from firmware.storage.sessions import FINAL_DUE
from firmware.storage.walkers import add_walker
from tests.app_support import Rig, close_rigs, make_rig, pump_link_until
from tests.mqtt_helpers import WAIT, Subscriber, config_for, validate
from tests.storage_support import FillableDisk, alert
from tools.broker import Mosquitto

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "mqtt" / "schemas"
DEVICE = "treadmill-1"

ANNA = Plan(
    "Anna, week 3",
    (
        Interval("forward", 2.0),
        Interval("backward", 3.0, "0.4 mph"),
        Interval("forward", 2.0),
        Interval("backward", 3.0, "0.4 mph"),
        Interval("rest", 1.0),
    ),
)


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())  # type: ignore[no-any-return]


def _validator(name: str) -> jsonschema.Draft202012Validator:
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema))
        for schema in (_schema("plan"), _schema("progression"), _schema("command"))
    )
    return jsonschema.Draft202012Validator(_schema(name), registry=registry)


# ------------------------------------------------------------------ the type


def test_presets_and_a_custom_plan_round_trip_and_meet_the_documented_schema() -> None:
    validator = _validator("plan")
    for plan in (*PRESETS.values(), ANNA):
        data = plan_to_builtins(plan)
        validator.validate(data)
        assert plan_from_builtins(data) == plan
        assert plan_from_json(plan_json(plan)) == plan
    assert PRESETS["alternate-2-2"].duration_s == 30 * 60
    assert [i.minutes for i in ANNA.intervals] == [2.0, 3.0, 2.0, 3.0, 1.0]


def test_the_documented_plan_schema_agrees_with_the_type() -> None:
    generated = msgspec.json.schema(Plan)
    defs = generated["$defs"]
    documented = _schema("plan")
    assert set(documented["required"]) == set(defs["Plan"]["required"])
    assert set(documented["properties"]) == set(defs["Plan"]["properties"])
    interval = documented["$defs"]["interval"]
    assert set(interval["required"]) == set(defs["Interval"]["required"])
    assert set(interval["properties"]) == set(defs["Interval"]["properties"])
    assert (
        interval["properties"]["direction"]["enum"]
        == defs["Interval"]["properties"]["direction"]["enum"]
    )
    for key in ("maxItems", "minItems"):
        assert (
            documented["properties"]["intervals"][key]
            == defs["Plan"]["properties"]["intervals"][key]
        )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"intervals": [{"direction": "backward", "minutes": 2}]}, "name: missing"),
        # the bounds in words a physio reads on the dashboard's form, not msgspec's types
        ({"name": "x", "intervals": []}, "intervals: must have at least 1 interval"),
        (
            {"name": "x", "intervals": [{"direction": "backward", "minutes": 0}]},
            "intervals[0].minutes: must be more than 0 min",
        ),
        (
            {"name": "x", "intervals": [{"direction": "rest", "minutes": 2, "speed": "s" * 41}]},
            "intervals[0].speed: must be at most 40 characters long",
        ),
        (
            {"name": "x" * 81, "intervals": [{"direction": "backward", "minutes": 2}]},
            "name: must be at most 80 characters long",
        ),
        (
            {"name": "x", "intervals": [{"direction": "backward", "minutes": 1}] * 61},
            "intervals: must have at most 60 intervals",
        ),
        (
            {"name": "x", "intervals": [{"direction": "sideways", "minutes": 2}]},
            "intervals[0].direction: invalid enum value 'sideways'",
        ),
        (
            {"name": "x", "intervals": [{"direction": "backward", "minutes": "2"}]},
            "intervals[0].minutes: expected `float`, got `str`",
        ),
        (
            {"name": "x", "intervals": [{"direction": "backward", "minutes": 61}]},
            "intervals[0].minutes: must be at most 60 min",
        ),
        (
            {"name": "x", "intervals": [{"direction": "backward"}]},
            "intervals[0].minutes: missing",
        ),
        (
            {"name": "x", "intervals": [{"direction": "backward", "minutes": 2, "arm": True}]},
            "intervals[0]: object contains unknown field `arm`",
        ),
        (
            {
                "name": "x",
                "intervals": [
                    {"direction": "forward", "minutes": 2},
                    {"direction": "backward", "minutes": 0.1},
                ],
            },
            "intervals[1].minutes: an interval lasts at least 10 s (0.17 min), not 6 s",
        ),
        (
            {"name": "x", "intervals": [{"direction": "rest", "minutes": 2}]},
            "intervals: the plan has no walking interval (all are rest)",
        ),
        (
            {"name": "x", "intervals": [{"direction": "backward", "minutes": 60}] * 4},
            "intervals: the plan lasts 240 min, over the 180 min a session may last",
        ),
        ({"name": " ", "intervals": [{"direction": "backward", "minutes": 2}]}, "name: must"),
    ],
)
def test_a_malformed_plan_is_refused_naming_the_field(data: Any, problem: str) -> None:
    with pytest.raises(PlanInvalid) as err:
        plan_from_builtins(data)
    assert err.value.problems[0].startswith(problem), err.value.problems


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"weeks": 0}, "stages[0].weeks: must be at least 1 week"),
        ({"weeks": 53}, "stages[0].weeks: must be at most 52 weeks"),
        ({"sessions_per_week": 0}, "stages[0].sessions_per_week: must be at least 1 a week"),
        ({"sessions_per_week": 15}, "stages[0].sessions_per_week: must be at most 14 a week"),
        (
            {"plan": {"name": "", "intervals": []}},
            "stages[0].plan.name: must be at least 1 character long",
        ),
    ],
)
def test_a_progression_s_bounds_are_said_in_their_units_one_in_the_singular(
    change: dict[str, Any], problem: str
) -> None:
    """A stage's weeks and sessions a week are said as the physio counts them, and a bound of
    one in the singular: "must be at least 1 weeks" and "at least 1 characters long" read as
    a machine's words on the progression file's refusal and the plan form. (Mutation, mut38:
    the units of ``weeks`` and ``sessions_per_week`` were said by no test.)"""
    stage = {"plan": plan_to_builtins(PRESETS["alternate-2-2"]), "weeks": 2, "sessions_per_week": 3}
    with pytest.raises(PlanInvalid) as err:
        progression_from_builtins({"name": "toward", "stages": [{**stage, **change}]})
    assert err.value.problems == [problem]
    with pytest.raises(PlanInvalid) as err:
        plan_from_builtins({"name": "", "intervals": [{"direction": "backward", "minutes": 2}]})
    assert err.value.problems == ["name: must be at least 1 character long"]


def test_a_plan_with_many_mistakes_is_refused_with_all_of_them_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A physio's plan with a name too long, a direction mistyped, a speed note too long, one
    no one walks at and an interval too short: ``retroguard plan set`` said the file's own
    problems, then once they were fixed the name's, then the note's, then the speed's (msgspec
    stops at a type's first problem, and the contract's rules waited for the types): four
    rounds of fix and run again. Every problem is said at once now, each naming its field, from
    a plan file, a plan command and the dashboard's form alike (one contract)."""
    from starlette.datastructures import FormData

    from caregiver.routes.plans import plan_from_form
    from launcher.cli import main

    long_name, long_note = "Anna " * 17, "brisk, then a little brisker " * 2
    intervals = [
        {"direction": "sideways", "minutes": 2},
        {"direction": "backward", "minutes": 2, "speed": "5 mph"},
        {"direction": "forward", "minutes": 2, "speed": long_note},
        {"direction": "backward", "minutes": 0.1},
    ]
    said = [
        "name: must be at most 80 characters long",
        "intervals[0].direction: invalid enum value 'sideways'",
        "intervals[1].speed: a backward interval at '5 mph' is faster than walking (over 4 mph, "
        "6.4 km/h); give the speed the walker walks at (such as '0.5 mph')",
        "intervals[2].speed: must be at most 40 characters long",
        "intervals[3].minutes: an interval lasts at least 10 s (0.17 min), not 6 s",
    ]
    with pytest.raises(PlanInvalid) as refused:
        plan_from_builtins({"name": long_name, "intervals": intervals, "arm": True})
    assert refused.value.problems == ["plan: object contains unknown field `arm`", *said]
    command = json.loads(encode_command(AssignPlan(ANNA, by="physio Jo"), "p1"))
    command["plan"] = {"name": long_name, "intervals": intervals}
    with pytest.raises(CommandRefused) as at_once:
        parse_command("plan", json.dumps(command).encode())
    assert str(at_once.value) == "; ".join(f"plan.{p}" for p in said)

    fields = [("preset", ""), ("name", long_name)]
    for i in intervals:
        fields += [("direction", str(i["direction"])), ("minutes", str(i["minutes"]))]
        fields += [("speed", str(i.get("speed", "")))]
    with pytest.raises(PlanInvalid) as on_the_form:
        plan_from_form(FormData(fields))
    assert on_the_form.value.problems == [
        p if p.startswith("name") else f"row {int(p[10]) + 1}: {p}" for p in said
    ]

    toml = tmp_path / "anna.toml"  # the file's own checks said first, then the contract's
    toml.write_text(
        f'name = "{long_name}"\n'
        + "".join(
            "[[interval]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in i.items())
            for i in intervals
        )
    )
    assert main(["plan", "--db", str(tmp_path / "device.db"), "set", str(toml)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"retroguard plan set: {toml}: {p}"
        for p in [
            "interval[0].direction: must be one of 'backward', 'forward', 'rest', not 'sideways'",
            "interval[3]: duration must be between 10 s and 60 min, not 6 s",
            said[0],
            said[2].replace("intervals", "interval"),
            said[3].replace("intervals", "interval"),
        ]
    ]


@pytest.mark.parametrize("speed", ["0 mph", "0.0 km/h", "-0.5 mph", " 0 ", ".0mph", "0,0 km/h"])
def test_a_walking_interval_at_no_speed_is_refused_wherever_the_plan_comes_from(
    speed: str, tmp_path: Path
) -> None:
    """A physio who typed "0 mph" (for 0.5) on a backward interval prescribed walking on a belt
    that does not move; the plan was taken by the dashboard, over MQTT and from a plan file
    alike. One rule (``plan_problems``) refuses it on every path, naming the field; a rest at
    "0 mph" and a speed in words ("slow") are the physio's to write."""
    from core.errors import ConfigError
    from firmware.session.plan import load_plan_file

    data = {
        "name": "x",
        "intervals": [
            {"direction": "forward", "minutes": 2},
            {"direction": "backward", "minutes": 2, "speed": speed},
        ],
    }
    with pytest.raises(PlanInvalid) as err:
        plan_from_builtins(data)
    assert err.value.problems == [
        f"intervals[1].speed: a backward interval at {speed.strip()!r} does not move the belt; "
        "give its speed (such as '0.5 mph'), or make the interval a rest"
    ]
    command = json.loads(encode_command(AssignPlan(ANNA, by="physio Jo"), "p1"))
    command["plan"] = data
    with pytest.raises(CommandRefused, match=r"^plan\.intervals\[1\]\.speed: a backward"):
        parse_command("plan", json.dumps(command).encode())
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as refused:
        load_plan_file(path)
    assert refused.value.problems == [f"{path}: {err.value.problems[0]}"]
    toml = tmp_path / "anna.toml"  # the file's own key, [[interval]], not the wire's
    toml.write_text(
        'name = "x"\n[[interval]]\ndirection = "forward"\nminutes = 2\n'
        f'[[interval]]\ndirection = "backward"\nminutes = 2\nspeed = "{speed}"\n'
    )
    with pytest.raises(ConfigError) as refused:
        load_plan_file(toml)
    written = err.value.problems[0].replace("intervals[1]", "interval[1]", 1)
    assert refused.value.problems == [f"{toml}: {written}"]
    for fine in ({"direction": "rest", "minutes": 2, "speed": speed},
                 {"direction": "backward", "minutes": 2, "speed": "slow"}):  # fmt: skip
        plan_from_builtins({**data, "intervals": [data["intervals"][0], fine]})
    # A plan stored before the rule stays the walker's plan in force: the device does not
    # silently swap it for the config's after an upgrade.
    before = Plan("x", (Interval("forward", 2.0), Interval("backward", 2.0, speed)))
    conn = connect(tmp_path / "device.db")
    with conn:
        assign_plan(conn, before, by="physio Jo", via="cli", assigned_wall="2026-01-05T09:00:00Z")
    in_force = current_plan(conn)
    assert in_force is not None and in_force.plan == before
    conn.close()


@pytest.mark.parametrize(
    ("direction", "speed"),
    [
        ("backward", "5 mph"),
        ("backward", "05 mph"),
        ("forward", "7 km/h"),
        ("backward", "2 m/s"),
        ("backward", "8,5 km/h"),
    ],  # a decimal comma: a German physio's "0,5 km/h" mistyped
)
def test_a_walking_interval_faster_than_walking_is_refused(
    direction: str, speed: str, tmp_path: Path
) -> None:
    """ "5 mph" for 0.5 on a backward interval is the mirror of "0 mph": a typing mistake the
    walker is shown as the prescription, running backward on the belt. Refused wherever the
    plan comes from (the one rule), naming the field; a walking speed, a note without a unit
    (km/h or mph?) and one in words are taken as written, and a plan stored before stays."""
    data = {
        "name": "x",
        "intervals": [
            {"direction": "rest", "minutes": 1},
            {"direction": direction, "minutes": 2, "speed": speed},
        ],
    }
    with pytest.raises(PlanInvalid) as err:
        plan_from_builtins(data)
    assert err.value.problems == [
        f"intervals[1].speed: a {direction} interval at {speed!r} is faster than walking (over "
        "4 mph, 6.4 km/h); give the speed the walker walks at (such as '0.5 mph')"
    ]
    command = json.loads(encode_command(AssignPlan(ANNA, by="physio Jo"), "p1"))
    command["plan"] = data
    with pytest.raises(CommandRefused, match=r"^plan\.intervals\[1\]\.speed: .* faster than"):
        parse_command("plan", json.dumps(command).encode())
    for fine in ("4 mph", "6 km/h", "1.5 m/s", "5", "brisk", "0,8 km/h", "5,5 km/h"):
        walk = {"direction": direction, "minutes": 2, "speed": fine}
        plan_from_builtins({**data, "intervals": [data["intervals"][0], walk]})
    before = Plan("x", (Interval("rest", 1.0), Interval(direction, 2.0, speed)))  # type: ignore[arg-type]
    conn = connect(tmp_path / "device.db")
    with conn:
        assign_plan(conn, before, by="physio Jo", via="cli", assigned_wall="2026-01-05T09:00:00Z")
    in_force = current_plan(conn)
    assert in_force is not None and in_force.plan == before
    conn.close()


def test_the_plan_command_round_trips_and_names_the_field_when_refused() -> None:
    command = AssignPlan(ANNA, by="physio Jo")
    payload = encode_command(command, "p1")
    _validator("command").validate(json.loads(payload))
    request = parse_command("plan", payload.encode())
    assert request.name is CommandName.PLAN and request.request_id == "p1"
    assert request.command == command
    bad = json.loads(payload)
    bad["plan"]["intervals"][1]["direction"] = "sideways"
    with pytest.raises(CommandRefused) as err:
        parse_command("plan", json.dumps(bad).encode())
    assert str(err.value).startswith("plan.intervals[1].direction: invalid enum value")
    assert err.value.request_id == "p1"
    with pytest.raises(CommandRefused, match=r"^plan: missing"):
        parse_command("plan", b'{"id":"p2"}')


# --------------------------------------------------------------- the storage


def test_assignments_are_kept_newest_in_force_and_a_cleared_plan_means_the_config(
    tmp_path: Path,
) -> None:
    conn = connect(tmp_path / "device.db")
    assert current_plan(conn) is None and current_revision(conn) == 0
    with conn:
        first = assign_plan(conn, ANNA, by="Jo", via="mqtt", assigned_wall="w1", request_id="p1")
    with conn:
        second = assign_plan(conn, None, by="root", via="cli", assigned_wall="w2")
    assert second > first == 1
    now = current_plan(conn)
    assert now is not None and now.plan is None and now.via == "cli"
    with conn:
        assign_plan(conn, PRESETS["progression-week-2"], by="Jo", via="mqtt", assigned_wall="w3")
    now = current_plan(conn)
    assert now is not None and now.plan == PRESETS["progression-week-2"]
    assert conn.execute("SELECT count(*) FROM plans").fetchone()[0] == 3  # the history stays
    # A row this release cannot read is "the config's plan", not a crash.
    with conn:
        conn.execute(
            "INSERT INTO plans (plan, assigned_by, via, assigned_wall)"
            " VALUES ('{\"name\": 1}', 'x', 'cli', 'w4')"
        )
    broken = current_plan(conn)
    assert broken is not None and broken.plan is None
    conn.close()


# ------------------------------------------------- end to end, over Mosquitto


def _armed(rig: Rig) -> None:
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def _send(sub: Subscriber, payload: str | bytes, name: str = "plan") -> dict[str, Any]:
    """Publish a command; the device's reply to it (validated against the schema)."""
    data = json.loads(payload)
    request_id = data["id"]
    sub.client.publish(f"retroguard/{DEVICE}/cmd/{name}", payload, qos=1).wait_for_publish(WAIT)

    def replies() -> list[dict[str, Any]]:
        return [
            r
            for r in (json.loads(m.payload) for m in sub.on("/reply"))
            if r.get("request_id") == request_id
        ]

    assert sub.wait(lambda: bool(replies()))
    reply = replies()[0]
    validate("reply", json.dumps(reply))
    return reply


def test_a_plan_sent_over_mqtt_applies_at_the_next_session_without_touching_the_relay(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    rig = make_rig(tmp_path, mqtt=config_for(mosquitto))
    assert rig.courier.reporter is not None
    assert rig.courier.reporter.wait_until(lambda s: s.ready, WAIT)
    _armed(rig)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"])
    runner.request("start")
    rig.run_for(30.0)
    assert runner.state is SessionState.RUNNING
    relay_before = list(rig.hardware.history)
    attaches = rig.app.link.attaches

    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/reply"])
    try:
        reply = _send(sub, encode_command(AssignPlan(ANNA, by="physio Jo"), "p1"))
        assert reply["ok"] and reply["command"] == "plan"
        assert reply["result"]["plan"] == ANNA.name
        assert reply["result"]["applies"] == "at the next session start"
        # The courier hands it to the loop; the loop keeps walking the session under way.
        assert pump_link_until(rig.app.link, lambda: rig.app.link._new_plan is not None)
        rig.run_for(0.05)
        assert runner.next_plan == ANNA
        assert runner.state is SessionState.RUNNING
        assert runner.session is not None and runner.session.plan.name == "alternate-2-2"
        rig.run_for(60.0)
        assert runner.session.plan.name == "alternate-2-2"

        # A malformed plan is refused naming the field, and changes nothing.
        bad = json.loads(encode_command(AssignPlan(ANNA), "p2"))
        bad["plan"]["intervals"][0]["minutes"] = 0.05
        refused = _send(sub, json.dumps(bad))
        assert not refused["ok"]
        assert refused["error"].startswith("plan.intervals[0].minutes: an interval lasts at least")
        refused = _send(sub, b'{"id":"p3","plan":{"name":"x","intervals":[{"direction":"up"}]}}')
        assert not refused["ok"] and refused["error"].startswith("plan.intervals[0].direction")
    finally:
        sub.close()
    stored = rig.courier.db.read(current_plan)
    assert stored is not None and stored.plan == ANNA and stored.request_id == "p1"
    assert stored.by == "physio Jo" and rig.courier.db.read(current_revision) == 1

    runner.request("stop")
    rig.run_for(0.1)
    assert runner.state is SessionState.FINISHED
    assert runner.finished[-1].plan == "alternate-2-2"
    runner.request("start")  # the walker's next session: the physio's plan
    rig.run_for(0.1)
    assert runner.plan == ANNA and runner.next_plan is None
    assert runner.session is not None and runner.session.plan == ANNA
    assert [i.direction for i in runner.session.intervals][:2] == ["forward", "backward"]
    assert runner.session.intervals[1].speed == "0.4 mph"
    rig.run_for(10.0)
    assert runner.state is SessionState.RUNNING
    # Neither the plan nor its refusal moved the relay, stopped the monitor or its courier.
    assert rig.hardware.history == relay_before
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert rig.app.link.attaches == attaches
    detach_session(rig.app, runner)


def test_the_stored_plan_is_the_next_session_s_after_a_restart(tmp_path: Path) -> None:
    conn = connect(tmp_path / "events.db")
    with conn:
        assign_plan(conn, ANNA, by="Jo", via="mqtt", assigned_wall="w1")
    conn.close()
    rig = make_rig(tmp_path)  # no broker at all: the plan is local
    runner = attach_session(rig.app, PRESETS["alternate-2-2"])
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_plan is not None)
    rig.run_for(0.05)
    assert runner.plan.name == "alternate-2-2" and runner.next_plan == ANNA
    _armed(rig)
    runner.request("start")
    rig.run_for(0.1)
    assert runner.session is not None and runner.session.plan == ANNA
    detach_session(rig.app, runner)


def test_the_plan_table_is_migration_4(tmp_path: Path) -> None:
    from tests.storage_support import database_at_version

    conn = database_at_version(tmp_path / "device.db", 4)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(plans)")]
    assert columns == ["id", "plan", "assigned_by", "via", "request_id", "assigned_wall"]
    assert isinstance(conn, sqlite3.Connection)
    conn.close()
    conn = connect(tmp_path / "device.db")  # migration 5 names each plan's walker
    columns = [row[1] for row in conn.execute("PRAGMA table_info(plans)")]
    assert columns[-1] == "walker"
    conn.close()


def test_the_cli_sets_a_plan_a_running_monitor_uses_from_its_next_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from launcher.cli import main

    rig = make_rig(tmp_path)
    _armed(rig)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"])
    relay_before = list(rig.hardware.history)
    db = str(tmp_path / "events.db")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "intervals": [{"direction": "rest", "minutes": 1}]}')
    assert main(["plan", "--db", db, "set", str(bad)]) == 2
    assert "intervals: the plan has no walking interval" in capsys.readouterr().err
    assert main(["plan", "--db", db, "set", "progression-week-2", "--by", "Jo"]) == 0
    assert "from the next session start" in capsys.readouterr().out
    # The courier notices the new row on its heartbeat and hands the plan to the loop.
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_plan is not None)
    rig.run_for(0.05)
    assert runner.next_plan == PRESETS["progression-week-2"]
    runner.request("start")
    rig.run_for(0.1)
    assert runner.session is not None and runner.session.plan.name == "progression-week-2"
    assert main(["plan", "--db", db, "show"]) == 0
    shown = capsys.readouterr().out
    assert "In force: plan 1, assigned by Jo via cli" in shown
    assert main(["plan", "--db", db, "clear"]) == 0
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_plan is not None)
    rig.run_for(0.05)
    assert runner.next_plan == PRESETS["alternate-2-2"]  # the config's again, next time
    assert runner.session.plan.name == "progression-week-2"  # the walk under way keeps its own
    assert rig.hardware.history == relay_before and rig.state == "ARMED"
    detach_session(rig.app, runner)


def test_a_plan_sent_from_the_dashboard_reaches_the_device_and_applies_at_the_next_session(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    from tests.caregiver_support import Http, running_service
    from tests.caregiver_support import make_config as caregiver_config

    rig = make_rig(tmp_path, mqtt=config_for(mosquitto))
    assert rig.courier.reporter is not None
    assert rig.courier.reporter.wait_until(lambda s: s.ready, WAIT)
    _armed(rig)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"])
    runner.request("start")
    rig.run_for(5.0)
    relay_before = list(rig.hardware.history)
    (tmp_path / "cg").mkdir()
    with running_service(caregiver_config(mosquitto, tmp_path / "cg"), background=False) as cg:
        assert cg.ingestor.wait_for(lambda: cg.store.device(DEVICE) is not None)
        web = Http(cg.port)
        assert web.login() == 303
        _, _, device_page = web.request("GET", f"/devices/{DEVICE}")
        assert f'href="/devices/{DEVICE}/plan"' in device_page
        _, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        # the presets say what they prescribe (core.protocol.plan.plan_words)
        assert token and "alternate-2-2: 2 min backward / 2 min forward" in page
        rows = [("backward", "3", "0.4 mph"), ("forward", "2", ""), ("backward", "", "")]

        def form(name: str, minutes: tuple[str, ...]) -> list[tuple[str, str]]:
            fields = [("csrf", token[1]), ("preset", ""), ("name", name)]
            for (direction, _, speed), m in zip(rows, minutes, strict=True):
                fields += [("direction", direction), ("minutes", m), ("speed", speed)]
            return fields

        status, _, refused = web.request(
            "POST", f"/devices/{DEVICE}/plan", form("A", ("3", "x", ""))
        )
        assert status == 400 and "intervals[1].minutes: &#39;x&#39; is not a number" in refused
        no_token = form("A", ("3", "2", ""))[1:]
        assert web.request("POST", f"/devices/{DEVICE}/plan", no_token)[0] == 403
        status, headers, _ = web.request(
            "POST", f"/devices/{DEVICE}/plan", form("Anna, week 3", ("3", "2", ""))
        )
        assert status == 303 and "?sent=cg-" in headers["location"]
        request_id = headers["location"].split("sent=")[1]
        _, _, sent_page = web.request("GET", headers["location"])
        assert f'data-request-id="{request_id}" data-state="pending"' in sent_page
        assert pump_link_until(rig.app.link, lambda: rig.app.link._new_plan is not None)

        def answered() -> bool:
            return cg.store.sent_commands(DEVICE)[0].status != "pending"

        assert cg.ingestor.wait_for(answered)  # the device's reply, not just "sent"
        _, _, answered_page = web.request("GET", headers["location"])
        assert f'data-request-id="{request_id}" data-state="accepted"' in answered_page
        assert "Accepted. Stored as plan Anna, week 3 (revision" in answered_page
        assert "used from the walker&#39;s next session" in answered_page
    stored = rig.courier.db.read(current_plan)
    assert stored is not None and stored.request_id == request_id and stored.by == "ann"
    rig.run_for(0.05)
    assert runner.session is not None and runner.session.plan.name == "alternate-2-2"
    runner.request("stop")
    rig.run_for(0.1)
    runner.request("start")
    rig.run_for(0.1)
    assert runner.session.plan == Plan(
        "Anna, week 3", (Interval("backward", 3.0, "0.4 mph"), Interval("forward", 2.0))
    )
    assert rig.hardware.history == relay_before and rig.state == "ARMED"
    detach_session(rig.app, runner)


def test_a_refused_dashboard_plan_names_the_form_row_the_physio_sees() -> None:
    """The form numbers its rows from 1 and leaves blank ones out of the plan: the third row's
    bad minutes below a blank row are the plan's ``intervals[1]``, which a physio read as row 1
    or 2. The problem leads with the row as the page shows it, the plan's field kept."""
    from starlette.datastructures import FormData

    from caregiver.routes.plans import plan_from_form

    rows = [("forward", "2", ""), ("backward", "", ""), ("backward", "x", ""), ("rest", "0.1", "")]
    fields = [("preset", ""), ("name", "Anna")]
    for direction, minutes, speed in rows:
        fields += [("direction", direction), ("minutes", minutes), ("speed", speed)]
    with pytest.raises(PlanInvalid) as refused:
        plan_from_form(FormData(fields))
    assert refused.value.problems == [  # every problem at once: the next row's too
        "row 3: intervals[1].minutes: 'x' is not a number of minutes (such as 2 or 2.5)",
        "row 4: intervals[2].minutes: an interval lasts at least 10 s (0.17 min), not 6 s",
    ]
    fields[fields.index(("minutes", "x"))] = ("minutes", "3")
    with pytest.raises(PlanInvalid) as refused:
        plan_from_form(FormData(fields))
    assert refused.value.problems == [
        "row 4: intervals[2].minutes: an interval lasts at least 10 s (0.17 min), not 6 s"
    ]
    with pytest.raises(PlanInvalid) as refused:  # no row filled in: said as the form has it
        plan_from_form(FormData([("preset", ""), ("name", "Anna")]))
    assert refused.value.problems == [
        "rows: no row has its minutes filled in: give each interval's minutes, or choose a preset"
    ]


def test_the_dashboard_plan_form_takes_a_decimal_comma_and_says_a_blank_name_plainly() -> None:
    """The minutes field opens a phone's decimal keypad, which in a German or French locale
    types "2,5": it was refused as "expected `float`, got `str`". A blank name was refused as
    "name: expected `str` of length >= 1", alone, the rows' own problems unsaid until it was
    filled in. Every problem is said at once, in words."""
    from starlette.datastructures import FormData

    from caregiver.routes.plans import plan_from_form

    def form(name: str, *minutes: str) -> FormData:
        fields = [("preset", ""), ("name", name)]
        for m in minutes:
            fields += [("direction", "backward"), ("minutes", m), ("speed", "")]
        return FormData(fields)

    plan = plan_from_form(form("Anna", "2,5", " ,5", "3"))
    assert [i.minutes for i in plan.intervals] == [2.5, 0.5, 3.0]
    with pytest.raises(PlanInvalid) as refused:
        plan_from_form(form("", "2 min", "0,1"))
    assert refused.value.problems == [
        "name: give the plan a name, such as 'Anna, week 3'",
        "row 1: intervals[0].minutes: '2 min' is not a number of minutes (such as 2 or 2.5)",
        "row 2: intervals[1].minutes: an interval lasts at least 10 s (0.17 min), not 6 s",
    ]


# ---------------------------------------------------------------- progression


def _completed(
    conn: sqlite3.Connection, plan: str, started: str, status: str = "completed"
) -> None:
    """A session row of the preset ``plan`` as the session archive writes it (only what the
    rule reads matters: the figures and the intervals walked)."""
    session_id = f"{plan}-{started}"
    conn.execute(
        "INSERT INTO sessions (id, device_id, plan, status, started_wall, ended_wall, planned_s,"
        " done_s, backward_s, longest_backward_s, steps, walking_s, trips, stumbles, body)"
        " VALUES (?, 'tm', ?, ?, ?, NULL, 1800, ?, 1, 1, 0, 0, 0, 0, '{}')",
        (session_id, plan, status, started, 1800.0 if status == "completed" else 600.0),
    )
    conn.executemany(
        "INSERT INTO session_intervals (session_id, idx, direction, speed, planned_s, done_s,"
        " steps, walking_s, cadence_spm, trips, stumbles) VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0)",
        [
            (session_id, n, i.direction, i.speed, round(i.duration_s, 1), round(i.duration_s, 1))
            for n, i in enumerate(PRESETS[plan].intervals)
        ],
    )


def test_a_progression_advances_when_the_week_s_prescribed_sessions_are_done_and_holds(
    tmp_path: Path,
) -> None:
    progression = PROGRESSIONS["toward-10-minutes"]
    assert progression.stages[0].plan.name == "alternate-2-2" and progression.stages[0].weeks == 2
    assert progression.stages[-1].plan.name == "progression-week-9"
    _validator("progression").validate(progression_to_builtins(progression))
    conn = connect(tmp_path / "device.db")
    with conn:
        start_progression(conn, progression, stage=0, by="Jo", wall="2026-11-02T08:00:00+00:00")
    assigned = current_plan(conn)
    assert assigned is not None and assigned.plan == PRESETS["alternate-2-2"]
    assert assigned.via == "progression"
    zone = dt.UTC
    # Week 45: three completed 2/2 sessions (and a stopped one, and one of another plan).
    with conn:
        for day in ("03", "05", "07"):
            _completed(conn, "alternate-2-2", f"2026-11-{day}T09:00:00+00:00")
        _completed(conn, "alternate-2-2", "2026-11-06T09:00:00+00:00", status="stopped")
        _completed(conn, "progression-week-4", "2026-11-06T10:00:00+00:00")
    with conn:
        assert advance_if_done(conn, zone, "2026-11-07T10:00:00+00:00") is None  # 1 of 2 weeks
    # Week 46: two completed only — not the prescribed three.
    with conn:
        for day in ("10", "12"):
            _completed(conn, "alternate-2-2", f"2026-11-{day}T09:00:00+00:00")
        assert advance_if_done(conn, zone, "2026-11-12T10:00:00+00:00") is None
        _completed(conn, "alternate-2-2", "2026-11-13T09:00:00+00:00")
    # The physio holds it: the third session does not move it on.
    with conn:
        held = change_progression(conn, "hold", by="Jo", wall="2026-11-13T09:30:00+00:00")
    assert held.held and held.stage == 0
    with conn:
        assert advance_if_done(conn, zone, "2026-11-13T10:00:00+00:00") is None
        # the week's three were done while it was held: the release moves it on at once
        advanced = change_progression(
            conn, "release", by="Jo", wall="2026-11-13T10:10:00+00:00", zone=zone
        )
        assert advance_if_done(conn, zone, "2026-11-13T10:20:00+00:00") is None
    assert advanced.stage == 1 and advanced.changed == "advanced" and advanced.advanced_on_release
    # the next stage counts from the Monday after the week that completed this one
    assert advanced.stage_started_wall == "2026-11-16T00:00:00.000+00:00"
    now = current_plan(conn)
    assert now is not None and now.plan is not None and now.plan.name == "progression-week-2"
    # The new stage counts only its own sessions, from its start.
    with conn:
        assert advance_if_done(conn, zone, "2026-11-13T10:30:00+00:00") is None
        back = change_progression(conn, "step_back", by="Jo", wall="2026-11-14T08:00:00+00:00")
    assert back.stage == 0 and back.stage_started_wall == "2026-11-14T08:00:00+00:00"
    now = current_plan(conn)
    assert now is not None and now.plan == PRESETS["alternate-2-2"]
    conn.close()
    fresh = connect(tmp_path / "other.db")
    with pytest.raises(LookupError, match="no progression"), fresh:
        change_progression(fresh, "hold", by="Jo", wall="w")
    fresh.close()


def test_a_stage_completed_before_ntp_set_the_clock_starts_after_the_sessions_that_did_it(
    tmp_path: Path,
) -> None:
    """A Pi without a battery-backed clock reads its last shutdown's time until NTP sets it.
    A stage completed then must not start days early: where the next stage walks the same
    plan (2/2 twice a week, then three times), the old stage's sessions would count toward
    the new one, and the next session would advance it again, a stage skipped."""
    plan = PRESETS["alternate-2-2"]
    progression = Progression(
        "custom",
        (
            Stage(plan, weeks=1, sessions_per_week=2),
            Stage(plan, weeks=1, sessions_per_week=3),
            PROGRESSIONS["toward-10-minutes"].stages[1],
        ),
    )
    conn = connect(tmp_path / "device.db")
    with conn:
        start_progression(conn, progression, stage=0, by="Jo", wall="2026-11-09T08:00:00+00:00")
        for day in ("10", "11"):  # Tuesday and Wednesday of 2026-W46, the clock set
            _completed(conn, plan.name, f"2026-11-{day}T09:00:00+00:00")
    saved = "2026-10-30T18:00:00+00:00"  # after a reboot, before NTP: the last shutdown's time
    with conn:
        advanced = advance_if_done(conn, dt.UTC, saved)
    assert advanced is not None and advanced.stage == 1
    # the Monday after the week the sessions completed it in, not the clock's time
    assert advanced.stage_started_wall == "2026-11-16T00:00:00.000+00:00"
    with conn:
        _completed(conn, plan.name, "2026-11-12T09:00:00+00:00")  # the new stage's first
        assert advance_if_done(conn, dt.UTC, "2026-11-12T10:00:00+00:00") is None
    state = current_progression(conn)
    assert state is not None and state.stage == 1
    conn.close()


def test_progression_commands_are_checked_and_name_the_field() -> None:
    progression = PROGRESSIONS["toward-10-minutes"]
    payload = encode_command(AssignProgression(progression, 2, "Jo"), "g1")
    _validator("command").validate(json.loads(payload))
    request = parse_command("progression", payload.encode())
    assert request.command == AssignProgression(progression, 2, "Jo")
    hold = encode_command(ChangeProgression("hold", "Jo"), "g2")
    _validator("command").validate(json.loads(hold))
    assert parse_command("progression", hold.encode()).command == ChangeProgression("hold", "Jo")
    bad = json.loads(payload)
    bad["progression"]["stages"][3]["plan"]["intervals"][0]["minutes"] = 0.01
    with pytest.raises(CommandRefused, match=r"^progression\.stages\[3\]\.plan\.intervals\[0\]"):
        parse_command("progression", json.dumps(bad).encode())
    for wrong, problem in (
        ({"action": "skip"}, "action: must be one of hold, release, step_back"),
        ({}, "progression: give either"),
        ({**json.loads(payload), "stage": 9}, "stage: must be 0 to 8"),
    ):
        with pytest.raises(CommandRefused, match=f"^{re.escape(problem)}"):
            parse_command("progression", json.dumps(wrong).encode())


def test_a_progression_advances_on_the_device_after_the_session_that_completes_its_stage(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    short = Plan("short", (Interval.of_seconds("backward", 20.0),))
    longer = Plan("longer", (Interval.of_seconds("backward", 40.0),))
    # Once a week for two weeks: a day counts once (core.progress.days_done), so the test's
    # first session is moved back a week once stored (a test run walks within one day).
    progression = Progression("test", (Stage(short, weeks=2, sessions_per_week=1), Stage(longer)))
    rig = make_rig(tmp_path, mqtt=config_for(mosquitto))
    assert rig.courier.reporter is not None
    assert rig.courier.reporter.wait_until(lambda s: s.ready, WAIT)
    _armed(rig)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"])
    relay_before = list(rig.hardware.history)
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/reply"])
    try:
        reply = _send(
            sub, encode_command(AssignProgression(progression, by="Jo"), "g1"), "progression"
        )
    finally:
        sub.close()
    assert reply["ok"] and reply["result"]["stage"] == 1 and reply["result"]["plan"] == "short"
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_plan is not None)
    rig.run_for(0.05)
    for n in range(2):  # the stage's two prescribed sessions, completed
        runner.request("start")
        rig.run_for(25.0)
        assert runner.state is SessionState.FINISHED
        assert runner.finished[-1].plan == "short" and runner.finished[-1].status == "completed"
        if n == 0:
            assert rig.app.link.flush(WAIT)
            stage = rig.courier.db.read(current_progression)
            assert stage is not None and stage.stage == 0  # one of two weeks: not yet
            deadline = time.monotonic() + WAIT  # a bound against hangs, not a timing
            while not rig.courier.db.read(_ended_on_disk):  # its final record, then moved
                assert time.monotonic() < deadline, "the first session's end not stored"
                rig.run_for(0.02)
            rig.courier.db.write(_a_week_earlier)
    # The final record reaches the courier, which advances and hands the next plan over.
    # The loop keeps running meanwhile: a measurement thread still busy when the session ended
    # (a loaded machine) has the runner send its final record from a later iteration.
    link = rig.app.link
    deadline = time.monotonic() + WAIT  # a bound against hangs, not a timing
    while not (link._new_plan is not None or runner.next_plan == longer):
        assert time.monotonic() < deadline, "no advanced plan from the courier"
        rig.run_for(0.02)
    rig.run_for(0.05)
    assert runner.next_plan == longer
    state = rig.courier.db.read(current_progression)
    assert state is not None and state.stage == 1 and state.changed == "advanced"
    assert rig.hardware.history == relay_before and rig.state == "ARMED"
    detach_session(rig.app, runner)


def _ended_on_disk(conn: sqlite3.Connection) -> bool:
    """The session's final record is stored: not only its end (``FINAL_DUE``), whose final
    record, stored later, would write its start back over the one moved a week earlier."""
    return bool(
        conn.execute(
            "SELECT count(*) FROM sessions WHERE status != 'running' AND published != ?",
            (FINAL_DUE,),
        ).fetchone()[0]
    )


def _a_week_earlier(conn: sqlite3.Connection) -> None:
    """The stored sessions and the progression's stage start, a week (and a day) earlier: the
    sessions so far walked last week."""

    def earlier(wall: str, days: int) -> str:
        moment = dt.datetime.fromisoformat(wall) - dt.timedelta(days=days)
        return moment.isoformat(timespec="milliseconds")

    for session_id, wall in conn.execute("SELECT id, started_wall FROM sessions").fetchall():
        conn.execute(
            "UPDATE sessions SET started_wall = ? WHERE id = ?", (earlier(wall, 7), session_id)
        )
    for row_id, wall in conn.execute("SELECT id, stage_started_wall FROM progressions").fetchall():
        conn.execute(
            "UPDATE progressions SET stage_started_wall = ? WHERE id = ?",
            (earlier(wall, 8), row_id),
        )


def test_the_cli_sets_holds_and_steps_back_a_progression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from launcher.cli import main

    db = str(tmp_path / "device.db")
    for action in ("hold", "release", "step-back"):  # nothing to change: bad usage, exit 2
        assert main(["plan", "--db", db, "progression", action]) == 2
        assert (
            f"retroguard plan progression {action}: no progression is assigned to this device "
            "(assign one first: retroguard plan progression set NAME)"
        ) in capsys.readouterr().err
    assert (
        main(["plan", "--db", db, "progression", "set", "toward-10-minutes", "--stage", "0"]) == 2
    )
    assert "--stage must be 1 to 9" in capsys.readouterr().err
    assert (
        main(["plan", "--db", db, "progression", "set", "toward-10-minutes", "--stage", "3"]) == 0
    )
    assert "stage 3 of 9" in capsys.readouterr().out
    assert main(["plan", "--db", db, "progression", "step-back", "--by", "Jo"]) == 0
    assert "stage 2 of 9" in capsys.readouterr().out
    assert main(["plan", "--db", db, "progression", "hold"]) == 0
    assert "(held)" in capsys.readouterr().out
    assert main(["plan", "--db", db, "show"]) == 0  # held by the physio: said once, not twice
    assert (
        "Progression toward-10-minutes is held at stage 2 of 9: its stage's plan "
        "(progression-week-2) comes back with: retroguard plan progression release"
    ) in capsys.readouterr().out
    conn = connect(db)
    now = current_plan(conn)
    assert now is not None and now.plan == PRESETS["progression-week-2"] and now.by == "Jo"
    conn.close()


def test_a_step_back_at_the_first_stage_is_refused_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stage 1 has no stage before it: the CLI says the walker is already there and exits 2
    (as its other refusals), and no row is written — no "stepped back", no plan assigned again
    (whose new revision would restart nothing but still read as a change in the history)."""
    from launcher.cli import main

    db = tmp_path / "device.db"
    conn = connect(db)
    with conn:
        add_walker(conn, "Anna B", by="Jo", wall="2026-11-01T08:00:00+00:00")
    conn.close()
    for walker, who in (("default", "the walker is"), ("anna-b", "walker anna-b is")):
        base = ["plan", "--db", str(db), "progression"]
        assert main([*base, "set", "toward-10-minutes", "--walker", walker]) == 0
        capsys.readouterr()
        conn = connect(db)
        before = (current_progression(conn, walker), current_revision(conn))
        conn.close()
        assert main([*base, "step-back", "--walker", walker, "--by", "Jo"]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == (
            f"retroguard plan progression step-back: {who} already at the first stage of "
            "toward-10-minutes (stage 1 of 9): nothing to step back to; nothing changed\n"
        )
        conn = connect(db)
        assert (current_progression(conn, walker), current_revision(conn)) == before
        conn.close()
    conn = connect(db)
    with pytest.raises(ProgressionUnchanged), conn:
        change_progression(conn, "step_back", by="Jo", wall="w")
    assert conn.execute("SELECT count(*) FROM progressions").fetchone() == (2,)
    conn.close()


def test_a_mistyped_progression_name_is_named_as_one_not_as_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``plan progression set towards-10`` said "towards-10: cannot read: No such file or
    directory": a physio who typed a preset's name was told about files. Now it says what the
    command takes and names the presets, as ``plan set`` does for a plan, and stores nothing."""
    from firmware.storage.progressions import current_progression
    from launcher.cli import main

    db = str(tmp_path / "device.db")
    assert main(["plan", "--db", db, "progression", "set", "towards-10"]) == 2
    assert (
        "retroguard plan: towards-10: not a preset progression or a progression file: give a "
        "preset (toward-10-minutes; retroguard plan presets lists them) or a .json file\n"
    ) in capsys.readouterr().err
    conn = connect(db)
    try:
        assert current_progression(conn) is None
    finally:
        conn.close()


def test_a_hold_of_a_held_progression_and_a_release_of_a_free_one_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Holding what is held, or releasing what is not, changes nothing: refused as a step back
    at stage 1 is (exit 2, the reason said), and no row is written, so the progression's
    history lists only real changes; the first hold and release still go through."""
    from launcher.cli import main

    db = tmp_path / "device.db"
    base = ["plan", "--db", str(db), "progression"]
    assert main([*base, "set", "toward-10-minutes"]) == 0
    assert main([*base, "release", "--by", "Jo"]) == 2
    assert capsys.readouterr().err.endswith(
        "retroguard plan progression release: the walker's progression toward-10-minutes is "
        "not held: nothing to release; nothing changed\n"
    )
    assert main([*base, "hold", "--by", "Jo"]) == 0
    assert "(held)" in capsys.readouterr().out
    conn = connect(db)
    held = (current_progression(conn), current_revision(conn))
    rows = conn.execute("SELECT count(*) FROM progressions").fetchone()
    conn.close()
    assert main([*base, "hold", "--by", "Jo"]) == 2
    assert capsys.readouterr().err == (
        "retroguard plan progression hold: the walker's progression toward-10-minutes is "
        "already held: nothing to hold; nothing changed\n"
    )
    conn = connect(db)
    assert (current_progression(conn), current_revision(conn)) == held
    assert conn.execute("SELECT count(*) FROM progressions").fetchone() == rows
    with pytest.raises(ProgressionUnchanged), conn:
        change_progression(conn, "hold", by="Jo", wall="w", walker="default")
    conn.close()
    assert main([*base, "release", "--by", "Jo"]) == 0
    conn = connect(db)
    state = current_progression(conn)
    conn.close()
    assert state is not None and not state.held and state.changed == "released"


def test_a_progression_from_the_dashboard_reaches_the_device_and_can_be_held(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    from tests.caregiver_support import Http, running_service
    from tests.caregiver_support import make_config as caregiver_config

    rig = make_rig(tmp_path, mqtt=config_for(mosquitto))
    assert rig.courier.reporter is not None
    assert rig.courier.reporter.wait_until(lambda s: s.ready, WAIT)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"])
    (tmp_path / "cg").mkdir()
    with running_service(caregiver_config(mosquitto, tmp_path / "cg"), background=False) as cg:
        assert cg.ingestor.wait_for(lambda: cg.store.device(DEVICE) is not None)
        web = Http(cg.port)
        assert web.login() == 303
        _, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token and 'action="/devices/treadmill-1/progression"' in page
        url = f"/devices/{DEVICE}/progression"
        status, headers, _ = web.request("POST", url, [("csrf", token[1]), ("action", "step_back")])
        assert status == 303  # sent; the device refuses it: nothing to step back on

        def step_back_refused() -> bool:
            return cg.store.sent_commands(DEVICE)[0].status == "refused"

        assert cg.ingestor.wait_for(step_back_refused)
        _, _, answers = web.request("GET", f"/api/devices/{DEVICE}/plan-commands")
        (step_back,) = json.loads(answers)["commands"]
        assert step_back["state"] == "refused" and step_back["summary"] == (
            "progression schedule: step back a stage"
        )
        assert step_back["text"] == "Refused: no progression is assigned to this device."
        pick = [("csrf", token[1]), ("progression", "toward-10-minutes")]
        status, _, refused = web.request("POST", url, [*pick, ("stage", "12")])
        assert status == 400 and "stage: must be 1 to 9" in refused
        status, headers, _ = web.request("POST", url, [*pick, ("stage", "2")])
        assert status == 303 and "?sent=cg-" in headers["location"]
        week_2 = PRESETS["progression-week-2"]
        link = rig.app.link
        assert pump_link_until(link, lambda: link._new_plan is not None)
        rig.run_for(0.05)
        assert runner.next_plan == week_2
        status, _, _ = web.request("POST", url, [("csrf", token[1]), ("action", "hold")])
        assert status == 303

        def held() -> bool:
            state = rig.courier.db.read(current_progression)
            return state is not None and state.held

        assert pump_link_until(link, held)
        state = rig.courier.db.read(current_progression)
        assert state is not None and state.stage == 1 and state.by == "ann"
        # Step back to stage 1, then once more: the device refuses that one, naming why, and
        # records nothing (no row, no plan assigned again).
        back = [("csrf", token[1]), ("action", "step_back")]
        for _ in range(2):
            status, _, _ = web.request("POST", url, back)
            assert status == 303

            def answered() -> bool:
                return cg.store.sent_commands(DEVICE)[0].status in ("accepted", "refused")

            assert cg.ingestor.wait_for(answered)
        first, second = (
            c["text"]
            for c in json.loads(web.request("GET", f"/api/devices/{DEVICE}/plan-commands")[2])[
                "commands"
            ][:2]
        )
        assert first == (
            "Refused: the walker is already at the first stage of toward-10-minutes "
            "(stage 1 of 9): nothing to step back to."
        )
        assert second.startswith("Accepted. "), second
    state = rig.courier.db.read(current_progression)
    assert state is not None and state.stage == 0 and state.changed == "stepped back"
    assert rig.courier.db.read(
        lambda c: c.execute("SELECT count(*) FROM progressions").fetchone()
    ) == (3,)
    detach_session(rig.app, runner)


def test_the_plan_in_force_stays_while_records_are_in_memory_and_new_ones_reach_the_file(
    tmp_path: Path, disk: FillableDisk
) -> None:
    path = tmp_path / "events.db"
    clock = [0.0]
    db = FallbackDatabase(path, clock=lambda: clock[0])
    db.open()
    outbox = Outbox(db, Topics("retroguard", "tm-1"))
    week_2 = PRESETS["progression-week-2"]
    db.write(lambda conn: assign_plan(conn, ANNA, by="Jo", via="mqtt", assigned_wall="w1"))
    db.write(
        lambda conn: start_progression(
            conn, PROGRESSIONS["toward-10-minutes"], stage=1, by="Jo", wall="w2"
        )
    )
    disk.fill()
    outbox.enqueue_event(alert())  # bigger than a page: it cannot fit in a full file
    assert db.in_memory
    in_memory = db.read(current_plan)
    assert in_memory is not None and in_memory.plan == week_2  # the progression's stage plan
    progression = db.read(current_progression)
    assert progression is not None and progression.stage == 1
    db.write(lambda conn: assign_plan(conn, ANNA, by="Jo", via="cli", assigned_wall="w3"))
    disk.free()
    clock[0] += DISK_RETRY_S + 1.0
    assert db.recover() and not db.in_memory
    on_file = db.read(current_plan)
    assert on_file is not None and on_file.plan == ANNA and on_file.via == "cli"
    assert [a.assigned_wall for a in db.read(plan_history)] == ["w3", "w2", "w1"]
    db.close()


def test_the_retained_progress_prescribes_what_the_progression_s_stage_says(
    tmp_path: Path,
) -> None:
    from core.protocol.messages import ProgressMessage
    from core.protocol.payloads import decode_as
    from firmware.mqtt.status import RetainedStatus

    path = tmp_path / "device.db"
    conn = connect(path)
    conn.close()
    status = RetainedStatus(path, Topics("retroguard", DEVICE), zone=dt.UTC)

    def prescribed() -> int | None:
        status.forget()
        retained = status.progress()
        assert retained is not None
        return decode_as(ProgressMessage, retained.payload.encode()).week_prescribed

    assert prescribed() == 3  # no progression: the prescription's three a week
    twice = Progression(
        "twice", (Stage(ANNA, sessions_per_week=2), Stage(ANNA, 1, 4), Stage(ANNA, 1, 1))
    )
    now = dt.datetime.now(dt.UTC)
    conn = connect(path)
    last_week = (now - dt.timedelta(days=8)).isoformat()
    with conn:  # assigned last week: twice a week since
        start_progression(conn, twice, stage=0, by="Jo", wall=last_week)
    assert prescribed() == 2
    with conn:  # moved on this week (it counts in full from the next)
        start_progression(conn, twice, stage=1, by="Jo", wall=now.isoformat())
    assert prescribed() == 2  # the week that earned the advance is not missed after the fact
    with conn:  # a step back counts at once
        start_progression(conn, twice, stage=2, by="Jo", wall=now.isoformat())
    conn.close()
    assert prescribed() == 1
    status.close()


def test_a_progression_file_with_a_key_twice_or_too_large_is_refused_before_any_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON kept the last of a key given twice (which stage's ``weeks``?), and the file was
    read whole whatever its size (``/dev/zero`` never ended): both are refused now, naming the
    key, or the size and the bound, and no database is created."""
    from core.plan_presets import PROGRESSIONS
    from core.protocol.plan import progression_to_builtins
    from launcher.cli import main
    from tools.plans import MAX_PROGRESSION_FILE_BYTES

    db = tmp_path / "state" / "device.db"
    db.parent.mkdir()
    text = json.dumps(progression_to_builtins(PROGRESSIONS["toward-10-minutes"]))
    assert text.count('"weeks":') > 1
    twice = tmp_path / "twice.json"
    twice.write_text(text.replace('"weeks":', '"weeks": 1, "weeks":', 1))
    huge = tmp_path / "huge.json"
    huge.write_text(text)
    with huge.open("r+b") as f:
        f.truncate(MAX_PROGRESSION_FILE_BYTES + 1)
    said = {
        twice: f"{twice}: not valid JSON: key 'weeks' appears twice in one object",
        huge: f"{huge}: {MAX_PROGRESSION_FILE_BYTES + 1:,} bytes, over the "
        f"{MAX_PROGRESSION_FILE_BYTES:,} bytes a progression file may have",
        Path("/dev/zero"): f"/dev/zero: more than the {MAX_PROGRESSION_FILE_BYTES:,} bytes a "
        "progression file may have",
    }
    for path, says in said.items():
        assert main(["plan", "--db", str(db), "progression", "set", str(path)]) == 2
        assert f"retroguard plan: {says}" in capsys.readouterr().err
    assert list(db.parent.iterdir()) == []
    exact = tmp_path / "exact.json"  # the bound itself is read (as JSON with blanks after it)
    exact.write_text(text + " " * (MAX_PROGRESSION_FILE_BYTES - len(text)))
    assert main(["plan", "--db", str(db), "progression", "set", str(exact)]) == 0


# ------------------------------------------------- a plan set by hand during a progression

HAND_HOLD = "held: a plan was set by hand"
"""The change a plan set by hand records when it holds the walker's progression."""


def test_a_plan_set_by_hand_holds_the_progression_and_a_release_puts_the_stage_s_plan_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A progression counts only completed sessions of its stage's plan. A plan set by hand
    (``retroguard plan set``) for a walker on one left the progression running: their sessions
    of that plan never counted, so it stalled for good and nobody was told. Now the plan holds
    it (a row by the same person, the reason said), the CLI says so, and the release puts the
    stage's plan back (before, it only unheld, and the hand-set plan stayed in force)."""
    from launcher.cli import main

    db = str(tmp_path / "device.db")
    base = ["plan", "--db", db]
    assert main([*base, "progression", "set", "toward-10-minutes", "--stage", "2"]) == 0
    week_2 = PRESETS["progression-week-2"]  # stage 2's plan
    capsys.readouterr()
    assert main([*base, "set", "progression-week-4", "--by", "Jo"]) == 0
    said = capsys.readouterr().out
    conn = connect(db)
    # The walker's sessions of the hand-set plan: the stage's rule does not count them, so
    # the progression could never move on (it stalled, running, unseen): it is held.
    with conn:
        for day in ("02", "04", "06"):
            _completed(conn, "progression-week-4", f"2026-12-{day}T09:00:00+00:00")
        assert advance_if_done(conn, dt.UTC, "2026-12-06T10:00:00+00:00") is None
    state = current_progression(conn)
    assert state is not None and state.stage == 1
    assert state.held and state.changed == HAND_HOLD and state.by == "Jo"
    assert (
        "The walker's progression toward-10-minutes at stage 2 of 9 is now held, because a "
        "plan was set by hand: sessions of this plan do not move the progression on. Release "
        "the hold to go back to the stage's plan (progression-week-2) from the next session.\n"
        "  retroguard plan progression release\n"
    ) in said
    rows = conn.execute("SELECT count(*) FROM progressions").fetchone()
    conn.close()
    # `plan show` says why the plan in force is not the progression's, and the way back
    assert main([*base, "show"]) == 0
    assert (
        "Progression toward-10-minutes is held at stage 2 of 9 (a plan was set by hand): its "
        "stage's plan (progression-week-2) comes back with: retroguard plan progression release\n"
    ) in capsys.readouterr().out
    # Back to the config's plan: also not the stage's; the progression stays held (no new row).
    assert main([*base, "clear", "--by", "Jo"]) == 0
    assert "The walker's progression toward-10-minutes at stage 2 of 9 stays held." in (
        capsys.readouterr().out
    )
    conn = connect(db)
    assert conn.execute("SELECT count(*) FROM progressions").fetchone() == rows
    conn.close()
    assert main([*base, "progression", "release", "--by", "Jo"]) == 0
    assert (
        "The stage's plan (progression-week-2) is in force again from the next session, in "
        "place of the plan set by hand.\n"
    ) in capsys.readouterr().out
    conn = connect(db)
    now = current_plan(conn)
    assert now is not None and now.plan == week_2 and now.via == "progression"
    state = current_progression(conn)
    assert state is not None and not state.held and state.changed == "released"
    conn.close()
    # A physio's own hold and release, the stage's plan in force all along: nothing restored,
    # and a plan equal to the stage's own holds nothing.
    assert main([*base, "set", "progression-week-2"]) == 0
    assert "held" not in capsys.readouterr().out
    assert main([*base, "progression", "hold"]) == 0
    assert main([*base, "set", "progression-week-2"]) == 0  # held already: said so
    assert "toward-10-minutes at stage 2 of 9 stays held." in capsys.readouterr().out
    assert main([*base, "progression", "release"]) == 0
    assert "in force again" not in capsys.readouterr().out
    conn = connect(db)
    assert [a.via for a in plan_history(conn, 3)] == ["cli", "cli", "progression"]
    # Another walker's hand-set plan holds their own progression only, named as theirs.
    with conn:
        add_walker(conn, "Anna B", by="Jo", wall="2026-12-01T08:00:00+00:00")
    conn.close()
    assert main([*base, "progression", "set", "toward-10-minutes", "--walker", "anna-b"]) == 0
    capsys.readouterr()
    assert main([*base, "set", "progression-week-4", "--walker", "anna-b"]) == 0
    said = capsys.readouterr().out
    assert (
        "Walker anna-b's progression toward-10-minutes at stage 1 of 9 is now held, because "
        "a plan was set by hand"
    ) in said
    assert said.endswith("  retroguard plan progression release --walker anna-b\n")
    conn = connect(db)
    theirs, default = current_progression(conn, "anna-b"), current_progression(conn)
    assert theirs is not None and theirs.held and theirs.changed == HAND_HOLD
    assert default is not None and not default.held
    conn.close()


def _until_next_plan(rig: Rig, runner: SessionRunner, name: str) -> None:
    """Run the loop until the courier has handed it ``name`` for the next session (a bound
    against hangs, not a timing)."""
    deadline = time.monotonic() + WAIT
    while runner.next_plan is None or runner.next_plan.name != name:
        assert time.monotonic() < deadline, f"plan {name!r} never reached the loop"
        rig.run_for(0.02)


def test_a_plan_set_from_the_dashboard_holds_the_walker_s_progression_and_says_so(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Over MQTT: the dashboard's plan form sends ``cmd/plan`` for a walker on a progression.
    The device holds it and its reply says so (typed, ``progression_held``), which the
    dashboard shows; the walker's next session walks the hand-set plan without moving the
    progression on; a release from the dashboard puts the stage's plan back, said too, and
    the next completed session of it moves the progression on. No relay is touched."""
    from tests.caregiver_support import Http, running_service
    from tests.caregiver_support import make_config as caregiver_config

    short = Plan("short", (Interval.of_seconds("backward", 20.0),))
    longer = Plan("longer", (Interval.of_seconds("backward", 40.0),))
    progression = Progression("test", (Stage(short, weeks=1, sessions_per_week=1), Stage(longer)))
    rig = make_rig(tmp_path, mqtt=config_for(mosquitto))
    assert rig.courier.reporter is not None
    assert rig.courier.reporter.wait_until(lambda s: s.ready, WAIT)
    _armed(rig)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"])
    relay_before = list(rig.hardware.history)
    link = rig.app.link
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/reply"])

    def reply_to(request_id: str) -> dict[str, Any]:
        def found() -> list[dict[str, Any]]:
            return [
                r
                for r in (json.loads(m.payload) for m in sub.on("/reply"))
                if r.get("request_id") == request_id
            ]

        assert sub.wait(lambda: bool(found()))
        validate("reply", json.dumps(found()[0]))
        return found()[0]

    (tmp_path / "cg").mkdir()
    try:
        assigned = _send(
            sub, encode_command(AssignProgression(progression, by="Jo"), "g1"), "progression"
        )
        assert assigned["ok"] and assigned["result"]["plan"] == "short"
        with running_service(caregiver_config(mosquitto, tmp_path / "cg"), background=False) as cg:
            assert cg.ingestor.wait_for(lambda: cg.store.device(DEVICE) is not None)
            web = Http(cg.port)
            assert web.login() == 303
            _, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
            token = re.search(r'name="csrf" value="([^"]+)"', page)
            assert token
            hand_form = [("csrf", token[1]), ("preset", ""), ("name", "hand")]
            hand_form += [("direction", "backward"), ("minutes", "0.25"), ("speed", "")]
            status, headers, _ = web.request("POST", f"/devices/{DEVICE}/plan", hand_form)
            assert status == 303
            request_id = headers["location"].split("sent=")[1]
            result = reply_to(request_id)["result"]
            assert result["plan"] == "hand" and result["progression_held"] == {
                "progression": "test",
                "stage": 1,
                "stages": 2,
                "plan": "short",
                "already": False,
            }

            def answered() -> bool:
                return cg.store.sent_commands(DEVICE)[0].status != "pending"

            assert cg.ingestor.wait_for(answered)
            _, _, answered_page = web.request("GET", headers["location"])
            assert (
                "used from the walker&#39;s next session. The walker&#39;s progression test at "
                "stage 1 of 2 is now held, because a plan was set by hand: sessions of this "
                "plan do not move the progression on. Release the hold to go back to the "
                "stage&#39;s plan (short) from the next session."
            ) in answered_page
            state = rig.courier.db.read(current_progression)
            assert state is not None and state.held and state.changed == HAND_HOLD
            assert state.by == "ann"
            # The walker's next session: the hand-set plan, completed; the progression stays.
            _until_next_plan(rig, runner, "hand")
            runner.request("start")
            rig.run_for(20.0)
            assert runner.state is SessionState.FINISHED
            assert runner.finished[-1].plan == "hand" and runner.finished[-1].status == "completed"
            assert link.flush(WAIT)
            state = rig.courier.db.read(current_progression)
            assert state is not None and state.stage == 0 and state.held
            # The release, from the dashboard: the stage's plan is back, and the answer says so.
            url = f"/devices/{DEVICE}/progression"
            status, headers, _ = web.request(
                "POST", url, [("csrf", token[1]), ("action", "release")]
            )
            assert status == 303
            result = reply_to(headers["location"].split("sent=")[1])["result"]
            assert result["plan_restored"] is True and result["held"] is False
            assert cg.ingestor.wait_for(answered)
            _, _, answered_page = web.request("GET", headers["location"])
            assert (
                "Progression schedule test: released, stage 1 of 2. The stage&#39;s plan (short) "
                "is in force again from the next session, in place of the plan set by hand."
            ) in answered_page
    finally:
        sub.close()
    _until_next_plan(rig, runner, "short")
    assert runner.next_plan == short
    runner.request("start")
    rig.run_for(25.0)
    assert runner.finished[-1].plan == "short" and runner.finished[-1].status == "completed"
    _until_next_plan(rig, runner, "longer")  # the released progression moved on
    assert rig.hardware.history == relay_before and rig.state == "ARMED"
    detach_session(rig.app, runner)


@pytest.mark.parametrize(
    ("length", "accepted"),
    [
        ({"minutes": 0.1666666666665}, True),  # 10 s as a physio's 13 places write it
        ({"seconds": 9.9999999999}, True),
        ({"minutes": 0.16}, False),
        ({"seconds": 9.99}, False),
        ({"seconds": 9.9999999}, False),  # 1e-7 s short: past the 1e-9 s allowed
    ],
)
def test_a_file_and_the_wire_take_an_interval_s_length_by_one_rule(
    length: dict[str, float], accepted: bool
) -> None:
    """The wire took an interval within 1e-9 s of the shortest (10 s) and a plan file refused
    it "not 10 s": the same plan was one on the dashboard and none in a file."""
    from core.errors import ConfigError
    from firmware.session.plan import parse_plan

    walk = {"direction": "backward", "speed": "0.5 mph"} | length
    data = {"name": "Anna", "intervals": [walk]}
    minutes = length.get("minutes", length.get("seconds", 0.0) / 60.0)
    on_the_wire = {"direction": "backward", "speed": "0.5 mph", "minutes": minutes}
    wire = {"name": "Anna", "intervals": [on_the_wire]}
    if accepted:
        assert parse_plan(data, "anna.toml").intervals[0].duration_s == pytest.approx(10.0)
        assert plan_from_builtins(wire).intervals[0].duration_s == pytest.approx(10.0)
    else:
        with pytest.raises(ConfigError, match=r"anna\.toml: intervals\[0\]: duration must be"):
            parse_plan(data, "anna.toml")
        with pytest.raises(PlanInvalid, match=r"intervals\[0\].minutes: an interval lasts"):
            plan_from_builtins(wire)


@pytest.mark.parametrize(
    ("seconds", "accepted"),
    [(10.0 - 1e-9, True), (3600.0, True), (3600.5, False)],
)
def test_a_plan_file_takes_its_interval_bounds_themselves(seconds: float, accepted: bool) -> None:
    """A file's interval of exactly the longest (an hour) or exactly the 1e-9 s allowed short
    of the shortest is taken; past the longest refused (mut39: ``>=`` for ``>``, ``<=`` for
    ``<``, the longest unchecked in a file)."""
    from core.errors import ConfigError
    from firmware.session.plan import parse_plan

    data = {"name": "Anna", "intervals": [{"direction": "backward", "seconds": seconds}]}
    if accepted:
        assert parse_plan(data, "anna.toml").intervals[0].duration_s == seconds
    else:
        with pytest.raises(ConfigError, match=r"anna\.toml: intervals\[0\]: duration must be"):
            parse_plan(data, "anna.toml")
