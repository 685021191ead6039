"""The plan page shows what the device answered: pending, accepted, refused (why), no answer.

A plain paho client on a real Mosquitto stands in for the device here, so the
test decides what it answers (tests/test_plans.py has the simulated monitor's
own answers, accepted and refused); the service runs on a clock the test moves
to see a command nobody answered.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from caregiver.plan_answers import ANSWER_TIMEOUT_S, CommandView, answer_of
from caregiver.service import CaregiverService
from caregiver.storage import CommandStatus, SentCommand
from core.protocol.messages import (
    PlanStored,
    ProgressionHeld,
    ProgressionStored,
    ReplyMessage,
)
from core.protocol.payloads import reply_payload
from tests.caregiver_support import Http, SimDevice, make_config, running_service
from tools.broker import Mosquitto

DEVICE = "treadmill-2"


@dataclass
class Later:
    """Wall time plus however far the test has moved it on."""

    ahead_s: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead_s


@pytest.fixture
def clock() -> Later:
    return Later()


@pytest.fixture
def service(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str, clock: Later
) -> Iterator[CaregiverService]:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, background=False, clock=clock) as s:
        yield s


def _answers(web: Http) -> list[dict[str, str]]:
    status, _, body = web.request("GET", f"/api/devices/{DEVICE}/plan-commands")
    assert status == 200
    commands: list[dict[str, str]] = json.loads(body)["commands"]
    return commands


def test_a_refusal_names_the_field_and_an_unanswered_command_says_so(
    service: CaregiverService, mosquitto: Mosquitto, clock: Later
) -> None:
    device = SimDevice(mosquitto, DEVICE)
    device.online()
    assert service.ingestor.wait_for(lambda: service.store.device(DEVICE) is not None)
    web = Http(service.port)
    assert web.login() == 303
    _, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token and "No plan or progression schedule sent from this dashboard yet." in page

    def send(preset: str) -> str:
        status, headers, _ = web.request(
            "POST", f"/devices/{DEVICE}/plan", [("csrf", token[1]), ("preset", preset)]
        )
        assert status == 303
        return headers["location"].split("sent=")[1]

    refused_id = send("alternate-2-2")
    assert device.wait_command("plan")["id"] == refused_id
    (pending,) = _answers(web)
    assert pending["state"] == "pending" and pending["request_id"] == refused_id
    # what the plan prescribes, in words (core.protocol.plan.plan_words)
    assert pending["summary"].startswith("plan alternate-2-2: 2 min backward / 2 min forward")
    assert pending["summary"].endswith("; belt 0.5 mph (30 min in all)") and pending["by"] == "ann"
    # a device of another release refuses what this one accepts, naming the field
    problem = "plan.intervals[1].minutes: Expected `float` <= 30.0, got 40.0"
    # a reply that names this request from another device changes nothing (had it, the
    # command would read accepted: the first answer counts)
    other = SimDevice(mosquitto, "treadmill-9")
    other.publish("reply", reply_payload("treadmill-9", "plan", refused_id, True, {"revision": 1}))
    device.publish("reply", reply_payload(DEVICE, "plan", refused_id, False, error=problem))
    assert service.ingestor.wait_for(
        lambda: service.store.sent_commands(DEVICE)[0].status == "refused"
    )
    (refused,) = _answers(web)
    assert refused["state"] == "refused" and refused["text"] == f"Refused: {problem}."
    _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?sent={refused_id}")
    assert f'data-request-id="{refused_id}" data-state="refused"' in page
    assert "Refused: plan.intervals[1].minutes: Expected `float` &lt;= 30.0, got 40.0." in page

    silent_id = send("progression-week-2")
    unanswered, _ = _answers(web)
    assert unanswered["request_id"] == silent_id and unanswered["state"] == "pending"
    clock.ahead_s = ANSWER_TIMEOUT_S + 1
    unanswered, still_refused = _answers(web)
    assert unanswered["state"] == "no answer" and still_refused["state"] == "refused"
    assert unanswered["text"].startswith(f"No answer after {ANSWER_TIMEOUT_S:g} s")
    # a late answer still counts (the broker kept the command for the device)
    late = msgspec.structs.asdict(
        PlanStored(
            plan="progression-week-2",
            revision=7,
            intervals=6,
            minutes=30.0,
            backward_minutes=18.0,
            applies="at the next session start",
        )
    )
    device.publish("reply", reply_payload(DEVICE, "plan", silent_id, True, late))
    assert service.ingestor.wait_for(
        lambda: service.store.sent_commands(DEVICE)[0].status == "accepted"
    )
    accepted, _ = _answers(web)
    assert accepted["state"] == "accepted"
    assert accepted["text"] == (
        "Accepted. Stored as plan progression-week-2 (revision 7); used from the walker's next "
        "session."
    )
    device.close()
    other.close()


@pytest.mark.parametrize("heard_first", [True, False], ids=["heard", "only-known-offline"])
def test_a_plan_sent_to_an_offline_treadmill_says_it_is_offline_not_waiting(
    service: CaregiverService, mosquitto: Mosquitto, clock: Later, heard_first: bool
) -> None:
    """The fleet card said "Monitor offline — last seen ..." and the physio sent a plan: its
    row said "Sent, waiting for the treadmill's answer.", then "No answer after 30 s: ... it
    gets the command when it is back". Neither is so: the treadmill connects with a clean
    session (docs/mqtt.md, "Commands"), so nothing sent while it is off is kept for it. The
    row says the treadmill is offline and to send it again once it is back on line. So it
    does of a treadmill this service only ever knew by its retained "offline", which has no
    time it was last heard."""
    device = SimDevice(mosquitto, DEVICE)
    if heard_first:
        device.online()
    device.offline()
    assert service.ingestor.wait_for(
        lambda: (d := service.store.device(DEVICE)) is not None and d["availability"] == "offline"
    )
    web = Http(service.port)
    assert web.login() == 303
    _, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    status, headers, _ = web.request(
        "POST", f"/devices/{DEVICE}/plan", [("csrf", token[1]), ("preset", "alternate-2-2")]
    )
    assert status == 303
    sent = headers["location"].split("sent=")[1]
    offline = (
        "Not delivered: the treadmill is offline, and nothing sent while it is off is kept "
        "for it. Send it again once the treadmill is back on line."
    )
    for ahead in (0.0, ANSWER_TIMEOUT_S + 1):
        clock.ahead_s = ahead
        (row,) = _answers(web)
        assert row["request_id"] == sent and row["text"] == offline, row
        _, _, page = web.request("GET", f"/devices/{DEVICE}/plan?sent={sent}")
        assert offline in page and "waiting for the treadmill" not in page
    # back on line, a plan sent then waits for its answer as before
    device.online()
    assert service.ingestor.wait_for(
        lambda: (d := service.store.device(DEVICE)) is not None and d["availability"] == "online"
    )
    clock.ahead_s = 0.0
    again = web.request(
        "POST", f"/devices/{DEVICE}/plan", [("csrf", token[1]), ("preset", "alternate-2-2")]
    )[1]["location"].split("sent=")[1]
    newest = _answers(web)[0]
    assert newest["request_id"] == again
    assert newest["text"] == "Sent, waiting for the treadmill's answer."


def test_an_answer_from_a_device_of_another_version_is_still_accepted() -> None:
    odd = ReplyMessage(
        schema=1,
        device_id=DEVICE,
        command="plan",
        request_id="cg-1",
        ok=True,
        wall_time="2026-12-02T10:00:00.000+00:00",
        result={"revision": "seven"},
    )
    assert answer_of(odd).startswith("Stored (the treadmill's answer was not understood:")
    assert answer_of(odd).endswith(".")


def _sentences(text: str) -> list[str]:
    return [part for part in re.split(r"(?<=[.!?]) ", text) if part]


def _reply(command: str, result: dict[str, object]) -> ReplyMessage:
    return ReplyMessage(
        schema=1,
        device_id=DEVICE,
        command=command,
        request_id="cg-1",
        ok=True,
        wall_time="2026-12-02T10:00:00.000+00:00",
        result=result,
    )


def _sent(status: CommandStatus, answer: str | None) -> SentCommand:
    return SentCommand("cg-1", DEVICE, "plan", "plan hand", "ann", 1.0, status, 2.0, answer)


def test_every_answer_reads_as_sentences_the_machine_fields_unchanged() -> None:
    """The dashboard read "stored as plan hand (revision 4); used from the walker's next
    session. The walker's progression ..." and "progression schedule test: released, stage 1
    of 2. The stage's plan ...": a sentence in lower case before one in upper case. Each
    answer is sentences now, each with a capital and a full stop; the reply's fields (what a
    program reads) are the device's, as they were."""
    held = ProgressionHeld(progression="toward-10-minutes", stage=3, stages=9, plan="week-3")
    plan = PlanStored(
        plan="hand",
        revision=4,
        intervals=2,
        minutes=10.0,
        backward_minutes=5.0,
        applies="at the next session start",
        progression_held=held,
    )
    released = ProgressionStored(
        progression="test",
        change="released",
        stage=1,
        stages=2,
        plan="short",
        held=False,
        applies="at the next session start",
        plan_restored=True,
    )
    for command, stored in (("plan", plan), ("progression", released)):
        said = answer_of(_reply(command, msgspec.to_builtins(stored)))
        sentences = _sentences(said)
        assert len(sentences) >= 2, said
        for sentence in sentences:
            assert sentence[0].isupper() and sentence.endswith("."), (command, sentence)
        view = CommandView(_sent("accepted", said), "accepted")
        assert view.text == f"Accepted. {said}"
        assert view.as_json()["state"] == "accepted" and view.as_json()["answer"] == said
    assert answer_of(_reply("plan", msgspec.to_builtins(plan))) == (
        "Stored as plan hand (revision 4); used from the walker's next session. The walker's "
        "progression toward-10-minutes at stage 3 of 9 is now held, because a plan was set by "
        "hand: sessions of this plan do not move the progression on. Release the hold to go "
        "back to the stage's plan (week-3) from the next session."
    )
    # an answer stored by an earlier release reads alike; a refusal keeps the device's words
    old = CommandView(_sent("accepted", "stored as plan hand (revision 4)"), "accepted")
    assert old.text == "Accepted. Stored as plan hand (revision 4)."
    assert old.answer == "Stored as plan hand (revision 4)."
    refused = CommandView(_sent("refused", "plan.name: too long"), "refused")
    assert refused.text == "Refused: plan.name: too long."
    assert CommandView(_sent("pending", None), "pending").text == (
        "Sent, waiting for the treadmill's answer."
    )


def test_a_command_that_could_not_be_sent_is_not_listed(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    device = SimDevice(mosquitto, DEVICE)
    device.online()
    assert service.ingestor.wait_for(lambda: service.store.device(DEVICE) is not None)
    web = Http(service.port)
    assert web.login() == 303
    _, _, page = web.request("GET", f"/devices/{DEVICE}/plan")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    client, service.ingestor.client = service.ingestor.client, None  # as before it connects
    try:
        status, _, body = web.request(
            "POST", f"/devices/{DEVICE}/plan", [("csrf", token[1]), ("preset", "alternate-2-2")]
        )
    finally:
        service.ingestor.client = client
    assert status == 503 and "not connected" in body
    assert _answers(web) == [] and device.commands == []
    device.close()


def test_what_was_sent_names_its_walker_by_id_when_the_names_cannot_be_read(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    """What was sent names its walker as the page does ("for Carla Díaz"), read from the
    walkers' names; a table of them the service cannot read (renamed behind its back) must
    not stop the plan going out: the row says the walker's id instead."""
    from core.plan_presets import PRESETS
    from core.protocol.walker import DEFAULT_WALKER, Walker
    from tests.caregiver_db import execute
    from tests.plan_walkers_support import roster

    device = SimDevice(mosquitto, DEVICE)
    database = service.config.server.database
    try:
        device.online()
        assert service.ingestor.wait_for(lambda: service.store.device(DEVICE) is not None)
        roster(service, device, DEFAULT_WALKER, Walker("carla-diaz", "Carla Díaz"))
        plan = PRESETS["alternate-2-2"]
        execute(database, "ALTER TABLE device_walkers RENAME TO device_walkers_damaged")
        try:
            first = service.assign_plan(DEVICE, plan, "ann", "carla-diaz")
            assert device.wait_command("plan")["id"] == first
        finally:
            execute(database, "ALTER TABLE device_walkers_damaged RENAME TO device_walkers")
        service.assign_plan(DEVICE, plan, "ann", "carla-diaz")
        newest, oldest = service.store.sent_commands(DEVICE)
        assert oldest.request_id == first
        assert oldest.summary.endswith("(30 min in all), for walker carla-diaz")
        assert newest.summary.endswith("(30 min in all), for Carla Díaz")
    finally:
        device.close()


def test_the_treadmill_s_answer_names_the_walker_as_the_page_does() -> None:
    """The treadmill names a walker by id in what it answers ("Walker carla-diaz's
    progression ... is now held", a refusal's "walker bob is already at the first stage"):
    the page said ids nobody typed beside a row "for Carla Díaz". The answer is said with the
    walker's name when the page is drawn (the stored answer, what a program reads, unchanged:
    ingest never reads the walkers' names to store a reply); an answer about another walker,
    or a walker the page has no name for, is left as the treadmill said it."""
    held = ProgressionHeld(progression="toward-10-minutes", stage=2, stages=9, plan="week-2")
    plan = PlanStored(
        plan="alternate-2-2",
        revision=3,
        intervals=15,
        minutes=30.0,
        backward_minutes=14.0,
        applies="at the next session start",
        walker="carla-diaz",
        progression_held=held,
    )
    said = answer_of(_reply("plan", msgspec.to_builtins(plan)))
    assert "Walker carla-diaz's progression" in said  # the stored answer: the device's id
    accepted = SentCommand(
        "cg-1", DEVICE, "plan", "plan x", "ann", 1.0, "accepted", 2.0, said, "carla-diaz"
    )
    view = CommandView(accepted, "accepted", who="Carla Díaz")
    assert "Carla Díaz's progression toward-10-minutes at stage 2 of 9 is now held" in view.text
    assert "carla-diaz" not in view.text and "carla-diaz" not in view.answer
    assert view.as_json()["answer"] == said and view.as_json()["text"] == view.text
    refusals = {
        "walker bob is already at the first stage of toward-10-minutes (stage 1 of 9): nothing "
        "to step back to": "Refused: Bob is already at the first stage of toward-10-minutes "
        "(stage 1 of 9): nothing to step back to.",
        "walker bob's progression toward-10-minutes is already held: nothing to hold": (
            "Refused: Bob's progression toward-10-minutes is already held: nothing to hold."
        ),
        "no progression is assigned to walker bob on this device": (
            "Refused: no progression is assigned to Bob on this device."
        ),
        # another walker's id (bobby) is not Bob's
        "walker bobby is not bob": "Refused: walker bobby is not bob.",
    }
    for answer, text in refusals.items():
        refused = SentCommand(
            "cg-2", DEVICE, "progression", "step back", "ann", 1.0, "refused", 2.0, answer, "bob"
        )
        assert CommandView(refused, "refused", who="Bob").text == text
        assert CommandView(refused, "refused").text == f"Refused: {answer}."  # no name known


def test_the_plan_run_next_is_the_newest_accepted_one_none_has_walked_yet() -> None:
    """ "In force" says the plan the treadmill runs next when the latest session did not walk
    it: the newest plan accepted for the walker, not one a later progression command, a stage
    moving on by itself (released or assigned since) or a session begun since replaced."""
    import dataclasses

    from caregiver.routes.plans import began_here, next_by_hand
    from caregiver.storage import WalkSession
    from tests.stage_support import STAGE_EXAMPLE

    def accepted(command: str, sent_at: float) -> CommandView:
        sent = SentCommand(f"cg-{sent_at}", DEVICE, command, "x", "ann", sent_at, "accepted",
                           sent_at + 1, "Stored.", "bob")  # fmt: skip
        return CommandView(sent, "accepted")

    plan, progression = accepted("plan", 1000.0), accepted("progression", 900.0)
    walked = WalkSession(
        "s",
        DEVICE,
        "old",
        "completed",
        "1970-01-01T00:10:00+00:00",
        "",
        0.0,
        0.0,
        0.0,
        0.0,
        0,
        0.0,
        0.0,
        0,
        0,
    )  # fmt: skip (begun at 600 s)
    # received here as it began (it lasted no time): when it began by the service's clock
    begun = began_here(walked, 600.0)
    assert next_by_hand([plan, progression], progression, None, begun) is plan
    assert next_by_hand([plan], None, None, None) is plan  # no session yet
    later = accepted("progression", 1100.0)
    assert next_by_hand([later, plan], later, None, begun) is None
    held = msgspec.structs.replace(STAGE_EXAMPLE, status="held", held=True)
    assert next_by_hand([plan], None, held, begun) is plan
    assert next_by_hand([plan], None, STAGE_EXAMPLE, begun) is None  # running: the stage's
    since = dataclasses.replace(walked, started_wall="1970-01-01T00:20:00+00:00")  # at 1200 s
    since_begun = began_here(since, 1200.0)
    assert next_by_hand([plan], None, None, since_begun) is None  # walked by the session since


def test_what_was_sent_for_a_walker_is_listed_after_many_sent_for_another(
    service: CaregiverService, mosquitto: Mosquitto
) -> None:
    """The page lists what was sent for the walker it shows: on a shared treadmill, twenty
    commands sent since for another walker must not hide theirs and have the page say that
    nothing was ever sent for them (the service kept the device's newest twenty, every
    walker's, and the page showed the shown walker's among them)."""
    from core.plan_presets import PRESETS
    from core.protocol.walker import DEFAULT_WALKER, Walker
    from tests.plan_walkers_support import roster

    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        assert service.ingestor.wait_for(lambda: service.store.device(DEVICE) is not None)
        roster(service, device, DEFAULT_WALKER, Walker("carla-diaz", "Carla Díaz"),
               Walker("bob", "Bob"))  # fmt: skip
        plan = PRESETS["alternate-2-2"]
        bobs = service.assign_plan(DEVICE, plan, "ann", "bob")
        for _ in range(20):
            service.assign_plan(DEVICE, plan, "ann", "carla-diaz")
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/plan?walker=bob")
        assert status == 200
        assert f'data-request-id="{bobs}"' in page
        assert "Nothing has been sent from this dashboard for Bob yet" not in page
    finally:
        device.close()
