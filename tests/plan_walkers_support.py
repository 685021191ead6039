"""A treadmill shared by Anna, Bob and the default walker, as the plan page's tests need it:
its roster, each walker's sessions and prescription, and Anna's progression as the treadmill
answered it, sent over a real Mosquitto by a simulated device (plain paho)."""

from __future__ import annotations

import datetime as dt

import msgspec

from caregiver.service import CaregiverService
from core.plan_presets import PRESETS
from core.protocol.messages import SCHEMA_VERSION, ProgressionStored, WalkersMessage
from core.protocol.payloads import encode, reply_payload
from core.protocol.walker import DEFAULT_WALKER, Walker
from firmware.mqtt.status import progress_message
from tests.caregiver_support import WAIT, Http, SimDevice, session_record, walked

ANNA = Walker("anna", "Anna")
BOB = Walker("bob", "Bob")


def shared_treadmill(service: CaregiverService, device: SimDevice, web: Http) -> None:
    """Anna walked alternate-2-2 twice and has a progression at stage 1 of 9, 2 sessions a week
    prescribed; Bob walked progression-week-3 last, 4 a week prescribed; then the roster.
    ``web`` is a physio's session: it assigns Anna's progression from the plan page's form."""
    now = dt.datetime.now(dt.UTC)
    anna = [
        msgspec.structs.replace(
            walked(session_record(device.device_id, now - dt.timedelta(hours=h),
                                  backward_min=14, longest_min=2), PRESETS["alternate-2-2"]),
            walker=ANNA,
        )
        for h in (30, 6)
    ]  # fmt: skip
    bob = msgspec.structs.replace(
        walked(session_record(device.device_id, now - dt.timedelta(hours=1), backward_min=20,
                              longest_min=3), PRESETS["progression-week-3"]),
        walker=BOB,
    )  # fmt: skip
    for record in (*anna, bob):
        device.session(record)
    device.publish("walkers", encode(WalkersMessage(
        schema=SCHEMA_VERSION, device_id=device.device_id, wall_time=now.isoformat(),
        walkers=[DEFAULT_WALKER, ANNA, BOB])), retain=True)  # fmt: skip
    for walker, prescribed in ((ANNA, 2), (BOB, 4)):
        told = progress_message(device.device_id, None, [], now, dt.UTC, prescribed=prescribed,
                                walker=walker)  # fmt: skip
        device.publish("progress", encode(told))
    store = service.store
    assert service.ingestor.wait_for(
        lambda: (
            service.ingestor.sessions_stored >= 3
            and len(store.device_walkers(device.device_id)) == 3
            and bool(store.prescribed_weeks(device.device_id, "anna"))
            and bool(store.prescribed_weeks(device.device_id, "bob"))
        ),
        WAIT,
    )
    _, _, page = web.request("GET", f"/devices/{device.device_id}/plan?walker=anna")
    token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    status, _, _ = web.request(
        "POST",
        f"/devices/{device.device_id}/progression",
        [("csrf", token), ("progression", "toward-10-minutes"), ("stage", "1"),
         ("walker", "anna")],
    )  # fmt: skip
    assert status == 303
    command = device.wait_command("progression")
    assert command["walker"] == "anna"
    result = msgspec.structs.asdict(
        ProgressionStored(
            progression="toward-10-minutes", change="assigned", stage=1, stages=9,
            plan="alternate-2-2", held=False, applies="at the next session start",
            walker="anna",
        )
    )  # fmt: skip
    device.publish(
        "reply", reply_payload(device.device_id, "progression", command["id"], True, result)
    )
    assert service.ingestor.wait_for(
        lambda: any(c.status == "accepted" for c in store.sent_commands(device.device_id)),
        WAIT,
    )


def roster(service: CaregiverService, device: SimDevice, *walkers: Walker) -> None:
    """The treadmill's roster is ``walkers`` (its retained ``walkers`` message), stored before
    this returns: a page asked for after it offers them."""
    told = WalkersMessage(
        schema=SCHEMA_VERSION,
        device_id=device.device_id,
        wall_time=dt.datetime.now(dt.UTC).isoformat(),
        walkers=list(walkers),
    )
    device.publish("walkers", encode(told), retain=True)
    ids = [w.id for w in walkers]
    assert service.ingestor.wait_for(
        lambda: [w for w, _ in service.store.device_walkers(device.device_id)] == ids, WAIT
    )
