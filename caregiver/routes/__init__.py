"""The dashboard's routes, one module per part; :func:`caregiver.web.create_app` assembles them.

* :mod:`.site` — what they share: the service interface they use, templates,
  the session lookup and the CSRF check;
* :mod:`.login` — sign in and out;
* :mod:`.pages` — the fleet, a device's timeline, an event;
* :mod:`.acks` — acknowledging an event or a device's alerts;
* :mod:`.device_commands` — a test alarm from a device's page;
* :mod:`.api` — JSON for the scripts (fleet, an event's plot);
* :mod:`.progress` — a walker's guided sessions against the goal, balance and gait trends;
* :mod:`.reports` — the physio's report (CSV, one-page PDF);
* :mod:`.stream` — the live feed (server-sent events).

Handlers never call the store on the event loop: each store call (and the
Argon2 check of a login) runs in a worker thread (``run_in_threadpool``).
"""
