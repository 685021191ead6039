"""RetroGuard caregiver service: MQTT ingest, web dashboard, notifications and escalation."""
