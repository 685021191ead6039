"""What a caregiver reads on a treadmill's page, in plain words: the timeline's rows labelled
as a person says them ("Reset at the machine", "Acknowledged", "Monitor stopped"), never the
protocol's event types in capitals ("RESET", "CLOSED", "STOP"), the same words in the page
rendered and in the rows the live feed sends, and an event page's tab titled in words. Real
service, real broker, real database; the JSON API keeps the types."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
from pathlib import Path

from caregiver.feed import event_row
from tests.caregiver_support import (
    Http,
    SimDevice,
    make_config,
    running_service,
    session_record,
    wait_all_handled,
)
from tools.broker import Mosquitto

DEVICE = "treadmill-1"


def test_the_timeline_says_each_event_as_a_person_would_and_the_feed_says_it_alike(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        device.online("STANDBY")
        device.event("start", severity="info", state="STARTING", reason="monitor started")
        ids = device.incident_fall()
        device.event(
            "closed", severity="info", state="TRIPPED", incident=ids["incident"],
            reason="closed by ann via dashboard: the belt stays stopped until a reset at the "
            "machine", by="ann", via="dashboard",
        )  # fmt: skip
        reset = device.reset()
        device.event("test", severity="critical", state="ARMED", reason="test alarm")
        device.event("stop", severity="info", state="ARMED", reason="monitor stopped")
        wait_all_handled(service, device)
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}")
        assert status == 200
        rows = [
            (html.unescape(m[1]), " ".join(html.unescape(m[2]).split()))
            for m in re.finditer(
                r'<strong class="etype">(.*?)</strong>.*?<span class="ereason">(.*?)</span>',
                page,
                re.S,
            )
        ]
        assert rows == [  # newest first
            ("Monitor stopped", ""),
            ("Test alarm", ""),
            ("Reset at the machine", "re-armed at the machine after the belt was stopped"),
            (
                "Acknowledged",
                "by ann on the dashboard: the belt stays stopped until a reset at the machine",
            ),
            ("Fall", "impact firm (3.2 g; standing still is 1 g), 83° from upright — lying down"),
            ("Stumble — belt stopped", "trunk rotated 40° in 0.3 s"),
            ("Monitor started", ""),
        ]
        # the live feed's rows take the same words from the same place
        stored = service.store.recent_events(
            ["start", "stumble", "fall", "closed", "reset", "test", "stop"], limit=20
        )
        assert [(r.title, r.text) for r in (event_row(e, None) for e in stored)] == rows
        # an event outside any incident: its tab is titled in words, not "reset on ..."
        status, _, event_page = web.request("GET", f"/events/{reset['id']}")
        assert status == 200
        title = re.search(r"<title>(.*?)</title>", event_page, re.S)
        assert title is not None
        assert html.unescape(title[1]) == "Re-armed at the machine on Dad's treadmill - RetroGuard"
        device.close()


def test_the_progress_page_counts_belt_stops_stumbles_and_falls_in_words(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """The sessions' table said "Trips" beside "Stumbles": the monitor's word for stopping the
    belt, which a reader takes for tripping over. Its headers and the labels a phone shows
    in each cell are the words the PDF report uses too."""
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        record = session_record(DEVICE, dt.datetime.now(dt.UTC), backward_min=6, longest_min=4,
                                trips=2, stumbles=1)  # fmt: skip
        device.session(record)
        wait_all_handled(service, device)
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/progress")
        assert status == 200
        table = re.search(r'<table id="sessions".*?</table>', page, re.S)
        assert table is not None
        headers = [html.unescape(h) for h in re.findall(r'<th scope="col">(.*?)</th>', table[0])]
        assert headers[5:8] == ["Belt stops", "Stumbles", "Falls"]
        count = r'<td data-label="([^"]+)" class="num">(?:<span class="cell">)?(\d+)'
        cells = dict(re.findall(count, table[0]))
        assert cells["Belt stops"] == "2" and cells["Stumbles"] == "1" and cells["Falls"] == "1"
        assert "Trips" not in page
        device.close()


def _rows(page: str) -> list[tuple[str, str]]:
    return [
        (html.unescape(m[1]), " ".join(html.unescape(m[2]).split()))
        for m in re.finditer(
            r'<strong class="etype">(.*?)</strong>.*?<span class="ereason">(.*?)</span>', page, re.S
        )
    ]


def test_one_press_of_reset_after_a_stumble_is_one_row_and_both_events_stay_stored(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """One press of the reset button with an incident open sends ``ok`` (the walker's "I'm
    OK", closing the incident) then ``reset`` (the belt armed again), both with the incident
    (``firmware/safety.py``; ``tests/test_windows.py`` checks the monitor sends them so). The
    timeline showed two rows, "Walker pressed I'm OK" and "Reset at the machine", read as two
    things done: it shows one, and so does the incident's "What happened". Both events stay
    stored and in the event page's details; a reset without an incident keeps its row."""
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        device.online("STANDBY")
        first = device.event("reset", severity="info", state="ARMED",
                             reason="armed by local reset from STANDBY")  # fmt: skip
        incident = uuid.uuid4().hex
        trip = device.event("stumble", severity="warning", state="TRIPPED", incident=incident,
                            reason="trunk rotated 13 deg in 0.3 s to 15 deg")  # fmt: skip
        ok = device.event("ok", severity="info", state="TRIPPED", incident=incident, by="walker",
                          reason="I'm OK: the walker re-armed at the machine")  # fmt: skip
        reset = device.event("reset", severity="info", state="ARMED", incident=incident,
                             reason="armed by local reset from TRIPPED")  # fmt: skip
        wait_all_handled(service, device)
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}")
        assert status == 200
        assert _rows(page) == [  # newest first
            ("Walker pressed I'm OK at the machine; belt re-armed", ""),
            ("Stumble — belt stopped", "trunk rotated 13° in 0.3 s to 15°"),
            ("Reset at the machine", "armed at the machine"),
        ]
        assert f'data-event="{ok["id"]}"' in page and f'data-event="{reset["id"]}"' not in page
        assert f'data-event="{first["id"]}"' in page
        stored = service.store.recent_events(["ok", "reset"], limit=10)
        assert {e.id for e in stored} == {first["id"], ok["id"], reset["id"]}
        status, _, event_page = web.request("GET", f"/events/{trip['id']}")
        assert status == 200
        steps = re.search(r'<ol class="steps">(.*?)</ol>', event_page, re.S)
        assert steps is not None
        said = [re.split(r"\sUTC ", html.unescape(re.sub(r"<[^>]+>", "", s)), maxsplit=1)[1].strip()
                for s in re.findall(r"<li[^>]*>(.*?)</li>", steps[1], re.S)]  # fmt: skip
        assert said == [
            "Stumble: the monitor stopped the belt",
            "The walker pressed I'm OK at the machine; the belt re-armed",
        ]
        details = re.findall(r"<h3>(.*?) <span", event_page)
        assert [html.unescape(d) for d in details] == [
            "Stumble: the monitor stopped the belt",
            "The walker pressed I'm OK",
            "Re-armed at the machine",
        ]
        # the live feed's rows: each says the one row's words, to join its partner's
        rows = {e.id: event_row(e, None) for e in stored}
        joined = "Walker pressed I'm OK at the machine; belt re-armed"
        assert rows[ok["id"]].joined == rows[reset["id"]].joined == joined
        assert rows[first["id"]].joined is None
        device.close()
