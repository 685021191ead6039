"""The broker link's state on its own (caregiver/broker_link.py): a refused subscription.

The service against a real Mosquitto that refuses one: tests/test_caregiver_service.py.
"""

from __future__ import annotations

from caregiver.broker_link import (
    Connected,
    LinkWatch,
    Lost,
    NeverConnected,
    Problem,
    banner_words,
    held_words,
    status_of,
    topics_words,
)


class _Clocks:
    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 100.0


def _watch() -> tuple[LinkWatch, _Clocks, list[object]]:
    clocks = _Clocks()
    changes: list[object] = []
    watch = LinkWatch(changes.append, wall=lambda: clocks.wall, monotonic=lambda: clocks.mono)
    return watch, clocks, changes


def test_a_refused_subscription_is_not_receiving_from_the_start_or_since_it_was_subscribed() -> (
    None
):
    watch, clocks, changes = _watch()
    watch.subscriptions_refused(["retroguard/+/event"])
    state = watch.state
    assert isinstance(state, NeverConnected) and state.since_mono == 100.0
    assert state.problem is Problem.SUBSCRIPTION_REFUSED
    assert state.refused == ("retroguard/+/event",)
    watch.subscribed()
    assert watch.state == Connected()
    clocks.wall, clocks.mono = clocks.wall + 60, 160.0
    watch.subscriptions_refused(["retroguard/+/event", "retroguard/+/state"])
    lost = watch.state
    assert isinstance(lost, Lost) and lost.since_mono == 160.0
    assert lost.refused == ("retroguard/+/event", "retroguard/+/state")
    watch.dropped()  # the refusal's connection ends: the refusal stays the reason
    assert watch.state == lost
    watch.failed(Problem.UNREACHABLE)  # a reconnection that fails: no refusal to name now
    after = watch.state
    assert isinstance(after, Lost) and after.problem is Problem.UNREACHABLE
    assert after.refused == () and after.since_mono == 160.0
    assert len(changes) == 4  # each change told once, in order


def test_the_banner_and_status_name_the_refused_topics() -> None:
    watch, clocks, _ = _watch()
    watch.subscriptions_refused(["retroguard/+/event"])
    clocks.mono += 5
    words = banner_words(watch.state, "broker:1883")
    assert words is not None and words.lead == "Not receiving alerts from the treadmills"
    assert words.detail == (
        "the message broker at broker:1883 refuses the service's subscription to "
        "retroguard/+/event (check its ACL)"
    )
    status = status_of(watch.state, "broker:1883", clocks.mono)
    assert status["problem"] == "subscription_refused" and status["down_s"] == 5.0
    assert status["refused"] == ["retroguard/+/event"]
    watch.failed(Problem.UNREACHABLE)
    assert "refused" not in status_of(watch.state, "broker:1883", clocks.mono)


def test_many_refused_topics_are_named_a_few_then_counted() -> None:
    assert topics_words(["a"]) == "a"
    assert topics_words(["a", "b"]) == "a and b"
    assert topics_words(["a", "b", "c"]) == "a, b and c"
    assert topics_words(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"


def test_a_message_let_go_stays_said_for_the_rest_of_its_connection() -> None:
    """Past the bound a failing message was let go (acknowledged unhandled): the banner says
    so for the rest of that connection, also once a later fault is a copy of one held (kept,
    not let go); a new connection starts with nothing let go. (Mutation, mut37: the later
    fault's word replaced it, and what was let go went unsaid.)"""
    watch, _, _ = _watch()
    watch.subscribed()
    watch.message_held("retroguard/tm-1/event", "RuntimeError: a bug", 22, held=20, let_go=True)
    watch.message_held("retroguard/tm-1/event", "RuntimeError: a bug", 23, held=20)  # a copy
    state = watch.state
    assert isinstance(state, Connected) and state.held is not None and state.held.let_go
    assert held_words(state.held).consequence.startswith(
        "20 messages are held, each keeping one of the broker's in-flight slots"
    )
    watch.dropped()
    watch.subscribed()
    watch.message_held("retroguard/tm-1/event", "RuntimeError: a bug", 24)
    state = watch.state
    assert isinstance(state, Connected) and state.held is not None and not state.held.let_go


def test_two_messages_held_are_said_as_two() -> None:
    """Two poisoned messages held on one connection each keep an in-flight slot: the banner
    says two are left unacknowledged, not "it" as of one. (Mutation, mut37: said so only from
    three on.)"""
    watch, _, _ = _watch()
    watch.subscribed()
    watch.message_held("retroguard/tm-1/event", "RuntimeError: a bug", 2)
    state = watch.state
    assert isinstance(state, Connected) and state.held is not None
    assert held_words(state.held).consequence.startswith("It is left unacknowledged")
    watch.message_held("retroguard/tm-1/event", "RuntimeError: a bug", 3, held=2)
    state = watch.state
    assert isinstance(state, Connected) and state.held is not None
    assert held_words(state.held).consequence.startswith(
        "2 such messages are left unacknowledged: the broker keeps them"
    )
