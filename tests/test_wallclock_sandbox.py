"""Whether the wall clock is synchronised, read inside the monitor's systemd sandbox.

The unit (systemd/retroguard.service) denies the ``@clock`` system calls with EPERM —
``ProtectClock=yes`` and ``SystemCallFilter=~@privileged`` each do — and the filter cannot
tell ``adjtimex``'s read-only call from a setting one. Read there, the kernel's answer is
refused, and the monitor must still know whether NTP set the clock (systemd-timesyncd's flag
file), or every event of an installed Pi would say "clock not set" (docs/mqtt.md).

The sandbox is real here: a child process loads a seccomp filter, through libseccomp (the
library systemd itself uses), that answers ``adjtimex`` and ``clock_adjtime`` with EPERM.
"""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_systemd_unit import UNIT, directives

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import ctypes, errno, sys
from pathlib import Path

lib = ctypes.CDLL(sys.argv[1], use_errno=True)
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO_EPERM = 0x00050000 | errno.EPERM
ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
for name in (b"adjtimex", b"clock_adjtime"):
    nr = lib.seccomp_syscall_resolve_name(name)
    assert nr >= 0, name
    assert lib.seccomp_rule_add(ctx, SCMP_ACT_ERRNO_EPERM, nr, 0) == 0, name
assert lib.seccomp_load(ctx) == 0

import core.wallclock as wallclock

clock = wallclock.SystemWallClock()
assert clock._adjtimex is not None
refused = clock._adjtimex(ctypes.byref(wallclock._Timex())) < 0
flag = Path(sys.argv[2])
wallclock.TIMESYNC_FLAG = flag
flag.touch()
with_flag = clock.synchronized()
flag.unlink()
without_flag = clock.synchronized()
print(refused, with_flag, without_flag)
"""


def test_the_unit_denies_adjtimex() -> None:
    """What the test below stands in for: the unit's sandbox refuses ``adjtimex``."""
    d = directives(UNIT.read_text())
    protect_clock = d.get("ProtectClock", ["no"])[-1] == "yes"
    denied = any(
        f.startswith("~") and ({"@privileged", "@clock", "adjtimex"} & set(f[1:].split()))
        for f in d["SystemCallFilter"]
    )
    assert protect_clock or denied


def test_synchronised_is_read_from_timesyncd_where_the_sandbox_refuses_adjtimex(
    tmp_path: Path,
) -> None:
    libseccomp = ctypes.util.find_library("seccomp")
    if libseccomp is None:
        pytest.skip("libseccomp not installed (Debian package 'libseccomp2')")
    result = subprocess.run(
        [sys.executable, "-c", CHILD, libseccomp, str(tmp_path / "synchronized")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    refused, with_flag, without_flag = result.stdout.split()
    assert refused == "True"  # the filter is in force: adjtimex answered EPERM
    assert with_flag == "True"  # timesyncd says synchronised: the events say so too
    assert without_flag == "False"  # and not before it does
