"""Session 37's new code: decisions that hand mutation (mut38) found no test noticing.

Mutants killed here (each survived the tests of its module before):

* safety: the reset button read at an arming's first edge under static drive too (the
  ``hold_s is not None`` of ``_hold`` dropped). The app hands the controller the button's
  level on every rig, so a bench rig driving the relay statically, which has no latch to
  close, faulted "reset let go before the latch closed" at every arming whose press was let
  go before the loop's next read.
* storage/walkers: ``said_alike`` counting ASCII letters and digits only (every two names in
  Cyrillic, or any script without them, one name: the second walker refused as "taken"); the
  day a removed walker was removed cut to nine characters.
* core/protocol/plan ``every_problem``: a blank name said twice (the type's and the rule's);
  a plan with no ``intervals`` and another mistake said without "intervals: missing"; a
  string for ``intervals`` read as a list of its characters; "no walking interval" said of a
  plan whose interval of a mistyped direction may be its walk; an interval of two mistakes
  said with its first only; a stored plan's type error said with a rule for plans being sent;
  a plan of exactly the longest session (180 min) refused (``walk_problems``'s ``>`` made
  ``>=``).
* core/protocol/plan: "must have at least 1 intervals" (the test beside it asks only that the
  words begin so); a leading decimal comma (",0 km/h") not read as a number, so a walking
  interval at no speed went out; a command's ``plan: object contains unknown field`` said as
  ``plan.plan: ...``.
* caregiver/routes/plans ``plan_from_form``: a preset chosen with a custom plan's minutes
  typed and no name yet sent the preset and dropped the rows; a name or minutes of blanks
  taken as typed.
* session/voice ``check_voice``: "" (off) refused; a variant with an underscore
  (``en+female_whisper``) refused; 41 characters taken, or 40 refused, where the refusal says
  "at most 40". preflight: "auto" asked of espeak-ng as a voice's name (a warning on every
  default config).
* session/plan ``parse_plan``: a file with no intervals said so twice (its own words and the
  contract's "at least 1 interval"); the contract's rules on the list (all rests) kept for a
  second run when the file had a problem of its own; the file's one ``speed`` said under
  each ``interval[n].speed`` (a key the file does not have), or an interval's own speed
  under the file's ``speed``.
* preflight ``_mqtt``: the client id's and username's text checks made only with a broker set
  (the prefixes' are made always), and the account's checks (a password file not written
  yet) made without one.

Beside the feature's tests: tests/test_plans.py (a stage's weeks and sessions a week said
without their units; "at least 1 weeks", "at least 1 characters long": a bug, fixed with its
test), tests/test_doctor.py (a wrong WHO_AM_I at 0x69 sent the technician to 0x69 again).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.datastructures import FormData

from caregiver.routes.plans import plan_from_form
from core.errors import ConfigError
from core.plan_presets import PRESETS
from core.protocol.commands import AssignPlan, CommandRefused, encode_command, parse_command
from core.protocol.plan import MAX_SESSION_MIN, PlanInvalid, plan_from_builtins
from firmware.config import load_config
from firmware.preflight import preflight
from firmware.safety import Faulted
from firmware.session.plan import parse_plan
from firmware.session.voice import on_path
from firmware.storage.database import connect, transaction
from firmware.storage.walkers import WalkerInvalid, add_walker, remove_walker, roster
from tests.app_support import close_rigs, make_rig
from tests.test_press_let_go_unseen import _let_go_before_the_first_edge

BACKWARD = {"direction": "backward", "minutes": 2}
SIDEWAYS = {"direction": "sideways", "minutes": 2}
REST = {"direction": "rest", "minutes": 2}


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_bench_rig_s_reset_let_go_right_after_the_chirp_arms_as_before(
    tmp_path: Path,
) -> None:
    """Static drive has no latch: the relay is held by the pin's level, so a reset let go
    between the chirp and the loop's next hold leaves nothing open. The check of the button
    at the first edge is the heartbeat latch's; a bench rig that faulted at every such
    arming would teach its technician to hold the button for no reason."""
    rig = make_rig(tmp_path, relay_sense_wired=False, relay_drive="static")
    rig.run_for(1.0)
    _let_go_before_the_first_edge(rig)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 5.0)  # held for the chirp (let go early by the hook)
    rig.run_for(0.5)
    assert rig.state == "ARMED"
    assert rig.app.gpio.relay.holding
    assert not any(isinstance(t.cause, Faulted) for t in rig.app.controller.transitions)


def test_names_in_a_script_without_ascii_letters_are_told_apart(tmp_path: Path) -> None:
    """Мария and Иван are two names to anyone hearing them; a key of ASCII letters alone
    made both nothing, and the second was refused as taken. Said alike, they are still one."""
    conn = connect(tmp_path / "device.db")
    try:
        with transaction(conn):
            maria = add_walker(conn, "Мария", walker_id="maria", by="Jo", wall="w1")
            ivan = add_walker(conn, "Иван", walker_id="ivan", by="Jo", wall="w1")
        assert roster(conn).walkers[1:] == (maria, ivan)
        with pytest.raises(WalkerInvalid, match="walker name 'мария' is taken"):
            add_walker(conn, "мария", walker_id="maria-2", by="Jo", wall="w2")
    finally:
        conn.close()


def test_a_removed_walker_s_name_says_the_day_they_were_removed(tmp_path: Path) -> None:
    """Whoever adds Anna B again reads when the Anna B on record was removed: the day tells
    them whether it is the same person back after a break."""
    conn = connect(tmp_path / "device.db")
    try:
        with transaction(conn):
            add_walker(conn, "Anna B", by="Jo", wall="2026-09-01T10:00:00+02:00")
            remove_walker(conn, "anna-b", by="Jo", wall="2026-10-14T09:30:00+02:00")
        with pytest.raises(WalkerInvalid) as refused:
            add_walker(conn, "anna b", by="Jo", wall="2026-12-07T09:00:00+01:00")
        assert "walker anna-b, removed 2026-10-14, whose records stay theirs" in str(refused.value)
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("data", "problems"),
    [
        # the type's bound on a blank name, not the rule's words as well
        ({"name": "", "intervals": [BACKWARD]}, ["name: must be at least 1 character long"]),
        (
            {"name": "x" * 81},
            ["name: must be at most 80 characters long", "intervals: missing"],
        ),
        ({"name": "a", "intervals": "abc"}, ["intervals: expected `array`, got `str`"]),
        ({"name": "a", "intervals": []}, ["intervals: must have at least 1 interval"]),
        # the mistyped direction may be the walk: "no walking interval" waits for it
        (
            {"name": "a", "intervals": [SIDEWAYS, REST]},
            ["intervals[0].direction: invalid enum value 'sideways'"],
        ),
        (
            {"name": "a", "intervals": [{"direction": "sideways", "minutes": 0}]},
            [
                "intervals[0].direction: invalid enum value 'sideways'",
                "intervals[0].minutes: must be more than 0 min",
            ],
        ),
    ],
)
def test_every_problem_of_a_malformed_plan_is_said_once_and_no_other(
    data: dict[str, object], problems: list[str]
) -> None:
    """What the physio reads is the plan's problems, each once, and none that is not one."""
    with pytest.raises(PlanInvalid) as refused:
        plan_from_builtins(data)
    assert refused.value.problems == problems


def test_a_stored_plan_s_type_error_is_said_without_the_rules_of_plans_being_sent() -> None:
    """A plan kept from before a rule (a walking interval at "0 mph") is read back under the
    rules of its day; when its type is wrong too, the type is what is said."""
    data = {"name": 5, "intervals": [{**BACKWARD, "speed": "0 mph"}]}
    with pytest.raises(PlanInvalid) as refused:
        plan_from_builtins(data, stored=True)
    assert refused.value.problems == ["name: expected `str`, got `int`"]


def test_a_speed_note_with_a_leading_decimal_comma_counts_as_its_number() -> None:
    """ ",0 km/h" is a number to a physio who writes decimal commas, as ".0 mph" is: no speed
    for a walking interval, refused."""
    with pytest.raises(PlanInvalid, match=r"at ',0 km/h' does not move the belt"):
        plan_from_builtins({"name": "a", "intervals": [{**BACKWARD, "speed": ",0 km/h"}]})
    plan_from_builtins({"name": "a", "intervals": [{**BACKWARD, "speed": ",5 km/h"}]})


def test_a_plan_command_s_unknown_field_is_said_under_plan_once() -> None:
    """A field the plan does not have, in a plan command: "plan: ...", the command's field,
    not "plan.plan: ..."."""
    command = json.loads(encode_command(AssignPlan(PRESETS["alternate-2-2"], by="Jo"), "p1"))
    command["plan"]["arm"] = True
    with pytest.raises(CommandRefused) as refused:
        parse_command("plan", json.dumps(command).encode())
    assert str(refused.value) == "plan: object contains unknown field `arm`"


def test_a_preset_chosen_over_minutes_typed_without_a_name_is_asked_about() -> None:
    """The physio chose a preset, then typed minutes in the rows and no name yet: the rows
    are a custom plan begun as surely as a name is, so the page asks which is meant rather
    than send the preset and drop them."""
    form = FormData(
        [
            ("preset", "alternate-2-2"),
            ("name", ""),
            ("direction", "backward"),
            ("minutes", "3"),
            ("speed", ""),
        ]
    )
    with pytest.raises(PlanInvalid, match="alternate-2-2 is chosen and a custom plan is typed"):
        plan_from_form(form)
    blank = FormData([("preset", "alternate-2-2"), ("name", " "), ("minutes", " ")])
    assert plan_from_form(blank) == PRESETS["alternate-2-2"]  # nothing typed: the preset


@pytest.mark.parametrize("voice", ["", "off", "auto", "en+female_whisper", "en-gb"])
def test_the_voices_a_config_may_name_load_and_start_without_a_word(
    tmp_path: Path, voice: str
) -> None:
    """Off ("" or "off"), "auto", and espeak-ng's own names, a variant's underscore too
    (``espeak-ng --voices=variant`` lists ``female_whisper``): the config takes them, and a
    machine whose espeak-ng has them starts without a warning ("auto" is no voice to ask it
    about: it falls back to beeps by design)."""
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\ndatabase = "events.db"\n[session]\nvoice = "{voice}"\n')
    config = load_config(path)  # refused: ConfigError
    if voice not in ("", "off", "auto") and on_path("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: the warning is that it is not")
    assert [w for w in preflight(config).warnings if "session.voice" in w] == []


def test_a_voice_name_is_at_most_forty_characters_as_the_refusal_says(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    for name, taken in (("e" * 40, True), ("e" * 41, False)):
        path.write_text(f'[storage]\ndatabase = "events.db"\n[session]\nvoice = "{name}"\n')
        if taken:
            load_config(path)
            continue
        with pytest.raises(ConfigError, match=r"session\.voice: .*at most 40"):
            load_config(path)


def test_without_a_broker_the_texts_shapes_are_checked_and_the_account_waits(
    tmp_path: Path,
) -> None:
    """A config whose broker is set later (the installer's ``--broker``): a client id no
    broker takes is refused now, as the prefixes are, not at the day the host is set; the
    account's own checks (its name against the device's, its password file) are for a broker
    there is, so a config without one is not refused for a password file not yet written."""
    path = tmp_path / "config.toml"
    path.write_text('[storage]\ndatabase = "events.db"\n[mqtt]\nclient_id = "tm\\u0000"\n')
    (refused,) = preflight(load_config(path)).problems
    assert refused.startswith("<config>: mqtt.client_id: must not contain control characters")
    path.write_text(
        '[storage]\ndatabase = "events.db"\n[mqtt]\nusername = "tm"\n'
        'password_file = "/nonexistent/pw"\n'
    )
    later = preflight(load_config(path))
    assert [p for p in [*later.problems, *later.warnings] if "mqtt" in p] == []


@pytest.mark.parametrize(
    ("data", "problems"),
    [
        # no intervals: the file's words, not the contract's "at least 1 interval" as well
        ({"name": "a"}, ["interval: the plan has no intervals (add [[interval]] tables)"]),
        # a key mistyped and a plan of rests: both at once, not the rests after a second run
        (
            {"name": "a", "colour": "red", "interval": [REST]},
            [
                "colour: unknown key (known: interval, intervals, name, speed)",
                "interval: the plan has no walking interval (all are rest)",
            ],
        ),
    ],
)
def test_a_plan_file_s_problems_are_said_once_and_all_at_once(
    data: dict[str, object], problems: list[str]
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_plan(data, "anna.toml")
    assert refused.value.problems == [f"anna.toml: {p}" for p in problems]


def test_a_plan_file_s_one_speed_is_said_under_its_own_key() -> None:
    """The file's ``speed``, which every interval without its own takes: its problem is the
    key the physio wrote (``speed``), not ``interval[0].speed``, a key the file does not
    have."""
    data = {"name": "a", "speed": "0 mph", "interval": [BACKWARD, {**BACKWARD, "speed": "0"}]}
    with pytest.raises(ConfigError) as refused:
        parse_plan(data, "anna.toml")
    assert [p.split(": ")[1] for p in refused.value.problems] == ["speed", "interval[1].speed"]


def test_a_plan_of_exactly_the_longest_session_is_taken_and_longer_is_not() -> None:
    """Three hours is the longest session: a plan of exactly that is one a physio may send;
    half a minute over it is refused, from the contract's rule on the intervals together."""
    hour = {"direction": "backward", "minutes": MAX_SESSION_MIN / 3}
    plan_from_builtins({"name": "long", "intervals": [hour, hour, hour]})
    with pytest.raises(PlanInvalid, match=r"^intervals: the plan lasts .*over the 180 min"):
        plan_from_builtins(
            {"name": "long", "intervals": [hour, hour, hour, {**REST, "minutes": 0.5}]}
        )
