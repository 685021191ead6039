"""The wire contract between a RetroGuard monitor and everything that listens to it.

* :mod:`.ids` — the device-id, event-id and request-id rules;
* :mod:`.topics` — topic building and parsing (:func:`.topics.parse_topic`);
* :mod:`.events` — event types, severities and the event record;
* :mod:`.messages` — the typed payload of every topic;
* :mod:`.commands` — command names, fields, parsing and encoding;
* :mod:`.payloads` — encoding and decoding payloads;
* :mod:`.words` — what a person reads of each event type and alert kind (the dashboard,
  the notifications, Home Assistant and ``retroguard watch`` say them alike).

Nothing else in RetroGuard splits a topic, re-lists an event type or parses
a payload by hand. ``docs/mqtt.md`` and the JSON Schemas in
``docs/mqtt/schemas`` describe the same contract for outsiders; a test keeps
them in agreement with these types.
"""
