"""What one caregiver instance tells the others about a change (``NOTIFY``'s payload): a new
event goes with its row, so the others' live feeds send it without reading it back; a row too
long for a notification, or one that is not the event's, is left out and the row is read."""

from __future__ import annotations

import dataclasses
import json

from caregiver.changes import (
    ROW_LIMIT,
    DeviceChanged,
    EventStored,
    SessionStored,
    StageChanged,
    carried_size,
    decode,
    encode,
)
from caregiver.storage import StoredEvent

ROW = StoredEvent(
    id="e-1", device_id="tm-1", seq=3, type="fall", severity="critical", state="TRIPPED",
    reason="impact 3.1 g then lying", wall_time="2026-12-02T00:00:00.000+00:00",
    received_at=1764633600.25, figures={"peak_g": 3.1, "tilt_deg": 80.0}, has_window=False,
    acked_by=None, acked_at=None, ack_confirmed=False, incident="inc-1",
)  # fmt: skip


def test_a_new_event_s_row_goes_with_its_announcement() -> None:
    decoded = decode(encode(EventStored("tm-1", "e-1", ROW), "instance-a"))
    assert decoded is not None
    origin, change = decoded
    assert origin == "instance-a"
    assert change == EventStored("tm-1", "e-1")
    assert isinstance(change, EventStored) and change.row == ROW


def test_an_announcement_without_a_row_still_names_the_event() -> None:
    for change in (EventStored("tm-1", "e-1"), DeviceChanged("tm-1")):
        decoded = decode(encode(change, "instance-a"))
        assert decoded is not None and decoded[1] == change
        assert not isinstance(decoded[1], EventStored) or decoded[1].row is None


def test_a_row_too_long_for_a_notification_is_left_for_the_others_to_read() -> None:
    long = dataclasses.replace(ROW, reason="x" * ROW_LIMIT)
    text = encode(EventStored("tm-1", "e-1", long), "instance-a")
    assert len(text) <= ROW_LIMIT
    decoded = decode(text)
    assert decoded is not None
    change = decoded[1]
    assert isinstance(change, EventStored) and change.event_id == "e-1" and change.row is None


def test_a_row_that_escapes_long_in_a_notification_is_left_for_the_others_to_read() -> None:
    """1,350 characters of Japanese fit in ROW_LIMIT characters but take 8 kB escaped in the
    notification: the whole announcement (event id too) was dropped, and the other instance's
    browsers never heard of the fall (from review). Now the row is left out."""
    japanese = dataclasses.replace(ROW, reason="転倒を検知しました" * 150)
    text = encode(EventStored("tm-1", "e-1", japanese), "instance-a")
    assert carried_size(text) <= ROW_LIMIT
    decoded = decode(text)
    assert decoded is not None
    change = decoded[1]
    assert isinstance(change, EventStored) and change.event_id == "e-1" and change.row is None
    short = dataclasses.replace(ROW, reason="転倒")  # a short one still goes with its row
    decoded = decode(encode(EventStored("tm-1", "e-1", short), "instance-a"))
    assert decoded is not None and isinstance(decoded[1], EventStored)
    assert decoded[1].row == short


def test_a_row_that_is_not_the_event_s_or_not_a_row_is_ignored() -> None:
    text = encode(EventStored("tm-1", "e-1", ROW), "instance-a")
    fields = json.loads(text)
    other = {**fields, "row": {**fields["row"], "id": "e-2"}}
    broken = {**fields, "row": {**fields["row"], "received_at": "soon"}}
    for variant in (other, broken):
        decoded = decode(json.dumps(variant))
        assert decoded is not None
        change = decoded[1]
        assert isinstance(change, EventStored) and change.event_id == "e-1" and change.row is None


def test_a_row_json_cannot_say_whole_is_left_for_the_others_to_read() -> None:
    odd = dataclasses.replace(ROW, figures={"peak_g": float("nan")})
    decoded = decode(encode(EventStored("tm-1", "e-1", odd), "instance-a"))
    assert decoded is not None
    change = decoded[1]
    assert isinstance(change, EventStored) and change.event_id == "e-1" and change.row is None


def test_a_walker_s_stage_changed_reaches_the_other_instances_naming_the_walker() -> None:
    """An instance that stored a device's stage message tells the others which walker's it was:
    their browsers' plan and progress pages of that walker follow it (before, a stage change
    was no change at all, and read as a session's it would name no walker)."""
    for change in (StageChanged("tm-1", "bob"), SessionStored("tm-1", "s-1")):
        decoded = decode(encode(change, "instance-a"))
        assert decoded == ("instance-a", change)
