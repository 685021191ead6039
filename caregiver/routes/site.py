"""What every route shares: the service interface, templates, who is logged in, the checks.

Who is logged in is Starlette's own authentication middleware's job
(:class:`SessionCookieAuth`, installed by :func:`caregiver.web.create_app`): it
looks the session cookie up (in a worker thread) for every request and sets
``request.user`` — a :class:`Caregiver`, or Starlette's ``UnauthenticatedUser``.
Everything but the login page (and ``/static/public/``) needs a caregiver;
pages redirect to the login, anything else gets 401. Every POST needs the
session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``). A
caregiver limited to some devices gets 404 for any other device's pages, as if
it did not exist.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import msgspec
from markupsafe import Markup, escape
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    UnauthenticatedUser,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from caregiver import story, walkers
from caregiver.auth import Accounts, LoginThrottle, Session, same_token
from caregiver.config import CaregiverConfig, PolicyConfig
from caregiver.feed import Moment
from caregiver.health import Health
from caregiver.hub import Hub
from caregiver.localtime import iso_of, moment_of, words
from caregiver.priority import urgency_of
from caregiver.seen import Acknowledged, Seen, earlier_notice, notice
from caregiver.storage import Store, Urgency
from core.progress import week_label, week_start
from core.protocol.commands import Command
from core.protocol.plan import Plan, plan_words
from core.protocol.words import ALERT_SAID

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
COOKIE = "rg_session"
LOGIN_COOKIE = "rg_login"

Handler = Callable[[Request], Awaitable[Response]]


OPEN_ALARMS = 50
"""Open critical incidents ``/api/alarms`` names at most (the newest). Counted by incidents,
so one incident's many critical events (a device flapping) never hide another device's
fall."""


ACK_NOTICE_S = 600.0
"""How long the address a plain form post is sent back to after an acknowledgement (its
``ack=`` and ``at=``, the moment it was answered) still says what that acknowledgement did,
with the moment in front ("At 14:05:12 UTC: Acknowledged — the treadmill will be told ...").
A reload said it again as if new, and a bookmark of it days later did too ("A new alert
arrived before your click"); an address without ``at`` (an older one) says nothing. Nothing
is acknowledged again either way: only a POST does that. The page's script takes the
notice's part off the address once shown (``static/app.js``), so its reload is the plain
page."""


def ack_moment(query: Mapping[str, str], now: float) -> float | None:
    """The acknowledgement an address names (its ``at``) when it still speaks for it (within
    :data:`ACK_NOTICE_S` of ``now``, not ahead of it beyond a clock's second); else None."""
    if "ack" not in query:
        return None
    try:
        at = float(query.get("at", ""))
    except ValueError:
        return None
    return at if math.isfinite(at) and -1.0 <= now - at <= ACK_NOTICE_S else None


OPEN_ALARMS_SHOWN = 1000
"""What a page's render tells it it has shown: more than ``/api/alarms`` names (ids only:
about 45 kB in a page at worst, a thousand falls open at once)."""


def open_alarms(store: Store, session: Session) -> list[str]:
    """The newest critical event ids of the open incidents ``session`` may see (nobody
    answered them): what a page rendered now shows. A page opened afresh asks ``/api/alarms``
    at once when one of them is not an alarm its tab silenced, and alarms for those (a
    dashboard opened after a fall, a wall tablet's browser restarted: issue 14); a page the
    script reloaded knows what the page before it alarmed for, and alarms only for the rest
    (``static/app.js``)."""
    return [event for _, event in store.open_critical(session.devices, OPEN_ALARMS_SHOWN)]


class MissedAlarm(msgspec.Struct, frozen=True):
    """An open incident with a critical event (``/api/alarms``): its :attr:`text` is worded
    as the live feed's alarm for that event (:func:`caregiver.story.alarm`), so a fall
    reads the same whether the page heard it or caught up on it. The page alarms for it
    unless it rendered or heard :attr:`event` already."""

    device_id: str
    device_name: str
    incident: str
    text: str
    link: str
    event: str
    """Its newest critical event's id; for an alert without a critical event, its own event's
    id, or ``alert-<id>`` for one without an event (offline while armed): what the page
    remembers it heard by."""
    urgent: bool = True
    """A fall, no recovery or call for help (the alarm's red); False for an alert that pages
    without one — offline while armed, a stumble not reset, a fault (amber: listed as still
    open, in the notice's amber, never the banner's beeping)."""
    paging: bool = True
    """False for an alert not yet paging: a stumble held for the walker's own reset, whose
    :attr:`text` says when it will page (never urgent)."""
    pages_in: float | None = None
    """Of a held alert, the seconds until it pages by the service's clock: the page asks
    again then (``static/app.js``), as its words "caregivers are alerted at 14:05:30 CET if
    not" are of a time to come, and read as a promise still to keep once it had gone by."""
    pages_at: Moment | None = None
    """Of a held alert, when it pages: its :attr:`text` says it in the service's zone, named
    (``pages_at.text``, "14:05:30\u00a0UTC"), what a page without scripts shows; the page
    shows it in the reader's own zone, as every time on it (``static/time.js``), in the
    notice and the tab's title alike (:func:`still_open_element`, ``static/app.js``). A reader in
    Paris read "alerted at 16:45:41 UTC" beside cards saying "17:45:41 UTC+01"."""


def still_open_element(alarm: MissedAlarm) -> Markup:
    """An alarm's words as the "Still open" notice shows them: its names hyphened
    (:func:`hyphened_element`) and a held alert's time to page (:attr:`MissedAlarm.pages_at`)
    a ``<time>`` the browser puts in its own zone; app.js's ``stillOpenWords`` builds the same."""
    at = alarm.pages_at
    if at is None or at.text not in alarm.text:
        return hyphened_element(alarm.text)
    before, after = alarm.text.split(at.text, 1)
    when = Markup(
        f'<time datetime="{escape(at.iso)}" data-format="{escape(at.format)}">'
        f"{escape(at.text)}</time>"
    )
    return hyphened_element(before) + when + hyphened_element(after)


class MoreAlarm(msgspec.Struct, frozen=True):
    """One place "+N more" names: another treadmill's alarm, or several ("2 on Dad's
    treadmill"), or the named treadmill's earlier ones ("1 earlier on treadmill-2"); its
    link opens the alarm (one) or the treadmill's page (several, listed there)."""

    text: str
    link: str


class AlarmBanner(msgspec.Struct, frozen=True):
    """The red banner a page rendered with open falls shows, worded as ``static/app.js``
    words it once it has asked ``/api/alarms`` (``missedAlarms``: every open alarm raised,
    the banner naming the newest, "+N more" counting the others: ``moreOf``)."""

    text: str
    link: str
    incident: str
    more: int
    """How many other open alarms (incidents) it sounds for: "+N more"."""
    more_at: list[MoreAlarm]
    """Where they are, each a link (:func:`more_of`)."""
    alarms: list[dict[str, str]]
    """Every alarm it sounds for, as the script raises it (its event, device, device's name,
    words, link and incident; oldest first): the script words the banner at once for those
    its tab has not silenced, when it silenced some (the words rendered named those too)."""


def more_of(alarms: list[MissedAlarm], named: MissedAlarm) -> tuple[int, list[MoreAlarm]]:
    """ "+N more" beside ``named`` for the other ``alarms`` (oldest first, one an incident),
    as ``static/app.js`` (``moreOf``) says it: how many, and where each is — each other
    treadmill once (its alarm's link; "2 on Dad's treadmill" and its page for several), then
    ``named``'s treadmill's earlier ones ("1 earlier on treadmill-2"). A treadmill with
    several open incidents was named by its oldest, the others neither counted nor reachable
    from the banner."""
    groups: dict[str, list[MissedAlarm]] = {}
    mine = named.incident or named.event  # a device from before incidents: its event
    for alarm in alarms:
        if (alarm.incident or alarm.event) != mine:
            groups.setdefault(alarm.device_id, []).append(alarm)
    places: list[MoreAlarm] = []
    own: MoreAlarm | None = None
    for device_id, each in groups.items():
        last = each[-1]
        link = last.link if len(each) == 1 else story.device_link(device_id)
        if device_id == named.device_id:
            own = MoreAlarm(f"{len(each)} earlier on {last.device_name}", link)
            continue
        text = last.device_name if len(each) == 1 else f"{len(each)} on {last.device_name}"
        places.append(MoreAlarm(text, link))
    if own is not None:
        places.append(own)
    return sum(len(each) for each in groups.values()), places


def alarm_banner(alarms: list[MissedAlarm]) -> AlarmBanner | None:
    """The banner for ``alarms`` (:func:`missed_alarms`' order, newest first, one an open
    incident) as the page's script ends up showing it, or None when nothing urgent is open:
    the newest named, "+N more" every other (:func:`more_of`). Rendered so, the banner is in
    place from the first paint: the script keeps it, or hides it at once when the tab
    silenced those alarms (the page does not shift under a finger after load)."""
    shown = [alarm for alarm in reversed(alarms) if alarm.urgent]  # the script's: oldest first
    if not shown:
        return None
    newest = shown[-1]
    more, places = more_of(shown, newest)
    each = [
        {"event": a.event, "device": a.device_id, "name": a.device_name, "text": a.text,
         "link": a.link, "incident": a.incident}
        for a in shown
    ]  # fmt: skip
    return AlarmBanner(newest.text, newest.link, newest.incident, more, places, each)


def missed_alarms(
    store: Store,
    session: Session,
    name: Callable[[str], str],
    zone: dt.tzinfo,
    policy: PolicyConfig,
    now: float,
) -> list[MissedAlarm]:
    """The open (unacknowledged) incidents with a critical event, of the devices ``session``
    may see, newest first: a page whose feed broke alarms for those whose newest critical
    event it has not rendered nor heard. Then the other alerts paging now (offline while
    armed, a stumble not reset, a fault; not urgent), each once, newest first: the "Still
    open" notice lists every alert that pages, and said "Still open: HELP" while a monitor
    gone offline paged too. Last the stumbles held for the walker's own reset, not yet
    paging, saying when they will (in ``zone``): a stumble within its grace was listed
    nowhere, though its card was amber and it would page unanswered. No times otherwise:
    each instance's clock, the events' arrival times and a page's bearings need not agree.
    ``policy``: a stumble paging at once is no "Stumble not reset" (:func:`alarm_words`).
    ``now``: the service's clock, against which a held alert's time to page is past or not."""
    found = store.open_critical(session.devices, OPEN_ALARMS)
    events = store.events_by_id([event for _, event in found]) if found else {}
    alarms = []
    for incident, event in found:
        stored = events.get(event)
        kind = stored.type if stored is not None else incident.severity
        device_name = name(incident.device_id)
        alarms.append(
            MissedAlarm(
                incident.device_id,
                device_name,
                incident.id,
                story.alarm(
                    kind, device_name, walkers.who_shown(store, incident.device_id, incident.walker)
                ),
                f"/events/{incident.first_event_id}",
                event,
            )
        )
    # What else pages (issue: "Still open: HELP" while an offline-while-armed alert paged too)
    listed = {incident.id for incident, _ in found}
    others = store.paging_alerts(session.devices, OPEN_ALARMS, held=True)
    # paging first, then those still waiting for the walker's reset (each newest first)
    for alert in sorted(others, key=lambda a: a.status == "held"):
        if alert.incident is not None and alert.incident in listed:
            continue
        if alert.incident is not None:
            listed.add(alert.incident)
        device_name = name(alert.device_id)
        # the alert's incident's first event is its page (an older alert: its own event)
        link = f"/events/{alert.event_id}" if alert.event_id else story.device_link(alert.device_id)
        held = alert.status == "held"
        pages_in = None
        pages_at = None
        if held:
            moment = moment_of(alert.next_at)
            at = words(moment, zone).split(", ")[-1] if moment is not None else "soon"
            if moment is not None:  # the reader's zone on the page (MissedAlarm.pages_at)
                pages_at = Moment(iso_of(moment), at, "time")
            if alert.next_at is not None and alert.next_at > now:
                pages_in = alert.next_at - now
            due = moment is not None and pages_in is None
            text = story.held_alarm(alert.kind, device_name, at, due=due)
        else:
            at_once = getattr(policy, alert.kind, "page") == "page"
            text = story.alarm(alert.kind, device_name, at_once=at_once)
        alarms.append(
            MissedAlarm(
                alert.device_id,
                device_name,
                alert.incident or "",
                text,
                link,
                alert.event_id or f"alert-{alert.id}",
                urgent=not held and urgency_of(alert.kind) is Urgency.CRITICAL,
                paging=not held,
                pages_in=pages_in,
                pages_at=pages_at,
            )
        )
    return alarms


class Backend(Protocol):
    """What the dashboard needs from the caregiver service (which the web layer never imports:
    :class:`caregiver.service.CaregiverService` is one)."""

    @property
    def config(self) -> CaregiverConfig: ...

    @property
    def store(self) -> Store: ...

    @property
    def accounts(self) -> Accounts: ...

    @property
    def limiter(self) -> LoginThrottle: ...

    @property
    def hub(self) -> Hub: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    def device_name(self, device_id: str) -> str: ...

    def health(self) -> Health:
        """Whether the service's parts turn and its broker link receives (``/healthz``); cheap
        and non-blocking: called on the event loop."""

    def acknowledge_seen(
        self, device_id: str, seen: Seen, by: str, *, event_id: str | None = None
    ) -> Acknowledged:
        """Close what a page showed (``event_id``'s incident, else a card's), record it and
        send the device's ack command (network and disk: not on the loop); what closed and
        what stayed open (:mod:`caregiver.seen`). :class:`ValueError` for an incident or
        event not the device's; :class:`RuntimeError` without a broker connection."""

    def test_alarm(self, device_id: str, by: str) -> str:
        """Send the device's test_alarm command (not on the loop); its request id.
        :class:`RuntimeError` when the service has no broker connection."""

    def self_test(self, device_id: str, by: str) -> str:
        """Send the device's self_test command, recorded as asked (not on the loop); its
        request id. :class:`RuntimeError` when the service has no broker connection."""

    def assign_plan(self, device_id: str, plan: Plan, by: str, walker: str = "default") -> str:
        """Send the device's plan command (for ``walker``; not on the loop); its request id.
        :class:`RuntimeError` when the service has no broker connection."""

    def send_command(self, device_id: str, command: Command) -> str:
        """Send a checked command (not on the loop); its request id.
        :class:`RuntimeError` when the service has no broker connection."""


class Caregiver(BaseUser):
    """A logged-in caregiver, as ``request.user``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.session.username

    @property
    def identity(self) -> str:
        return self.session.username


class SessionCookieAuth(AuthenticationBackend):
    """Starlette's authentication backend for the dashboard's own sessions: the cookie's
    token is looked up (by its hash, in a worker thread) in the service's database."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        token = conn.cookies.get(COOKIE)
        if not token:
            return None
        session = await run_in_threadpool(self.accounts.session, token)
        if session is None:
            return None
        return AuthCredentials(["authenticated"]), Caregiver(session)


def caregiver_of(request: HTTPConnection) -> Caregiver | None:
    """The logged-in caregiver (from the authentication middleware), or None."""
    user = request.scope.get("user", UnauthenticatedUser())
    return user if isinstance(user, Caregiver) else None


def since_number(seconds: float) -> str:
    """Epoch ``seconds`` for a ``data-since`` ("(2 min ago)" counts from it) as the page's
    script writes the same number, which the live feed's JSON hands it (``app.js``,
    ``since``): a stamp on a whole second, about one in a thousand, rendered "1796610666.0"
    and was built live as "1796610666", so a row the feed built differed from the reloaded
    one's markup."""
    value = float(seconds)
    return str(int(value)) if value.is_integer() else repr(value)


def week_element(week: str) -> Markup:
    """``<time datetime="<its Monday>" data-format="day">`` for a walker's week ("2026-W49"):
    the browser says the day as it says every other date on the dashboard ("Nov 30" beside
    "Mon, Nov 30, 09:00 UTC" in an American browser; ``static/time.js``), the text until then
    (and without scripts) :func:`core.progress.week_label`'s, as the PDF report says it. The
    page said "Week of 30 Nov" above a table whose dates read "Mon, Nov 30"."""
    return Markup(
        f'<time datetime="{week_start(week).isoformat()}" data-format="day">'
        f"{escape(week_label(week))}</time>"
    )


def month_element(first_day: dt.date) -> Markup:
    """``<time datetime="2026-09-01" data-format="month">September 2026</time>``: a month of a
    walker's earlier weeks (the progress page's "Earlier, month by month"), said by the browser
    in its language as :func:`week_element`'s weeks are, the server's English until then."""
    return Markup(
        f'<time datetime="{first_day.isoformat()}" data-format="month">'
        f"{escape(f'{first_day:%B} {first_day.year}')}</time>"
    )


def hyphened_element(name: str) -> Markup:
    """A plan's or a treadmill's name as the pages show it (the sessions tables, a card's plan
    line and title, the alarm banner; app.js's ``hyphened`` builds the live feed's the same
    way): each hyphen and the number after it
    kept together (``<span class="nowrap">-9</span>``), so a name wider than its column
    wraps after a hyphen before a word ("progression-" over "week-9") or not at all. The
    browser breaks after any hyphen, and at 1024 px the table read "progression-week-" over
    "9", and a phone's card title "physiotherapy-room-" over "2-east"; the text is the name's
    own, character for character (copied, it is the plan's id)."""
    parts = _HYPHEN_NUMBER.split(name)
    return Markup(
        "".join(
            f'<span class="nowrap">{escape(part)}</span>' if n % 2 else str(escape(part))
            for n, part in enumerate(parts)
        )
    )


_HYPHEN_NUMBER = re.compile(r"(-[0-9])")
"""A hyphen and the digit after it ("week-9", "alternate-2-2"): not a place to wrap. 0-9
only, as JavaScript's digit class in app.js's ``hyphened`` is: Python's takes any Unicode
digit (an Arabic-Indic three), and the card the live feed built differed from the page's."""


class Site:
    """The templates and the request checks, bound to one service."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        # The templates are package files: no stat() of each one at every render (the live
        # feed renders a card and a row per event).
        self.templates.env.auto_reload = False
        self.templates.env.globals["device_name"] = backend.device_name
        self.templates.env.globals["device_link"] = story.device_link
        self.templates.env.filters["when"] = self.time_element
        self.templates.env.filters["week"] = week_element
        self.templates.env.filters["since"] = since_number
        self.templates.env.filters["month"] = month_element
        self.templates.env.filters["hyphened"] = hyphened_element
        self.templates.env.filters["still_open_words"] = still_open_element
        # who: the walker its incident names (the page's ``who``, read off the event loop)
        self.templates.env.globals["card_story"] = lambda d, who=None: story.card(
            d, backend.clock(), who
        )
        self.templates.env.globals["timeline"] = story.timeline
        self.templates.env.globals["clock_not_set"] = story.CLOCK_NOT_SET
        self.templates.env.globals["untold_words"] = story.UNTOLD
        self.templates.env.globals["not_live_words"] = story.NOT_LIVE
        # when a row's event happened, by the device's clock (its receipt said when apart)
        self.templates.env.globals["event_stamped"] = story.event_stamped
        self.templates.env.globals["incident_stamped"] = story.incident_stamped
        self.templates.env.globals["counted"] = story.COUNTED
        # each alert's alarm words, for a page fed by an instance from before the service
        # worded its alarms (a rolling upgrade): it said the type in capitals, "NO RECOVERY"
        self.templates.env.globals["alarm_words"] = {k: w.alarm for k, w in ALERT_SAID.items()}
        # a plan in words wherever one is shown (the plan and progress pages): one summary
        self.templates.env.globals["plan_words"] = plan_words
        self.templates.env.globals["incident_headline"] = lambda i, who=None: story.headline(
            i, f"/events/{i.first_event_id}", who
        )

    def moment(self, value: str | float | None, format: str = "datetime") -> Moment | None:
        """A stored time as the page shows it: UTC for the browser, and the service zone's
        words until the browser has put it in its own (:meth:`time_element`, and the live
        feed's messages, :mod:`caregiver.feed`). ``format``: datetime (to the second),
        minute, date, time (of day, to the second) or clock (of day, to the minute: a
        session's start under its date, each a line of the progress table's Date column)."""
        if value is None or value == "":
            return None
        moment = moment_of(value)  # read once for both texts
        if moment is None:
            text, iso = str(value), ""
        else:
            seconds = format in ("datetime", "time")
            # its zone kept on its time's line (caregiver.localtime.ZONE_JOIN), as time.js's
            # text keeps it, the notifications' and the PDF's
            text = words(moment, self.backend.config.zone, seconds=seconds)
            iso = iso_of(moment)
        if format == "date":
            text = text.split(",")[0]
        elif format in ("time", "clock"):
            text = text.split(", ")[-1]
        return Moment(iso, text, format)

    def time_element(self, value: str | float | None, format: str = "datetime") -> Markup:
        """``<time datetime="<UTC>">`` for a stored time: the browser shows it in its own zone
        (``static/time.js``); the text until then is the service's zone, said."""
        moment = self.moment(value, format)
        if moment is None:
            return Markup("")
        return Markup(
            f'<time datetime="{escape(moment.iso)}" data-format="{escape(moment.format)}">'
            f"{escape(moment.text)}</time>"
        )

    def authed(self, handler: Handler) -> Handler:
        """Only with a session (pages redirect to the login), and POSTs only with its CSRF
        token; the handler finds the session in ``request.state.session``."""

        async def wrapper(request: Request) -> Response:
            caregiver = caregiver_of(request)
            session = caregiver.session if caregiver is not None else None
            if session is None:
                wants_html = "text/html" in request.headers.get("accept", "")
                if request.method == "GET" and wants_html:
                    return RedirectResponse(
                        "/login?next=" + quote(request.url.path, safe="/"), status_code=303
                    )
                return PlainTextResponse("authentication required", status_code=401)
            if request.method not in ("GET", "HEAD"):
                token = request.headers.get("x-csrf-token")
                if token is None:
                    form = await request.form()
                    value = form.get("csrf")
                    token = value if isinstance(value, str) else None
                if not same_token(token, session.csrf):
                    return PlainTextResponse("missing or wrong CSRF token", status_code=403)
            request.state.session = session
            # before the handler reads the store: what a page renders is at least this new
            request.state.changes = self.backend.hub.marker_for(session.may_see)
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                # after the marker: a critical event counted after it the page asks about
                request.state.alarmed = await run_in_threadpool(
                    open_alarms, self.backend.store, session
                )
                at = ack_moment(request.query_params, self.backend.clock())
                request.state.ack_at = at
                if request.state.alarmed or at is not None:
                    # what /api/alarms would answer now: the banner a page with open falls
                    # renders (the script only keeps it: shown after load, it pushed the
                    # cards down under a finger about to press Acknowledge), and, sent back
                    # after an acknowledgement just now, what it left open
                    open_now = await run_in_threadpool(
                        missed_alarms,
                        self.backend.store,
                        session,
                        self.backend.device_name,
                        self.backend.config.zone,
                        self.backend.config.policy,
                        self.backend.clock(),
                    )
                    request.state.open_now = open_now
                    request.state.banner = alarm_banner(open_now)
                    if at is not None:
                        request.state.still_open = open_now
                earlier = request.query_params.get("earlier")
                # sent back after an acknowledgement someone else's came before
                if earlier and at is not None:
                    request.state.earlier = await run_in_threadpool(self._earlier, session, earlier)
            return await handler(request)

        return wrapper

    async def amber_rendered(self, request: Request) -> None:
        """A page rendering an amber card renders the amber "Still open" notice with it, as
        ``static/app.js`` words it once it has asked ``/api/alarms`` (``showWarnings``):
        shown only after load, it pushed the cards down under a finger about to press. The
        alarms the page already asked (open falls, an acknowledgement) are used as they are;
        otherwise they are asked here, once."""
        if not hasattr(request.state, "session") or hasattr(request.state, "open_now"):
            return
        if request.method != "GET" or "text/html" not in request.headers.get("accept", ""):
            return
        session: Session = request.state.session
        request.state.open_now = await run_in_threadpool(
            missed_alarms,
            self.backend.store,
            session,
            self.backend.device_name,
            self.backend.config.zone,
            self.backend.config.policy,
            self.backend.clock(),
        )

    def _earlier(self, session: Session, incident_id: str) -> str:
        """Who closed ``incident_id`` before ``session``'s caregiver, in words, as stored (a
        device this caregiver may not see: nothing, as if it did not exist)."""
        incident = self.backend.store.incident(incident_id)
        if incident is None or not session.may_see(incident.device_id):
            return ""
        name = self.backend.device_name(incident.device_id)
        return earlier_notice(incident, session.username, name)

    @staticmethod
    def may_see(request: Request, device_id: str) -> bool:
        """The logged-in caregiver (of an :meth:`authed` handler) may see this device."""
        session: Session = request.state.session
        return session.may_see(device_id)

    @staticmethod
    def not_found(what: str) -> Response:
        """The answer for something that does not exist, or that this caregiver may not see
        (the same: a limited account learns nothing of the other devices)."""
        return PlainTextResponse(f"no such {what}", status_code=404)

    def missing_page(self, request: Request, what: str) -> Response:
        """:meth:`not_found` as a page a person reached by a link (an event page, from an
        old notification or bookmark; a treadmill's page, its progress or plan page, from a
        bookmark or a page whose treadmill this account may no longer see): the same 404,
        with a way back to the dashboard, in the dashboard's type (a bare "no such device"
        read as a broken site on a phone, in the browser's smallest type)."""
        return self.render(request, "missing.html", status_code=404, what=what)

    def missing_walker(self, request: Request, device_id: str, walker: str, page: str) -> Response:
        """:meth:`missing_page` for a ``?walker=`` the treadmill does not have (a link or
        bookmark from before the walker was removed), leading to ``page`` ("progress",
        "plan") of the walker it shows now: it was a bare "no walker 'anna' on treadmill-1"
        in the browser's smallest type, without a way back."""
        link = story.device_link(device_id, f"/{page}")
        text = {"progress": "Walking progress", "plan": "Session plan"}[page]
        back = {"device_id": device_id, "walker": walker, "link": link, "text": text}
        return self.render(request, "missing.html", status_code=404, what="walker", back=back)

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> Response:
        session: Session | None = getattr(request.state, "session", None)
        context.setdefault("user", session.username if session else None)
        context.setdefault("csrf", session.csrf if session else "")
        # the live feed's bearings (static/app.js): the changes this page has, and the open
        # critical incidents' newest critical events it shows (a fresh page alarms for them)
        context.setdefault("changes", getattr(request.state, "changes", ""))
        context.setdefault("alarmed", getattr(request.state, "alarmed", []))
        # the alarm banner as the script will show it (none: rendered hidden, as ever)
        context.setdefault("banner", getattr(request.state, "banner", None))
        # the banner while the service cannot hear the devices (caregiver/broker_link.py)
        context.setdefault("broker", self.backend.hub.broker)
        # an acknowledgement sent back here (a plain form post) says what it left open
        # (just now: an address reloaded or bookmarked later says nothing, ACK_NOTICE_S)
        query = request.query_params
        at: float | None = getattr(request.state, "ack_at", None)
        earlier: str = getattr(request.state, "earlier", "")
        said = notice(query, query.getlist("open"), earlier) if at is not None else ""
        when = self.time_element(at, "time") if said else Markup("")
        # its time a <time> as every other: the reader's zone once time.js has run (it said
        # the service's, "At 16:45:41 UTC", to a reader in Paris beside "17:45:41 UTC+01")
        ack_notice = Markup("At {}: {}").format(when, said) if when else said
        context.setdefault("ack_notice", ack_notice)
        # green, as the page's script shows it: all it was asked closed and the device told
        context.setdefault(
            "ack_done", at is not None and query.get("ack") == "done" and "device" not in query
        )
        # and every alert still paging that the caregiver may see, as the script lists it
        # (/api/alarms): a page without scripts named only this device's
        still_open: list[MissedAlarm] = getattr(request.state, "still_open", [])
        # else the amber alerts paging, on a page whose script shows them once it has asked
        # /api/alarms: one with an amber card (amber_rendered), or rendered with open falls
        # (it asks at once: an event's page has no card, and showed the notice after load):
        # the notice as the script shows it (live-warn), in place from the first paint;
        # hidden without scripts (static/public/noscript.css), which never showed it
        live_warn = False
        if not still_open and not said:
            open_now: list[MissedAlarm] = getattr(request.state, "open_now", [])
            amber = [a for a in open_now if not a.urgent]
            if amber:
                still_open, live_warn = amber, True
        context.setdefault("still_open", still_open)
        context.setdefault("live_warn", live_warn)
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)

    def fragment(self, name: str, **context: Any) -> str:
        """A partial template (a card, a timeline row) as the live feed sends it."""
        return self.templates.env.get_template(name).render(**context)
