"""``python -m firmware.courier --fd N``: the courier process the monitor starts.

It inherits one end of a Unix stream socket from the monitor (file
descriptor ``N``). It runs at a lower priority than the monitor, and never
with the monitor's real-time scheduling class, so that however busy the
network keeps it, the real-time loop is scheduled first.

It ignores SIGINT and SIGTERM: its life is the link's. A Ctrl-C in a terminal
and ``systemctl stop`` signal the monitor and the courier together; the
courier must outlive the monitor's goodbye to store the last records and
record a clean stop, and it ends when the monitor closes the link (or, if
the monitor is killed, when the kernel closes it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys

from core.logsetup import setup_logging


def _step_aside() -> None:
    """Normal scheduling, niced: the monitor loop must always win the CPU."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    with contextlib.suppress(OSError):
        os.nice(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.courier")
    parser.add_argument("--fd", type=int, required=True, help="the monitor's socket end")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _step_aside()
    setup_logging(verbose=args.verbose)
    from firmware.courier.service import serve

    sock = socket.socket(fileno=args.fd)
    return serve(sock, adopt_log_level=not args.verbose)


if __name__ == "__main__":
    sys.exit(main())
