"""The caregiver service for ``retroguard demo``: in-process, on a free loopback port."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from pathlib import Path

from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig
from caregiver.service import CaregiverService


@dataclass
class DemoCaregiver:
    service: CaregiverService
    url: str
    username: str
    password: str

    def stop(self) -> None:
        self.service.stop()


def start_demo_caregiver(broker_host: str, broker_port: int, workdir: Path) -> DemoCaregiver:
    """Start the dashboard (uvicorn in a thread) against the demo's broker, with a demo login.

    No contacts are configured, so alerts show on the dashboard and nobody is paged.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=str(workdir / "caregiver.db")),
        mqtt=CaregiverMqttConfig(
            host=broker_host,
            port=broker_port,
            client_id="retroguard-caregiver-demo-" + secrets.token_hex(4),
            session_expiry_s=0,
        ),
    )
    service = CaregiverService(config)
    username, password = "demo", "demo-" + secrets.token_hex(6)
    service.accounts.add_user(username, password)
    service.start(port=0)
    server = dataclasses.replace(config.server, public_url=service.url)
    service.config = dataclasses.replace(config, server=server)
    service.alerting.config = service.config
    return DemoCaregiver(service, service.url, username, password)
