"""Debian's Chromium under Playwright: where it is and how it is started.

The dashboard is driven as a person uses it by the browser tests, the
screenshot script (``scripts/screenshots.py``) and the caregiver benchmark.
Playwright's own browser download does not work on these machines, so all
three launch the distribution's ``/usr/bin/chromium``; this is the one place
its path and flags live. Playwright is imported by the callers (a dev
dependency), not here, so the service never needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's chromium package (``apt-get install chromium``)."""

CHROMIUM_ARGS = (
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
"""Flags for a quiet, offline headless browser: nothing but the page under test
talks to the network."""


def launch_chromium(playwright: Any) -> Any:
    """A headless Debian Chromium from a started ``sync_playwright()`` object."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
    )
