"""Which optional extra a command needs, said in words when it is not installed.

The monitor's own dependencies (``pyproject.toml``'s ``dependencies``) are all a Pi that runs
only the monitor installs (``scripts/install-pi.sh``: ``.[pi]``); the caregivers' service and
the demo's dashboard need the ``caregiver`` extra, the offline tools ``batch`` or ``plot``. A
command run without its extra would end in a traceback about a module nobody asked for.
"""

from __future__ import annotations

from typing import Final

EXTRA_OF_MODULE: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "starlette",
            "uvicorn",
            "jinja2",
            "multipart",
            "python_multipart",
            "argon2",
            "apprise",
            "psycopg",
            "psycopg_pool",
            "markupsafe",
            "fpdf",
        ),
        "caregiver",
    ),
    "numpy": "batch",
    "matplotlib": "plot",
}
"""Which of ``pyproject.toml``'s extras brings each module a command may need that the
monitor's own dependencies do not (tests/test_dependencies.py keeps the two in step): a Pi
that runs only the monitor installs ``.[pi]``, so ``retroguard caregiver`` or ``demo`` there
would otherwise end in a traceback about a module nobody asked for."""


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """What to tell someone whose command needs a module of an extra that is not installed,
    or None when the missing module is not an extra's (a broken install: let it raise)."""
    top = (exc.name or "").partition(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return (
        f"the '{extra}' extra is needed and not installed here (no module '{top}'): "
        f"pip install 'retroguard[{extra}]' into this environment"
        + (", or on a Pi: sudo ./scripts/install-pi.sh --caregiver" if extra == "caregiver" else "")
    )
