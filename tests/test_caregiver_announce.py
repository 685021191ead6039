"""What one instance announces reaches the others whole: a burst of changes goes out as a few
notifications, each as full as PostgreSQL's 8000-byte limit allows, and none over it."""

from __future__ import annotations

import threading

from caregiver.storage.engines import Announcer, Listener
from tests.mqtt_helpers import WAIT
from tools.pgcluster import PostgresCluster


def test_a_burst_of_short_changes_reaches_the_listener_every_one(
    postgres_cluster: PostgresCluster,
) -> None:
    """The Announcer counted a separating comma, and wrote ", ": a notification of 870 short
    messages was 870 bytes longer than counted, over the limit, and dropped whole (from
    review)."""
    url = postgres_cluster.new_database()
    heard: list[str] = []
    everything = threading.Event()
    sent = [f"m{n:05d}" for n in range(3000)]

    def hear(message: str) -> None:
        heard.append(message)
        if len(heard) == len(sent):
            everything.set()

    listener = Listener(url, hear)
    announcer = Announcer(url)
    try:
        assert listener.listening.wait(WAIT)
        for message in sent:  # faster than the announcer's thread sends: batches form
            announcer.announce(message)
        assert everything.wait(WAIT), f"{len(heard)} of {len(sent)} heard"
        assert heard == sent  # in order, each once
    finally:
        announcer.stop()
        listener.stop()
