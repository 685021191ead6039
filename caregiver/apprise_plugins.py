"""Load only the Apprise plugins that serve the contacts' URL schemes.

Apprise learns which plugin serves a URL scheme by importing all of its plugins
(~190 modules, ~450 with what they import) at the first URL it reads: 17 MB of the
notifier process's 49 MB, for the one or two services a household's contacts use
(whose plugins, with ``requests``, are ~6 MB).
It cannot look a scheme up without that, but its plugin manager takes plugins
added one by one (:meth:`~apprise.manager.PluginManager.add`) and, once a plugin
directory counts as loaded, no longer imports the rest. :func:`load_plugins` gives
it an empty directory as its plugin directory, then adds the plugin of each
scheme in :data:`PLUGINS`: the notifier imports those and their libraries only
(json:// and ntfy://: 38 MB instead of 49).

:data:`PLUGINS` names the services docs/caregiver.md describes, and
``tests/test_caregiver_notify_plugins.py`` checks each entry against the plugin
Apprise itself maps the scheme to. Any other URL (another scheme, or a service's
own https:// URL that Apprise recognises by trying every plugin) puts Apprise
back to loading everything, as it does by default: the contact is paged either
way, at the cost of the memory.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where it is used: only the notifier's process loads Apprise
    from apprise.manager_plugins import NotificationManager

log = logging.getLogger(__name__)

PLUGINS: dict[str, tuple[str, str]] = {
    "json": ("custom_json", "NotifyJSON"),
    "jsons": ("custom_json", "NotifyJSON"),
    "xml": ("custom_xml", "NotifyXML"),
    "xmls": ("custom_xml", "NotifyXML"),
    "form": ("custom_form", "NotifyForm"),
    "forms": ("custom_form", "NotifyForm"),
    "ntfy": ("ntfy", "NotifyNtfy"),
    "ntfys": ("ntfy", "NotifyNtfy"),
    "pover": ("pushover", "NotifyPushover"),
    "gotify": ("gotify", "NotifyGotify"),
    "gotifys": ("gotify", "NotifyGotify"),
    "join": ("join", "NotifyJoin"),
    "prowl": ("prowl", "NotifyProwl"),
    "opsgenie": ("opsgenie", "NotifyOpsgenie"),
    "psafer": ("pushsafer", "NotifyPushSafer"),
    "psafers": ("pushsafer", "NotifyPushSafer"),
    "spush": ("simplepush", "NotifySimplePush"),
    "simplepush": ("simplepush", "NotifySimplePush"),
    "tgram": ("telegram", "NotifyTelegram"),
    "signal": ("signal_api", "NotifySignalAPI"),
    "signals": ("signal_api", "NotifySignalAPI"),
    "matrix": ("matrix", "NotifyMatrix"),
    "matrixs": ("matrix", "NotifyMatrix"),
    "discord": ("discord", "NotifyDiscord"),
    "slack": ("slack", "NotifySlack"),
    "mailto": ("email", "NotifyEmail"),
    "mailtos": ("email", "NotifyEmail"),
}
"""URL scheme -> (module under ``apprise.plugins``, the plugin class in it)."""

_lock = threading.Lock()


def scheme_of(url: str) -> str:
    return url.partition("://")[0].lower()


def load_plugins(urls: Iterable[str]) -> None:
    """Make Apprise able to send to every URL in ``urls``, importing as few plugins as it can.

    Call it before Apprise reads a URL (Apprise would load everything first); later calls add
    what new URLs need. It never raises: anything that goes wrong on the short path (a plugin
    that fails to import, an Apprise release whose manager no longer registers a listed
    scheme, no writable temporary directory) is logged and Apprise loads all of its plugins,
    its own behaviour — more memory, never a contact left unpaged."""
    from apprise.manager_plugins import NotificationManager

    # Apprise's one plugin manager (a singleton); its methods have no type annotations
    manager = NotificationManager()  # type: ignore[no-untyped-call]
    with _lock:
        try:
            _load_schemes(manager, {scheme_of(url) for url in urls})
        except Exception:
            log.exception("Apprise's plugins could not be loaded one by one; loading them all")
            _load_all(manager)


def _load_schemes(manager: NotificationManager, schemes: set[str]) -> None:
    if not manager:  # nothing loaded yet: from now on, only what is added
        import tempfile  # here: the notifier of ntfy and json contacts never needs it

        with tempfile.TemporaryDirectory() as nothing:
            manager.load_modules(path=nothing, name="retroguard.no_plugins")  # type: ignore[no-untyped-call]
    for scheme in sorted(schemes):
        if scheme in manager:
            continue
        if scheme not in PLUGINS:
            log.info(
                "Apprise loads all of its plugins: %s:// is not among the services "
                "caregiver/apprise_plugins.py names",
                scheme,
            )
            _load_all(manager)
            return
        module, name = PLUGINS[scheme]
        plugin = getattr(importlib.import_module(f"apprise.plugins.{module}"), name)
        manager.add(plugin)  # type: ignore[no-untyped-call]
        if scheme not in manager:  # this Apprise serves the scheme with another plugin, or not
            log.info(
                "Apprise's %s plugin does not serve %s:// here; loading them all", name, scheme
            )
            _load_all(manager)
            return


def _load_all(manager: NotificationManager) -> None:
    """Apprise's own behaviour: every plugin."""
    manager.unload_modules()  # type: ignore[no-untyped-call]
    manager.load_modules()  # type: ignore[no-untyped-call]


def loaded_plugins() -> tuple[str, ...]:
    """The Apprise plugin modules imported in this process (what it pays memory for)."""
    prefix = "apprise.plugins."
    names = (name.removeprefix(prefix) for name in sys.modules if name.startswith(prefix))
    return tuple(sorted(name for name in names if "." not in name and name != "base"))
