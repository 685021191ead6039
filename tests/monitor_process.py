"""A monitor process for the unclean-stop tests: the loop's link and a real courier child.

``python -m tests.monitor_process <database>`` (from the repository root) does
what ``retroguard run`` does for storage, without hardware: it says hello to a
courier process (pid and start time), hands over a START event, and once the
courier confirms it on disk prints ``ready <courier pid>``. Then it keeps
polling the link like the loop would, until SIGTERM: a clean stop (goodbye,
link closed, courier finished). A test kills it with SIGKILL for an unclean one.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from pathlib import Path

from core.protocol.events import Event, EventType
from core.protocol.payloads import wall_now
from firmware.config import Config, DeviceConfig, StorageConfig
from firmware.link import messages
from firmware.link.endpoint import CourierLink
from firmware.link.supervisor import CourierSupervisor, ProcessCourier

DEVICE = "tm-run"


def main(database: str) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    config = Config(device=DeviceConfig(id=DEVICE), storage=StorageConfig(database=database))
    link = CourierLink(time.monotonic)
    link.hello(messages.encode(messages.Hello(config, os.getpid(), wall_now())))
    supervisor = CourierSupervisor(link, ProcessCourier)
    supervisor.start()
    link.submit(Event.now(EventType.START, DEVICE, time.monotonic(), "STARTING", "started"))
    if not link.flush(60.0):
        print("courier never confirmed", flush=True)
        return 1
    courier = supervisor.current
    assert isinstance(courier, ProcessCourier)
    print(f"ready {courier.pid}", flush=True)
    while not stop.is_set():
        link.poll()
        sock = link._sock
        select.select([sock] if sock is not None else [], [], [], 0.05)
    link.goodbye("stopped by the test")
    link.close()
    supervisor.stop(10.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(str(Path(sys.argv[1]))))
