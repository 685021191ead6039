"""Keep the service's resident memory near what it uses (glibc's allocator settings).

The service runs many threads (MQTT, notifier, escalation ticker, the web
server's worker pool, the live feed). glibc gives threads that allocate at the
same time their own arenas, up to eight per core, and a freed block stays in
its arena; Argon2's buffer at a login (7 MiB) raised the allocator's dynamic
mmap threshold so later large blocks were carved from the heap and kept. On the
caregiver benchmark that was 20 MB of resident memory the service no longer
used (83 MB at the end of the run, 63 MB with these settings). Two arenas, and
a fixed 128 KiB mmap threshold (large blocks go back to the system when freed),
are the settings ``MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072`` would make;
:func:`compact_malloc` applies them from inside, before the threads start, so
the service behaves the same however it is launched. Elsewhere than glibc it
does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import platform

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024


def compact_malloc() -> bool:
    """Two malloc arenas and a fixed mmap threshold; False where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        arenas: int = libc.mallopt(_M_ARENA_MAX, ARENAS)
        threshold: int = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        return arenas == 1 and threshold == 1
    except (OSError, AttributeError):
        log.debug("mallopt is not available here", exc_info=True)
        return False
