"""Escalation as a caregiver's phone lives it: what arrives after an alert is answered.

The service runs against a real Mosquitto on a real database file (and PostgreSQL, where
``caregiver_db`` runs it), on a fake clock; the tests drive ``alerting.tick()`` and
``notifier.deliver_due()`` themselves — no sleeps, no timing. Notifications go to a local
HTTP receiver (json://), which can answer 500 to the next requests.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from caregiver.alerts import ALERT_TYPES, Alerting
from caregiver.config import CaregiverConfig, Contact, EscalationConfig, ServerConfig
from caregiver.lease import ESCALATION, LEASE_TTL_S, Lease
from caregiver.localtime import readable
from caregiver.notify import send_notification
from caregiver.outbox import url_key
from caregiver.seen import Seen
from caregiver.service import CaregiverService
from caregiver.storage import ClockFrame, Store, Urgency
from core.clock import since_boot
from tests.caregiver_db import execute, store_at_schema
from tests.caregiver_support import (
    BY_HAND,
    WAIT,
    FakeClock,
    Receiver,
    SimDevice,
    make_config,
)
from tools.broker import Mosquitto


@pytest.fixture
def receiver() -> object:
    r = Receiver()
    yield r
    r.close()


def _service(
    mosquitto: Mosquitto, tmp_path: Path, contacts: tuple[Contact, ...], database: str | None
) -> tuple[CaregiverService, FakeClock]:
    clock = FakeClock()
    config = make_config(
        mosquitto,
        tmp_path,
        database=database,
        contacts=contacts,
        escalation=EscalationConfig(ack_timeout_s=300, resends=1, retry_s=10, max_attempts=6),
    )
    service = CaregiverService(config, clock=clock)
    service.start(web=False, background=False)
    assert service.ingestor.connected.wait(WAIT)
    return service, clock


def _ann_and_bob(receiver: Receiver) -> tuple[Contact, ...]:
    return (
        Contact(name="Ann", urls=(receiver.url("ann"),)),
        Contact(name="Bob", urls=(receiver.url("bob"),)),
    )


def _titles(receiver: Receiver) -> list[tuple[str, str]]:
    return [(m["path"], m["title"].split(" - ")[0]) for m in receiver.messages]


def test_a_page_still_retrying_when_the_fall_is_acknowledged_is_not_sent_after_the_ack(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """Ann's phone service answered 500 to the fall's page; Bob, at the dashboard, closed the
    fall. Before, Ann's next retry delivered "FALL on Dad's treadmill" (critical, through Do
    Not Disturb) ten seconds after "bob acknowledged the fall": the alarm after its answer."""
    service, clock = _service(mosquitto, tmp_path, _ann_and_bob(receiver), caregiver_db)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        receiver.fail_next = 1
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 0  # 500: retried in 10 s
        service.acknowledge("treadmill-1", fall["id"], "bob")
        service.notifier.deliver_due()
        clock.advance(3600)
        service.alerting.tick()
        service.notifier.deliver_due()
        assert _titles(receiver) == [("/ann", "RetroGuard: acknowledged")]
        device.close()
    finally:
        service.stop()


def test_a_reminder_queued_as_the_fall_is_acknowledged_is_not_sent_after_the_ack(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """The escalation step fired (a reminder queued) and Bob acknowledged before the notifier
    sent it: Ann must not read "REMINDER, not acknowledged" of a fall Bob has answered."""
    service, clock = _service(mosquitto, tmp_path, _ann_and_bob(receiver), caregiver_db)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 1
        clock.advance(300)
        assert service.alerting.tick() == 1  # the reminder to Ann, queued
        service.acknowledge("treadmill-1", fall["id"], "bob")
        service.notifier.deliver_due()
        sent = receiver.messages
        assert _titles(receiver) == [
            ("/ann", "RetroGuard: FALL"),
            ("/ann", "RetroGuard: acknowledged"),
        ]
        assert not any(m["message"].startswith("REMINDER") for m in sent)
        device.close()
    finally:
        service.stop()


def test_an_offline_alerts_reminder_says_when_the_monitor_stopped_reporting(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver
) -> None:
    """Before, the reminders of "Monitor went OFFLINE while armed" said "stopped reporting at
    while armed": the escalation worded them without the time the first page gave."""
    service, clock = _service(mosquitto, tmp_path, _ann_and_bob(receiver), None)
    try:
        opened = readable(clock.now, service.config.zone)
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        device.offline()
        assert service.ingestor.wait_for(
            lambda: (service.store.device("treadmill-1") or {}).get("availability") == "offline"
        )
        assert service.notifier.deliver_due() == 1
        clock.advance(300)
        assert service.alerting.tick() == 1
        service.notifier.deliver_due()
        reminder = receiver.messages[1]["message"]
        assert reminder.startswith("REMINDER")
        assert f"stopped reporting at {opened} while armed" in reminder
        # acknowledged from the card: the follow-up names the alert it closes, as the
        # others do (it said "The monitor went offline while armed alert on ...")
        (alert,) = service.alerting.alerts("treadmill-1")
        service.acknowledge_seen("treadmill-1", Seen(alerts=alert.id), "bob")
        service.notifier.deliver_due()
        assert receiver.messages[-1]["message"] == (
            "Acknowledged by bob: the alert 'Monitor went offline while armed' on Dad's "
            "treadmill is closed. No further reminders."
        )
        device.close()
    finally:
        service.stop()


def test_an_alert_escalated_to_a_contact_the_config_then_removed_pages_the_others(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver
) -> None:
    """The fall had reached Cleo, the third contact; the service restarted with Cleo taken out
    of the list. Before, the next escalation step "resent" to her place — nobody — and the
    contacts left heard nothing for another ``ack_timeout_s``."""
    cleo = Contact(name="Cleo", urls=(receiver.url("cleo"),))
    service, clock = _service(mosquitto, tmp_path, (*_ann_and_bob(receiver), cleo), None)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        for _ in range(4):  # Ann again, Bob twice, then Cleo
            clock.advance(300)
            assert service.alerting.tick() == 1
        service.notifier.deliver_due()  # one round; contacts are sent to at once (any order)
        assert sorted(m["path"] for m in receiver.messages) == [
            "/ann",
            "/ann",
            "/bob",
            "/bob",
            "/cleo",
        ]
        device.close()
    finally:
        service.stop()
    later = clock.now
    service, clock = _service(mosquitto, tmp_path, _ann_and_bob(receiver), None)
    try:
        clock.now = later + 300
        assert service.alerting.tick() == 1
        service.notifier.deliver_due()
        paged = [m["path"] for m in receiver.messages[5:]]
        assert sorted(paged) == ["/ann", "/bob"]
        assert all("NOT ACKNOWLEDGED" in m["message"] for m in receiver.messages[5:])
    finally:
        service.stop()


def _ann_with_two_urls(receiver: Receiver) -> Contact:
    return Contact(name="Ann", urls=(receiver.url("ann-phone"), receiver.url("ann-mail")))


def _page_ann_failing(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, database: str
) -> float:
    """Ann (first of Ann and Bob) is paged for a fall; her phone services answer 500, so both
    pages wait for their retry in the queue as the service stops. Returns the clock then."""
    contacts = (_ann_with_two_urls(receiver), Contact(name="Bob", urls=(receiver.url("bob"),)))
    service, clock = _service(mosquitto, tmp_path, contacts, database)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        receiver.fail_next = 2
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 0  # 500 for both: retried in 10 s
        assert receiver.messages == []
        device.close()
    finally:
        service.stop()
    return clock.now


def test_a_page_waiting_when_the_contacts_are_reordered_reaches_the_contact_it_was_for(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """The operator put Bob first (and Ann's mail before her phone) and restarted while Ann's
    fall pages waited for their retry. Before, the queue addressed each page by the
    contact's and the URL's places in the lists: Ann's phone page went to Bob, her mail page
    was dropped (Bob has one URL). Now each reaches the URL it was queued for."""
    later = _page_ann_failing(mosquitto, tmp_path, receiver, caregiver_db)
    ann = _ann_with_two_urls(receiver)
    reordered = (
        Contact(name="Bob", urls=(receiver.url("bob"),)),
        Contact(name="Ann", urls=tuple(reversed(ann.urls))),
    )
    service, clock = _service(mosquitto, tmp_path, reordered, caregiver_db)
    try:
        clock.now = later + 20  # the retry is due, the stopped instance's lease over
        assert service.notifier.deliver_due() == 2
        assert sorted(_titles(receiver)) == [
            ("/ann-mail", "RetroGuard: FALL"),
            ("/ann-phone", "RetroGuard: FALL"),
        ]
    finally:
        service.stop()


def test_a_page_waiting_while_its_url_was_edited_reaches_the_contact_at_the_url_now_there(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """Ann's phone URL was edited (a new token) while her fall pages waited: Ann is still a
    contact, so the page goes to the URL now in its place rather than to nobody."""
    later = _page_ann_failing(mosquitto, tmp_path, receiver, caregiver_db)
    ann = _ann_with_two_urls(receiver)
    edited = (
        Contact(name="Ann", urls=(receiver.url("ann-phone-new"), ann.urls[1])),
        Contact(name="Bob", urls=(receiver.url("bob"),)),
    )
    service, clock = _service(mosquitto, tmp_path, edited, caregiver_db)
    try:
        clock.now = later + 20
        assert service.notifier.deliver_due() == 2
        assert sorted(_titles(receiver)) == [
            ("/ann-mail", "RetroGuard: FALL"),
            ("/ann-phone-new", "RetroGuard: FALL"),
        ]
    finally:
        service.stop()


def test_a_page_waiting_for_a_contact_then_removed_is_dropped_and_logged(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    caregiver_db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ann was taken out of the config while her fall pages waited: they are dropped as for
    a removed contact (marked failed, logged), not sent to Bob, who now holds her place.
    Before, Bob received her phone page."""
    later = _page_ann_failing(mosquitto, tmp_path, receiver, caregiver_db)
    bob = Contact(name="Bob", urls=(receiver.url("bob"),))
    service, clock = _service(mosquitto, tmp_path, (bob,), caregiver_db)
    try:
        clock.now = later + 20  # the retry is due, the stopped instance's lease over
        with caplog.at_level("WARNING", logger="caregiver.notify"):
            assert service.notifier.deliver_due() == 0
        assert receiver.messages == []
        assert service.store.notifications_due(clock.now + 1e6) == []
        said = [r.getMessage() for r in caplog.records if "not sent" in r.getMessage()]
        assert sorted(said) == [
            f"queued notification {n} for Ann (url #{n} when queued) not sent: contact or URL "
            "no longer in the config"
            for n in (1, 2)
        ]
        assert not any("127.0.0.1" in m for m in said)  # never the URL
    finally:
        service.stop()


def test_an_alert_escalating_when_the_contacts_are_reordered_goes_on_from_whom_it_reached(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """The fall reached Ann (first of Ann, Bob, Cleo); the service restarted with Bob put
    first. Her reminder goes to her, the escalation then to Cleo (after Ann in the new
    order), and the follow-up to the two paged. Before, the alert kept only places: the
    reminder went to Bob, the escalation to Ann, Cleo was skipped, and "acknowledged" went to
    Bob and Ann."""
    cleo = Contact(name="Cleo", urls=(receiver.url("cleo"),))
    ann, bob = _ann_and_bob(receiver)
    service, clock = _service(mosquitto, tmp_path, (ann, bob, cleo), caregiver_db)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 1
        device.close()
    finally:
        service.stop()
    later = clock.now
    service, clock = _service(mosquitto, tmp_path, (bob, ann, cleo), caregiver_db)
    try:
        for step in (1, 2):
            clock.now = later + 300 * step
            assert service.alerting.tick() == 1
            assert service.notifier.deliver_due() == 1
        service.acknowledge("treadmill-1", fall["id"], "bob")
        assert service.notifier.deliver_due() == 2
        said = [(m["path"], m["message"].split(" ")[0]) for m in receiver.messages]
        assert said[:3] == [("/ann", "FALL"), ("/ann", "REMINDER,"), ("/cleo", "ESCALATED,")]
        assert sorted(said[3:]) == [("/ann", "Acknowledged"), ("/cleo", "Acknowledged")]
    finally:
        service.stop()


def _stepped_service(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    database: str,
    clocks: tuple[FakeClock, FakeClock] | None = None,
    boot: str | None = None,
    *,
    contacts: tuple[Contact, ...] | None = None,
    ack_timeout_s: float = 300,
    resends: int = 9,
) -> tuple[CaregiverService, FakeClock, Callable[[float], None]]:
    """A service on a fake wall clock and a fake time since boot (``clocks``, else new
    ones), paging ``contacts`` (else Ann), started; and ``later(s)``: ``s`` seconds pass (both
    clocks run on; ``wall.advance`` alone is a step)."""
    wall, since = clocks or (FakeClock(), FakeClock(5_000.0))
    escalation = EscalationConfig(
        ack_timeout_s=ack_timeout_s, resends=resends, retry_s=10, max_attempts=6
    )
    config = make_config(
        mosquitto,
        tmp_path,
        database=database,
        contacts=contacts or (Contact(name="Ann", urls=(receiver.url("ann"),)),),
        escalation=escalation,
    )
    service = CaregiverService(config, clock=wall, monotonic=since, boot=boot)
    service.start(web=False, background=False)
    assert service.ingestor.connected.wait(WAIT)

    def later(seconds: float) -> None:
        wall.advance(seconds)
        since.advance(seconds)

    return service, wall, later


def test_escalation_timers_keep_their_length_across_a_step_of_the_wall_clock(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """The timers are deadlines on the wall clock (stored, so that they survive a restart and
    several instances share them). Before, a clock stepped back an hour (NTP correcting a
    clock that ran ahead, an administrator's ``date -s``) held every reminder, escalation and
    retry for an hour more; one stepped forward sent them all at once. The ticker now measures
    the step against the monotonic clock and moves the timers by it."""
    service, wall, later = _stepped_service(
        mosquitto, tmp_path, receiver, caregiver_db, contacts=_ann_and_bob(receiver), resends=1
    )
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        receiver.fail_next = 1
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 0  # 500: Ann's page retried in 10 s
        assert service.alerting.tick() == 0

        wall.advance(-3600)  # stepped back an hour; no time passed
        assert service.alerting.tick() == 0
        later(10)
        assert service.notifier.deliver_due() == 1  # the retry, 10 s after the failure
        later(290)
        assert service.alerting.tick() == 1  # the reminder, 300 s after the page

        wall.advance(3600)  # stepped forward an hour; no time passed
        assert service.alerting.tick() == 0  # not the next step at once
        later(300)
        assert service.alerting.tick() == 1  # Bob, 300 s after the reminder
        service.notifier.deliver_due()  # Ann's reminder and Bob's page: one round, any order
        assert sorted(m["path"] for m in receiver.messages) == ["/ann", "/ann", "/bob"]
        (reminded,) = (m["message"] for m in receiver.messages[1:] if m["path"] == "/ann")
        (escalated,) = (m["message"] for m in receiver.messages if m["path"] == "/bob")
        assert reminded.startswith("REMINDER, not acknowledged after 5 min: ")
        assert escalated.startswith("ESCALATED, nobody acknowledged within 10 min: ")
        device.close()
    finally:
        service.stop()


def test_a_retry_recorded_before_the_ticker_sees_a_step_waits_its_delay_not_the_step(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """The notifier's round can come between a step of the wall clock and the ticker's next
    look (a second apart, in two processes). Before, the ticker alone moved the retries: a
    page that failed in that round had its retry written in the stepped clock, then moved by
    the step again — stepped forward an hour, the fall page's next try waited an hour more;
    back an hour, it was tried again at once — and a round before the ticker's look sent
    every retry due within the step at once. Now the notifier measures the step itself and
    moves the retries before it reads or writes one."""
    service, wall, later = _stepped_service(
        mosquitto, tmp_path, receiver, caregiver_db, ack_timeout_s=3000, resends=1
    )
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        receiver.fail_next = 3
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 0  # 500: retried in 10 s
        assert service.alerting.tick() == 0

        wall.advance(3600)  # stepped forward an hour, then the round before the ticker's look
        assert service.notifier.deliver_due() == 0
        assert receiver.fail_next == 2  # not tried: due 10 s after the failure, not at once
        later(10)
        assert service.notifier.deliver_due() == 0  # the retry, 10 s on; 500 again: 20 s
        assert receiver.fail_next == 1
        assert service.alerting.tick() == 0  # the ticker sees the step now
        later(20)
        assert service.notifier.deliver_due() == 0  # the retry 20 s on, not an hour: 500
        assert receiver.fail_next == 0  # (retried in 40 s)

        wall.advance(-3600)  # stepped back an hour, the round before the ticker's look
        assert service.notifier.deliver_due() == 0
        assert service.alerting.tick() == 0
        later(39)
        assert service.notifier.deliver_due() == 0  # not tried again at once
        assert receiver.messages == []
        later(1)
        assert service.notifier.deliver_due() == 1  # 40 s after the failure
        assert [m["path"] for m in receiver.messages] == ["/ann"]
        device.close()
    finally:
        service.stop()


@pytest.mark.parametrize("step", [3600.0, -3600.0], ids=["forward", "back"])
def test_a_timer_written_between_a_step_and_the_tickers_look_is_not_moved_by_it(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str, step: float
) -> None:
    """Ingest stores alerts between a step of the wall clock and the ticker's next look (a
    second apart): their grace and reminder are written in the stepped clock. Before, the
    ticker moved them by the step too: stepped forward an hour, the stumble paged and the
    fall was reminded an hour late; back an hour, both at once. Each timer now carries the
    measure of the clock it was written in, and moves only by the steps since: those written
    before the step move, those written after do not."""
    service, wall, later = _stepped_service(mosquitto, tmp_path, receiver, caregiver_db)
    devices = [SimDevice(mosquitto, f"treadmill-{n}") for n in (1, 2, 3)]
    try:
        for device in devices:
            device.online()
        before = devices[0].fall()  # t = 0: reminded at 300
        assert service.ingestor.wait_for(lambda: service.store.event(before["id"]) is not None)
        assert service.notifier.deliver_due() == 1  # its page
        assert service.alerting.tick() == 0
        later(100)
        wall.advance(step)  # t = 100, stepped; then ingest, before the ticker's look
        stumble, after = devices[1].stumble(), devices[2].fall()  # paged at 130, reminded at 400
        assert service.ingestor.wait_for(
            lambda: all(service.store.event(e["id"]) is not None for e in (stumble, after))
        )
        assert service.alerting.tick() == 0  # the step, seen: nothing due at once
        for elapsed, due in ((29, 0), (1, 1), (169, 0), (1, 1), (99, 0), (1, 1)):
            later(elapsed)  # 129, 130 (the stumble pages), 299, 300, 399, 400
            assert service.alerting.tick() == due
        kinds = [(a.device_id, a.kind, a.sends) for a in service.alerting.alerts()]
        assert sorted(kinds) == [
            ("treadmill-1", "fall", 2),
            ("treadmill-2", "stumble", 1),
            ("treadmill-3", "fall", 2),
        ]
        assert service.notifier.deliver_due() == 4  # two pages, two reminders
        said = [m["message"].split(": ")[0] for m in receiver.messages]
        assert said.count("REMINDER, not acknowledged after 5 min") == 2  # not 65, nor -55
    finally:
        for device in devices:
            device.close()
        service.stop()


def test_an_alert_worsened_between_a_step_and_the_tickers_look_keeps_its_age(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """A held stumble stored before a step, its fall after it (before the ticker's look): the
    fall pages at once and is reminded 300 s on, "after 5 min" since the alert opened, not an
    hour early or late (its opening, written before the step, is moved with it; its reminder,
    written after, is not)."""
    service, wall, later = _stepped_service(mosquitto, tmp_path, receiver, caregiver_db)
    device = SimDevice(mosquitto, "treadmill-1")
    try:
        device.online()
        incident = uuid.uuid4().hex
        trip = device.event(
            "stumble", severity="warning", state="TRIPPED", reason="trip", incident=incident
        )
        assert service.ingestor.wait_for(lambda: service.store.event(trip["id"]) is not None)
        assert service.alerting.tick() == 0
        later(10)
        wall.advance(3600)
        fall = device.event(
            "fall", severity="critical", state="TRIPPED", reason="lying", incident=incident
        )
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.alerting.tick() == 0
        later(299)
        assert service.alerting.tick() == 0
        later(1)
        assert service.alerting.tick() == 1
        assert service.notifier.deliver_due() == 2
        reminder = receiver.messages[-1]["message"]
        assert reminder.startswith("REMINDER, not acknowledged after 5 min: "), reminder
    finally:
        device.close()
        service.stop()


def test_a_timer_from_before_a_restart_moves_by_a_step_measured_after_it(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """An alert stored by the service before it restarted (or by another instance, or before
    its frame was stored) is in a clock this process never measured: a step its ticker
    measures later moves it, as every timer moved before, and the reminder keeps its 300 s."""
    clocks = FakeClock(), FakeClock(5_000.0)
    service, wall, later = _stepped_service(mosquitto, tmp_path, receiver, caregiver_db, clocks)
    device = SimDevice(mosquitto, "treadmill-1")
    try:
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
    finally:
        service.stop()
    service, wall, later = _stepped_service(mosquitto, tmp_path, receiver, caregiver_db, clocks)
    try:
        later(10)
        assert service.alerting.tick() == 0
        wall.advance(3600)
        assert service.alerting.tick() == 0  # moved by the step, not due at once
        later(289)
        assert service.alerting.tick() == 0
        later(1)
        assert service.alerting.tick() == 1  # 300 s after the fall
    finally:
        device.close()
        service.stop()


def test_a_holder_lost_without_a_clean_stop_is_taken_over_a_lease_later_despite_a_step_back(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """Instance A holds the escalation lease and is lost without a clean stop (killed, its
    machine gone: the lease is never released); NTP then sets the wall clock back an hour,
    and a fall reaches instance B (another instance, or the service restarted after the
    crash). B sees A's renewals stand still for the lease's 10 s on its own monotonic clock,
    takes the lease over and pages Ann. Before, the lease ran until a wall time, A's last
    renewal plus 10 s, which the step put an hour off: nobody paged Ann for an hour."""
    wall = FakeClock()
    a, _, _ = _stepped_service(
        mosquitto, tmp_path, receiver, caregiver_db, (wall, FakeClock(5_000.0)), "machine-1"
    )
    b: CaregiverService | None = None
    device = SimDevice(mosquitto, "treadmill-1")
    try:
        assert a.alerting.tick() == 0 and a.notifier.deliver_due() == 0  # held, renewed
        assert a.store.lease_holder(ESCALATION) == a.instance
        a.ingestor.stop()  # A is lost: its broker session ends, its lease stays in the row
        wall.advance(-3600)  # NTP sets the clock back an hour
        b, _, later = _stepped_service(
            mosquitto, tmp_path, receiver, caregiver_db, (wall, FakeClock(9_000.0)), "machine-2"
        )
        device.online()
        fall = device.fall()
        assert b.ingestor.wait_for(lambda: b is not None and b.store.event(fall["id"]) is not None)
        assert b.notifier.deliver_due() == 0 and b.alerting.tick() == 0  # A's, as far as B knows
        later(LEASE_TTL_S - 1)
        assert b.notifier.deliver_due() == 0 and b.alerting.tick() == 0
        assert receiver.messages == []
        later(1)  # A's renewals have stood still for the lease's length on B's clock
        assert b.notifier.deliver_due() == 1
        assert _titles(receiver) == [("/ann", "RetroGuard: FALL")]
        assert b.store.lease_holder(ESCALATION) == b.instance
    finally:
        device.close()
        if b is not None:
            b.stop()
        a.stop()  # B's lease now: A's stop releases nothing


def test_a_renewed_lease_is_never_taken_over_whatever_the_instances_wall_clocks_say(
    caregiver_db: str,
) -> None:
    """B's wall clock runs an hour ahead of A's (the instances' clocks need not agree): while
    A renews, B never takes the lease; once A stops renewing, B takes it a lease's length of
    B's monotonic clock later, not sooner. Before, B took a live holder's lease at once, its
    wall time being past A's expires_at, and both paged."""
    store = Store(caregiver_db)
    wall_a, wall_b = FakeClock(), FakeClock(FakeClock().now + 3600)
    mono_a, mono_b = FakeClock(100.0), FakeClock(7_000.0)
    a = Lease(store, "a", wall_a, monotonic=mono_a)
    b = Lease(store, "b", wall_b, monotonic=mono_b)
    try:
        assert a.held() and not b.held()
        for _ in range(3 * int(LEASE_TTL_S)):  # a second at a time, A renewing, B looking
            for clock in (wall_a, wall_b, mono_a, mono_b):
                clock.advance(1)
            assert a.held()
            assert not b.held()
        wall_b.advance(-7200)  # and B's wall clock stepped back: nothing changes either
        for _ in range(int(LEASE_TTL_S) - 1):  # A is lost: its renewals stand still
            mono_b.advance(1)
            assert not b.held()
        mono_b.advance(1)
        assert b.held()
        assert not a.held()  # A back: B holds it now
        assert store.lease_holder(ESCALATION) == "b"
    finally:
        store.close()


OLD_RELEASE_RENEWAL = (
    "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
    "expires_at = excluded.expires_at "
    "WHERE leases.holder = excluded.holder OR leases.expires_at < ? RETURNING holder"
)
"""A renewal as a release before schema 27 makes it (``Transaction.hold_lease`` then): by the
wall time in ``expires_at``; it never counts in ``renewals``."""


def test_a_live_holder_of_an_earlier_release_keeps_the_lease_during_a_rolling_upgrade(
    caregiver_db: str,
) -> None:
    """During a rolling upgrade an instance of a release before schema 27 may hold the lease:
    it renews every second by writing ``expires_at`` and never counts a renewal. B (this
    release) sees its renewals all the same (the row changes), so it never takes a live
    holder's lease, and takes it over a lease's length of its monotonic clock after the
    renewals stop; the old instance then sees B's lease run (the ``expires_at`` B writes).
    Before, B watched only the holder and count, which an old holder never moves: B took the
    live lease 10 s after it first looked, and both escalated and sent that round."""
    store = Store(caregiver_db)
    wall, mono_b = FakeClock(), FakeClock(7_000.0)
    b = Lease(store, "b", wall, monotonic=mono_b)

    def old_renews() -> bool:
        now = wall.now
        row = execute(caregiver_db, OLD_RELEASE_RENEWAL, (ESCALATION, "old", now + 10, now))
        return row == [("old",)]

    try:
        assert old_renews() and not b.held()
        for _ in range(3 * int(LEASE_TTL_S)):  # a second at a time, the old holder renewing
            wall.advance(1)
            mono_b.advance(1)
            assert old_renews()
            assert not b.held()
        assert store.lease_holder(ESCALATION) == "old"
        for _ in range(int(LEASE_TTL_S) - 1):  # the old instance is stopped for its upgrade
            wall.advance(1)
            mono_b.advance(1)
            assert not b.held()
        wall.advance(1)
        mono_b.advance(1)
        assert b.held()
        assert not old_renews()  # B's lease runs, by the old release's rule too
        assert store.lease_holder(ESCALATION) == "b"
    finally:
        store.close()


@pytest.mark.parametrize("step", [-3600.0, 3600.0], ids=["back", "forward"])
def test_a_page_queued_and_never_tried_before_a_stop_goes_out_at_once_after_a_step(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str, step: float
) -> None:
    """A fall was stored and its page queued, and the service stopped before the notifier
    tried it; NTP stepped the clock an hour while it was stopped, and it restarted: the page
    goes out at the first round. Before, its due time was the moment it was queued, in the old
    clock, with no frame to move it by: stepped back, it waited the hour out (forward it was
    due anyway)."""
    clocks = FakeClock(), FakeClock(5_000.0)
    service, wall, _ = _stepped_service(
        mosquitto, tmp_path, receiver, caregiver_db, clocks, "machine-1"
    )
    device = SimDevice(mosquitto, "treadmill-1")
    try:
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
    finally:
        service.stop()  # the page queued, never tried
    wall.advance(step)  # while stopped
    service, wall, _ = _stepped_service(
        mosquitto, tmp_path, receiver, caregiver_db, clocks, "machine-1"
    )
    try:
        assert service.notifier.deliver_due() == 1
        assert _titles(receiver) == [("/ann", "RetroGuard: FALL")]
    finally:
        device.close()
        service.stop()


def test_a_page_queued_by_an_instance_whose_clock_runs_ahead_goes_out_at_once(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """On PostgreSQL another instance's ingest queues the pages of the falls it stores, due
    at its wall clock's now; the lease's holder sends them. That clock an hour ahead of the
    holder's (NTP not yet synchronised there), the fall page still goes out at the holder's
    next round, while a retry written in a frame waits its time. Before, a page was due at its
    time in the queuing instance's clock: it waited the hour out."""
    service, wall, later = _stepped_service(mosquitto, tmp_path, receiver, caregiver_db)
    ahead = wall() + 3600
    try:
        with service.store.transaction() as tx:  # as the instance an hour ahead queues it
            alert = tx.page_alert("fall", "treadmill-1", None, ahead, ahead + 300, frame=BY_HAND)
            for title in ("RetroGuard: FALL", "RetroGuard: retry"):
                tx.queue_notification(
                    alert,
                    "Ann",
                    0,
                    0,
                    title,
                    "body",
                    ahead,
                    contact_key="Ann",
                    url_key=url_key(receiver.url("ann")),
                    urgency=Urgency.CRITICAL,
                )
        retry = service.store.notifications_due(ahead)[1]
        service.store.retry_notification(retry.id, 1, wall() + 10, "500", BY_HAND)
        assert service.notifier.deliver_due() == 1
        assert [m["title"] for m in receiver.messages] == ["RetroGuard: FALL"]
        later(10)
        assert service.notifier.deliver_due() == 1  # the retry, at its time
    finally:
        service.stop()


def test_a_reminder_written_by_an_instance_whose_clock_runs_ahead_comes_on_the_holders_time(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """Only the escalation lease's holder measures steps, of its own clock; another instance's
    ingest writes an alert's timers in its own wall clock. That clock an hour ahead of the
    holder's (not yet synchronised), the fall still pages at once, and its reminder comes 300 s
    after it by the holder's clock, saying 5 min: the holder brings a timer further ahead than
    its whole interval back to it (Transaction.bound_timers). Before, the reminder and the
    escalation came an hour late."""
    holder, wall, later = _stepped_service(
        mosquitto, tmp_path, receiver, caregiver_db, (FakeClock(), FakeClock(5_000.0)), "m-1"
    )
    ahead: CaregiverService | None = None
    device = SimDevice(mosquitto, "treadmill-1")
    try:
        assert holder.alerting.tick() == 0  # it holds the lease
        holder.ingestor.stop()  # the broker hands the fall to the other instance
        clocks = FakeClock(wall() + 3600), FakeClock(9_000.0)
        ahead, _, _ = _stepped_service(mosquitto, tmp_path, receiver, caregiver_db, clocks, "m-2")
        device.online()
        fall = device.fall()
        assert ahead.ingestor.wait_for(
            lambda: ahead is not None and ahead.store.event(fall["id"]) is not None
        )
        assert holder.notifier.deliver_due() == 1  # the fall page, at once
        assert holder.alerting.tick() == 0
        later(299)
        assert holder.alerting.tick() == 0
        later(1)
        assert holder.alerting.tick() == 1  # 300 s after the fall, not an hour more
        assert holder.notifier.deliver_due() == 1
        assert _titles(receiver) == [("/ann", "RetroGuard: FALL")] * 2
        assert receiver.messages[1]["message"].startswith("REMINDER, not acknowledged after 5 min")
    finally:
        device.close()
        if ahead is not None:
            ahead.stop()
        holder.stop()


def test_only_timers_further_ahead_than_their_interval_are_brought_back_to_it(
    caregiver_db: str,
) -> None:
    """Transaction.bound_timers: a held stumble's grace (30 s) and a paging alert's timeout
    (300 s) written an hour ahead come to their interval from now, their openings by as much
    and in the ticker's frame; timers within their interval (a step's size of leeway: one
    ingest wrote since the tick's look) and closed alerts stay as they were."""
    now = 1_700_000_000.0
    ticker = ClockFrame("boot:holder", 42.0)
    store = Store(caregiver_db)
    try:
        with store.transaction() as tx:
            ahead = now + 3600
            tx.hold_alert("stumble", "held-ahead", None, ahead, ahead + 30, frame=BY_HAND)
            tx.page_alert("fall", "paging-ahead", None, ahead, ahead + 300, frame=BY_HAND)
            tx.hold_alert("stumble", "held-now", None, now + 1, now + 31, frame=BY_HAND)
            tx.page_alert("fall", "paging-now", None, now + 1, now + 301, frame=BY_HAND)
            closed = tx.page_alert("fall", "closed", None, ahead, ahead + 300, frame=BY_HAND)
            tx.close_alert(closed, "acknowledged", "ann", now)
        with store.transaction() as tx:
            assert tx.bound_timers(now, 30.0, 300.0, ticker) == 2
            assert tx.bound_timers(now, 30.0, 300.0, ticker) == 0  # nothing more to do
            timers = {
                device: [(a.created_at, a.next_at) for a in tx.open_alerts(device, ALERT_TYPES)]
                for device in ("held-ahead", "paging-ahead", "held-now", "paging-now")
            }
        assert timers == {
            "held-ahead": [(now, now + 30)],
            "paging-ahead": [(now, now + 300)],
            "held-now": [(now + 1, now + 31)],
            "paging-now": [(now + 1, now + 301)],
        }
        frames = execute(caregiver_db, "SELECT device_id, frame_of FROM alerts ORDER BY id")
        assert frames == [
            ("held-ahead", "boot:holder"),
            ("paging-ahead", "boot:holder"),
            ("held-now", "tests"),
            ("paging-now", "tests"),
            ("closed", "tests"),
        ]
    finally:
        store.close()


def test_a_step_while_the_service_was_stopped_moves_the_timers_it_wrote_in_that_boot(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """The wall clock stepped an hour forward while the service was stopped (NTP's first
    setting as it restarted): its timers are in the frame of the machine's boot, which the
    restarted service reads too, so they move by the step and the reminder keeps its 300 s.
    Before, they were in the stopped instance's frame, which no one measured: the step was
    never seen and the fall's reminder went out at once, 300 s early in the new clock."""
    clocks = FakeClock(), FakeClock(5_000.0)
    service, wall, later = _stepped_service(
        mosquitto, tmp_path, receiver, caregiver_db, clocks, boot="machine-1"
    )
    device = SimDevice(mosquitto, "treadmill-1")
    try:
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
    finally:
        service.stop()
    wall.advance(3600)  # while stopped
    service, wall, later = _stepped_service(
        mosquitto, tmp_path, receiver, caregiver_db, clocks, boot="machine-1"
    )
    try:
        assert service.alerting.tick() == 0  # moved by the step, not due at once
        later(299)
        assert service.alerting.tick() == 0
        later(1)
        assert service.alerting.tick() == 1  # 300 s after the fall
    finally:
        device.close()
        service.stop()


@pytest.mark.parametrize("step", [3600.0, -3600.0], ids=["forward", "back"])
def test_a_retry_written_before_a_restart_keeps_its_delay_across_a_step_while_stopped(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str, step: float
) -> None:
    """A fall page failed (retry in 10 s), the service stopped, the wall clock was stepped an
    hour while it was (NTP's first setting as it restarted) and it restarted in the same boot:
    the retry's due time is stored in the boot's clock frame (schema 26), which the restarted
    notifier reads too, so it comes 10 s after the failure. Before, the notifier measured
    steps only from its own first look: stepped forward, the retry went out at once; back, an
    hour late."""
    clocks = FakeClock(), FakeClock(5_000.0)
    service, wall, later = _stepped_service(
        mosquitto, tmp_path, receiver, caregiver_db, clocks, "machine-1", ack_timeout_s=3000
    )
    device = SimDevice(mosquitto, "treadmill-1")
    try:
        device.online()
        receiver.fail_next = 1
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 0  # 500: retried in 10 s
        assert receiver.fail_next == 0
    finally:
        service.stop()
    wall.advance(step)  # while stopped
    service, wall, later = _stepped_service(
        mosquitto, tmp_path, receiver, caregiver_db, clocks, "machine-1", ack_timeout_s=3000
    )
    try:
        assert service.notifier.deliver_due() == 0  # not at once
        later(9)
        assert service.notifier.deliver_due() == 0
        assert receiver.messages == []
        later(1)
        assert service.notifier.deliver_due() == 1  # 10 s after the failure, not an hour on
        assert len(receiver.messages) == 1
    finally:
        device.close()
        service.stop()


@pytest.mark.empty_database  # the upgrade from that schema's rows
def test_an_alert_stored_before_schema_25_moves_by_the_tickers_measured_step(
    caregiver_db: str,
) -> None:
    """An open alert from a release before the timers' frames were stored (NULL) is moved
    by the step the ticker measures, as before, and its reminder keeps its 300 s."""
    with store_at_schema(caregiver_db, 24):
        pass
    execute(
        caregiver_db,
        "INSERT INTO alerts (kind, device_id, status, created_at, next_at, sends) "
        "VALUES ('fall', 'treadmill-1', 'paging', 1000.0, 1300.0, 1)",
    )
    store = Store(caregiver_db)
    try:
        wall, boot = FakeClock(1100.0), FakeClock(5_000.0)
        config = CaregiverConfig(server=ServerConfig(database=caregiver_db))
        alerting = Alerting(store, config, clock=wall, monotonic=boot)
        assert alerting.tick() == 0
        wall.advance(-3600)
        assert alerting.tick() == 0
        wall.advance(199)
        boot.advance(199)
        assert alerting.tick() == 0
        wall.advance(1)
        boot.advance(1)
        assert alerting.tick() == 1  # 300 s after it was stored, not an hour on
        assert execute(caregiver_db, "SELECT frame_of FROM alerts") == [(alerting.instance,)]
    finally:
        store.close()


def test_a_machine_that_slept_sends_the_timers_due_in_its_sleep_on_waking(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver
) -> None:
    """A step is measured against the time since boot, which runs on while the machine is
    suspended (a laptop serving a household, a paused VM), as the wall clock does. Against the
    monotonic clock, which stops, an hour asleep read as the wall clock stepped an hour
    forward: the reminder due during the sleep was moved an hour on instead of going out."""
    config = make_config(
        mosquitto,
        tmp_path,
        contacts=_ann_and_bob(receiver),
        escalation=EscalationConfig(ack_timeout_s=300, resends=1, retry_s=10, max_attempts=6),
    )
    assert CaregiverService(config).alerting.monotonic is since_boot  # what the service runs
    earlier = since_boot()
    boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    assert earlier <= boot <= since_boot()

    wall, boot_clock = FakeClock(), FakeClock(5_000.0)
    service = CaregiverService(config, clock=wall, monotonic=boot_clock)
    service.start(web=False, background=False)
    try:
        assert service.ingestor.connected.wait(WAIT)
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 1  # Ann's page
        assert service.alerting.tick() == 0
        wall.advance(3600)  # an hour asleep: both clocks ran on
        boot_clock.advance(3600)
        assert service.alerting.tick() == 1  # the reminder due in the sleep, on waking
        device.close()
    finally:
        service.stop()


def test_a_reminder_in_the_notifiers_round_when_the_ack_comes_is_not_sent_after_it(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver
) -> None:
    """The notifier takes what is due, then sends it one message after another (a dead phone
    service costs its 4 s timeout each). Bob acknowledged while Ann's first reminder was on its
    way; before, her second address still got "REMINDER, not acknowledged" after the ack."""
    clock = FakeClock()
    ann = Contact(name="Ann", urls=(receiver.url("ann"), receiver.url("ann-mail")))
    config = make_config(
        mosquitto,
        tmp_path,
        contacts=(ann,),
        escalation=EscalationConfig(ack_timeout_s=300, resends=1, retry_s=10, max_attempts=6),
    )
    fall: dict[str, object] = {}
    acked = threading.Event()

    def send(url: str, title: str, body: str, urgency: Urgency) -> bool:
        delivered = send_notification(url, title, body, urgency)
        if body.startswith("REMINDER") and not acked.is_set():
            acked.set()  # Bob, at the dashboard, while the round goes on
            service.acknowledge("treadmill-1", str(fall["id"]), "bob")
        return delivered

    service = CaregiverService(config, clock=clock, send=send)
    service.start(web=False, background=False)
    try:
        assert service.ingestor.connected.wait(WAIT)
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall.update(device.fall())
        assert service.ingestor.wait_for(lambda: service.store.event(str(fall["id"])) is not None)
        assert service.notifier.deliver_due() == 2  # the page, to both of Ann's addresses
        clock.advance(300)
        assert service.alerting.tick() == 1  # the reminder, to both
        service.notifier.deliver_due()
        service.notifier.deliver_due()  # the follow-ups
        assert acked.is_set()
        assert _titles(receiver) == [
            ("/ann", "RetroGuard: FALL"),
            ("/ann-mail", "RetroGuard: FALL"),
            ("/ann", "RetroGuard: FALL"),
            ("/ann", "RetroGuard: acknowledged"),
            ("/ann-mail", "RetroGuard: acknowledged"),
        ]
        device.close()
    finally:
        service.stop()


def test_past_the_last_contact_everyone_is_reminded_until_an_ack_then_no_one(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """The whole schedule of a fall nobody answers (resends 1, every 5 min): Ann, Ann again,
    Bob, Bob again, then both at every timeout, never a round with no one paged, until Bob
    acknowledges; then both hear it and nothing more is sent, however long the clock runs."""
    service, clock = _service(mosquitto, tmp_path, _ann_and_bob(receiver), caregiver_db)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 1
        rounds = [[(m["path"], m["message"].split(",")[0]) for m in receiver.messages]]
        for _ in range(5):
            clock.advance(300)
            assert service.alerting.tick() == 1
            before = len(receiver.messages)
            service.notifier.deliver_due()
            rounds.append(
                sorted((m["path"], m["message"].split(",")[0]) for m in receiver.messages[before:])
            )
        assert [[path for path, _ in sent] for sent in rounds] == [
            ["/ann"],
            ["/ann"],
            ["/bob"],
            ["/bob"],
            ["/ann", "/bob"],
            ["/ann", "/bob"],
        ]
        assert [sent[0][1].split(" ")[0] for sent in rounds[1:]] == [
            "REMINDER",
            "ESCALATED",
            "REMINDER",
            "STILL",
            "STILL",
        ]
        service.acknowledge("treadmill-1", fall["id"], "bob")
        before = len(receiver.messages)
        assert service.notifier.deliver_due() == 2
        assert sorted(_titles(receiver)[before:]) == [
            ("/ann", "RetroGuard: acknowledged"),
            ("/bob", "RetroGuard: acknowledged"),
        ]
        for _ in range(3):
            clock.advance(300)
            assert service.alerting.tick() == 0
        assert service.notifier.deliver_due() == 0
        assert len(receiver.messages) == before + 2
        device.close()
    finally:
        service.stop()


def test_the_acknowledged_follow_up_reads_right_on_the_acknowledgers_phone_too(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """Ann and Bob were both paged; Bob (account "bob") answered on the dashboard. No
    account is tied to a contact (docs/caregiver.md), so both phones get the follow-up, in
    words that read right on Bob's own: before, his phone said "bob acknowledged the fall"."""
    service, clock = _service(mosquitto, tmp_path, _ann_and_bob(receiver), caregiver_db)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 1
        for _ in range(2):  # Ann's reminder, then Bob's page
            clock.advance(300)
            assert service.alerting.tick() == 1
            service.notifier.deliver_due()
        assert [m["path"] for m in receiver.messages] == ["/ann", "/ann", "/bob"]
        service.acknowledge("treadmill-1", fall["id"], "bob")
        before = len(receiver.messages)
        assert service.notifier.deliver_due() == 2
        told = sorted((m["path"], m["message"]) for m in receiver.messages[before:])
        words = (
            "Acknowledged by bob on the dashboard: the alert 'Fall' on Dad's treadmill is closed. "
            "No further reminders."
        )
        assert told == [("/ann", words), ("/bob", words)]
        device.close()
    finally:
        service.stop()


def test_a_fall_after_the_escalation_is_told_at_once_to_everyone_already_paged(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """A monitor fault paged Ann, reminded her, then escalated to Bob; the incident then
    became a fall. Ann, who was told of a fault only, hears "FALL" at once as Bob does, and
    the next reminder is a whole timeout after the fall, not when the fault's was due."""
    service, clock = _service(mosquitto, tmp_path, _ann_and_bob(receiver), caregiver_db)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        incident = "9f" * 16
        fault = device.event(
            "fault", severity="warning", state="FAULT", reason="IMU silent", incident=incident
        )
        assert service.ingestor.wait_for(lambda: service.store.event(fault["id"]) is not None)
        assert service.notifier.deliver_due() == 1
        for _ in range(2):
            clock.advance(300)
            assert service.alerting.tick() == 1
            assert service.notifier.deliver_due() == 1
        assert [path for path, _ in _titles(receiver)] == ["/ann", "/ann", "/bob"]
        clock.advance(200)
        fall = device.event(
            "fall", severity="critical", state="FAULT", reason="impact 3.2 g", incident=incident
        )
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 2
        assert sorted(_titles(receiver)[3:]) == [
            ("/ann", "RetroGuard: FALL"),
            ("/bob", "RetroGuard: FALL"),
        ]
        clock.advance(299)
        assert service.alerting.tick() == 0
        clock.advance(1)
        assert service.alerting.tick() == 1
        device.close()
    finally:
        service.stop()


def test_a_held_stumble_paged_at_its_graces_end_reminds_whom_it_reached_after_a_reorder(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """A stumble not reset within the grace paged Ann (first of Ann, Bob, Cleo); the service
    restarted with Bob put first. The reminder goes to Ann, whom the page reached, as it does
    for a fall paged at once (not to whoever holds her old place)."""
    cleo = Contact(name="Cleo", urls=(receiver.url("cleo"),))
    ann, bob = _ann_and_bob(receiver)
    service, clock = _service(mosquitto, tmp_path, (ann, bob, cleo), caregiver_db)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        stumble = device.stumble()
        assert service.ingestor.wait_for(lambda: service.store.event(stumble["id"]) is not None)
        clock.advance(service.config.policy.reset_grace_s)
        assert service.alerting.tick() == 1
        assert service.notifier.deliver_due() == 1
        device.close()
    finally:
        service.stop()
    later = clock.now
    service, clock = _service(mosquitto, tmp_path, (bob, ann, cleo), caregiver_db)
    try:
        clock.now = later + 300
        assert service.alerting.tick() == 1
        assert service.notifier.deliver_due() == 1
        said = [(m["path"], m["message"].split(" ")[0]) for m in receiver.messages]
        assert said[1] == ("/ann", "REMINDER,")
    finally:
        service.stop()
