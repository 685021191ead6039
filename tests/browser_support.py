"""The browser the dashboard's tests drive: Debian's headless Chromium under Playwright.

One module-scoped ``browser`` fixture (a plugin of ``tests/conftest.py``) and one skip mark
for every browser test file (``pytestmark = NEEDS_CHROMIUM``), so the launch options and the
safety-net timeout are set in one place; the marks that say at which widths and on which
database engines a page test runs (:func:`widths_on_each_engine`, :data:`ON_SQLITE`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from caregiver.headless import CHROMIUM, launch_chromium
from caregiver.routes.site import COOKIE
from tests.caregiver_support import PASSWORD, WAIT, Http

if TYPE_CHECKING:
    from caregiver.service import CaregiverService

NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian chromium not installed (apt-get install -y chromium); "
    "Playwright's own browser download cannot work here",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = launch_chromium(pw)
        # Playwright's 5 s default is too tight for a loaded 2-core CI machine; WAIT is a
        # safety net against hangs, not a timing assertion.
        sync_api.expect.set_options(timeout=int(WAIT * 1000))
        try:
            yield b
        finally:
            b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """Close the pages a test left open in the module's browser before its fixtures are torn
    down. A page left open kept its live feed connected while the service stopped (uvicorn
    waited up to its graceful 2 s for it: teardowns of 2-4 s) and then kept running, its
    script retrying a service that was gone, for every later test of the module."""
    browser = getattr(item, "funcargs", {}).get("browser")
    if browser is not None:
        for context in browser.contexts:
            context.close()
    yield


def widths_on_each_engine(*widths: int | str) -> pytest.MarkDecorator:
    """``width`` and ``caregiver_db`` for a page test: each of ``widths`` once, the first on
    SQLite, the next on PostgreSQL, and so on, so every width is looked at and each engine
    renders the page. The crossed product ran each test at each width on both engines (4 runs
    for 2 widths) though neither depends on the other: the page's HTML and script are the same
    whatever the engine, and what an engine changes (what a page's reads return) every storage
    test checks on both (``caregiver_db``). Widths listed in another order pair the other way
    round, so across a file each width is seen on each engine. Without a PostgreSQL server
    the PostgreSQL runs are skipped, with the fixture's reason."""
    engines = ("sqlite", "postgresql")
    pairs = [(width, engines[n % 2]) for n, width in enumerate(widths)]
    return pytest.mark.parametrize(
        ("width", "caregiver_db"),
        pairs,
        indirect=["caregiver_db"],
        ids=[f"{engine}-{width}" for width, engine in pairs],
    )


ON_SQLITE = pytest.mark.parametrize("caregiver_db", ["sqlite"], indirect=True)
"""``caregiver_db`` on SQLite only, for a test of the page's own behaviour (its script, its
live feed, its alarm): the feed is the service's, in process, whatever the engine (a
PostgreSQL store listens only for other instances, :meth:`caregiver.storage.Store.listen`),
the reads behind it are checked on both engines by the storage and feed tests
(``tests/test_feed_store_reads.py``, every ``caregiver_db`` test), and the pages those tests
open are rendered on PostgreSQL by the page tests (:func:`widths_on_each_engine`)."""


def _shots(tmp_path: Path) -> Path:
    chosen = os.environ.get("RETROGUARD_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(tmp_path: Path, service: CaregiverService, name: str) -> str:
    """Where screenshot ``name`` ("live-360.png") goes, named for the test's database engine
    ("live-360-sqlite.png"): the SQLite and the PostgreSQL run of a test write one folder
    ($RETROGUARD_SCREENSHOTS, or /tmp/care25 before), and the one run last overwrote the
    other's picture, under -n 2 while the other was being looked at."""
    stem, dot, ext = name.rpartition(".")
    return str(_shots(tmp_path) / f"{stem}-{service.store.engine}{dot}{ext}")


def sign_in(
    context: Any, service: CaregiverService, user: str = "ann", password: str = PASSWORD
) -> None:
    """Give the browser ``context`` a session of its own as ``user``: the service's login
    form posted over HTTP (:meth:`tests.caregiver_support.Http.login`: the password checked,
    the session made and its cookie set as for a person), the cookie handed to the browser
    as the service sets it (HttpOnly, SameSite=Lax). Typing into the login page (its load,
    the submit, the redirect) took about a third of a page test's time, 3-4 s a test on a
    loaded machine, for a form the login tests check: in the browser
    ``tests/test_caregiver_browser_edges.py`` (a mistyped password, the throttle), the
    login page's assets and submit at both widths and with the broker gone
    (``tests/test_caregiver_browser.py``), the fleet's address sending a visitor to it
    (:func:`tests.test_caregiver_browser._login`'s ``through_the_form``), and over HTTP
    ``tests/test_caregiver_accounts.py``."""
    client = Http(service.port)
    status = client.login(user, password)
    assert status == 303 and COOKIE in client.cookies, f"{user} was not logged in ({status})"
    cookie = {"name": COOKIE, "value": client.cookies[COOKIE], "url": service.url}
    context.add_cookies([{**cookie, "httpOnly": True, "sameSite": "Lax"}])


def logged_in(
    browser: Any,
    service: CaregiverService,
    width: int,
    user: str = "ann",
    password: str = PASSWORD,
    at: float | None = None,
    **options: Any,
) -> Any:
    """A page of a new browser context ``width`` px wide (``options``: the context's, e.g.
    ``has_touch``, ``java_script_enabled``), logged in as ``user`` (:func:`sign_in`), on the
    fleet page; ``at``: the browser's clock set to it (a service's stopped one:
    :func:`tests.caregiver_support.saturday_noon`) before the first page."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": width, "height": 800}, **options)
    context.set_default_timeout(WAIT * 1000)
    if at is not None:
        context.clock.set_system_time(at)
    sign_in(context, service, user, password)
    page = context.new_page()
    page.goto(service.url + "/")
    expect(page.locator("h1")).to_have_text("Treadmills")
    return page
