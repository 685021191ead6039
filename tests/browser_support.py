"""The browser the dashboard's tests drive: Debian's headless Chromium under Playwright.

One module-scoped ``browser`` fixture (a plugin of ``tests/conftest.py``) and one skip mark
for every browser test file (``pytestmark = NEEDS_CHROMIUM``), so the launch options and the
safety-net timeout are set in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from caregiver.headless import CHROMIUM, launch_chromium
from tests.caregiver_support import WAIT

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
