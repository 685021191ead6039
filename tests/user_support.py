"""Running a piece of a test as another user: ``nobody`` standing in for the service's user,
or for a technician who is neither root nor it.

The files these tests look at are the installed ones' stand-ins: a state directory the
service's user owns (0750), a config root's and its group's (0640). Whether that user can
write its store, or what another user is told, is only seen by being that user: a child
process that drops to ``nobody`` and runs on the modules already imported (``nobody`` may not
read this interpreter's files, under /root).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

NOBODY = 65534
"""``nobody``'s uid and ``nogroup``'s gid on Debian."""


def as_nobody(work: Callable[[], int], *, drop: bool = True) -> tuple[int, str]:
    """``work()``'s exit status and what it wrote to standard error, in a forked child that
    became ``nobody`` (``drop`` true; as root only: a user who is not root cannot). An
    exception in the child is its standard error's last line, status 99, not lost with it."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        status = 99
        try:
            os.close(read)
            if drop:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            sys.stderr = os.fdopen(write, "w")
            status = work()
        except BaseException as exc:
            print(f"in the child, as nobody: {exc!r}", file=sys.stderr)
        finally:
            sys.stderr.flush()
            os._exit(status)
    os.close(write)
    with os.fdopen(read) as child_err:
        err = child_err.read()
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status), err
