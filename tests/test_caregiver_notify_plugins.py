"""The notifier imports the Apprise plugins of its contacts' services, not all ~190 of them.

Apprise loads every plugin at the first URL it reads (17 MB of the notifier process's
49 MB); :mod:`caregiver.apprise_plugins` hands its plugin manager only those the contacts'
URL schemes need. Each probe runs in a fresh interpreter: Apprise's plugin manager is one
per process, and what another test loaded would hide what the notifier would load.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest

from caregiver.config import CaregiverConfig, Contact, ServerConfig
from caregiver.notify_process import Begin, Stop


def _probe(code: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_only_the_contacts_services_plugins_are_imported_and_they_send() -> None:
    out = _probe(
        """
        from caregiver.apprise_plugins import loaded_plugins
        from caregiver.notify import _apprise_for, warm_up
        from caregiver.storage import Urgency
        warm_up(["xml://127.0.0.1:9/ann", "ntfys://ntfy.sh/ann-7f3c?mode=private", "NTFY://h/a"])
        print(*loaded_plugins())
        made = [_apprise_for(u, Urgency.CRITICAL) for u in ("json://h/x", "ntfy://h/t")]
        print(all(a is not None and len(a) == 1 for a in made), *loaded_plugins())
        """
    )
    # ntfy:// as most write it is sent without Apprise (caregiver/notify_http.py): not warmed
    assert out == ["custom_xml", "ntfy", "True", "custom_json", "custom_xml", "ntfy"]


def test_a_service_not_in_the_list_gets_all_of_apprise_and_its_url_is_accepted() -> None:
    """Telegram is listed, a Discord webhook's own https:// URL is not (Apprise recognises it
    by asking every plugin): the first loads one plugin, the second all of them."""
    out = _probe(
        """
        from caregiver.apprise_plugins import loaded_plugins
        from caregiver.notify import _apprise_for, warm_up
        from caregiver.storage import Urgency
        warm_up(["tgram://123456789:abcdefg_hijklmnop/-1001"])
        print(*loaded_plugins())
        webhook = "https://discord.com/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js"
        made = [_apprise_for(u, Urgency.CRITICAL) for u in (webhook, "json://h/x")]
        print(all(a is not None and len(a) == 1 for a in made), len(loaded_plugins()) > 100)
        """
    )
    assert out == ["telegram", "True", "True"]


def test_no_contact_no_apprise() -> None:
    out = _probe(
        """
        import sys
        from caregiver.notify import warm_up
        warm_up([])
        print("apprise" in sys.modules)
        """
    )
    assert out == ["False"]


def test_each_listed_scheme_is_served_by_the_plugin_apprise_itself_maps_it_to() -> None:
    """The list against the installed Apprise's own map (all plugins loaded its way): an
    Apprise release that moves or renames a plugin fails here, not at a caregiver's phone.
    A scheme the installed Apprise does not know at all (``simplepush://`` before Apprise
    2.x learnt it) is refused with or without the list, so it passes."""
    out = _probe(
        """
        import importlib
        from apprise.manager_plugins import NotificationManager
        from caregiver.apprise_plugins import PLUGINS
        manager = NotificationManager()
        for scheme, (module, name) in sorted(PLUGINS.items()):
            ours = getattr(importlib.import_module("apprise.plugins." + module), name)
            known = scheme in manager
            print(f"{scheme}:{not known or manager[scheme] is ours}")
        """
    )
    assert out and all(line.endswith(":True") for line in out), out


FALLBACKS = {
    "a listed plugin that fails to import": (
        "import caregiver.apprise_plugins as p\n"
        "p.PLUGINS['json'] = ('no_such_plugin_module', 'NotifyNothing')"
    ),
    "a listed plugin that does not serve its scheme in this Apprise": (
        "import caregiver.apprise_plugins as p\np.PLUGINS['json'] = ('ntfy', 'NotifyNtfy')"
    ),
    "no writable temporary directory": "import tempfile\ntempfile.tempdir = '/nonexistent/ro'",
}


@pytest.mark.parametrize("why", FALLBACKS)
def test_when_the_short_path_fails_apprise_loads_everything_and_the_contact_is_paged(
    why: str,
) -> None:
    """Loading plugins one by one is a memory saving, never a reason not to page: each way it
    can go wrong ends in Apprise's own load-everything, and the json:// contact is usable."""
    out = _probe(
        FALLBACKS[why]
        + """
from caregiver.apprise_plugins import loaded_plugins
from caregiver.notify import _apprise_for, warm_up
from caregiver.storage import Urgency
warm_up(["json://127.0.0.1:9/ann"])
made = _apprise_for("json://127.0.0.1:9/ann", Urgency.CRITICAL)
print(made is not None and len(made) == 1, len(loaded_plugins()) > 100)
"""
    )
    assert out == ["True", "True"]


def test_the_notifier_process_runs_on_its_contacts_plugin_and_nothing_of_the_web_side(
    tmp_path: Path,
) -> None:
    """The child's own code (:func:`caregiver.notify_process._child`) from its first message
    to its last, in a fresh interpreter: for a json:// contact no Apprise at all (sent with
    the standard library, caregiver/notify_http.py), none of the service's web framework,
    templates, MQTT client, password hashing or PDF reports, and on SQLite not the store
    and protocol modules either (caregiver/outbox.py)."""
    config = CaregiverConfig(
        server=ServerConfig(database=str(tmp_path / "caregiver.db")),
        contacts=(Contact("Ann", ("json://127.0.0.1:9/ann",)),),
    )
    messages = b"".join(
        msgspec.json.encode(m) + b"\n" for m in (Begin(config, "instance-1"), Stop())
    )
    probe = textwrap.dedent(
        """
        import os, sys
        from caregiver.apprise_plugins import loaded_plugins
        from caregiver.notify_process import _child
        assert _child(open(os.devnull, "wb")) == 0
        web_side = {"starlette", "uvicorn", "jinja2", "paho", "argon2", "fpdf", "psycopg"}
        web_side |= {"apprise", "requests", "tomllib", "zoneinfo", "subprocess"}
        print(*loaded_plugins(), *sorted(web_side & {m.split(".")[0] for m in sys.modules}))
        print(*[m for m in ("caregiver.storage", "core.protocol.commands") if m in sys.modules])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], input=messages, capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.split() == []
