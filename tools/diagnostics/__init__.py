"""Checks behind ``retroguard doctor``, one small module per area.

Each check returns a :class:`~tools.diagnostics.result.CheckResult` — PASS,
FAIL or SKIP, what was seen, and on failure what to do — and never raises for
a fault it was written to find: the doctor's job is to keep going and name
every problem in one run, so a technician fixes the rig in one visit.

The checks take a :class:`~core.clock.Clock` and the hardware objects they
examine as arguments, so the tests run them on a ``SimClock`` against the
simulated bus, chip and pins with faults injected, and the real command runs
the very same code on the real clock and devices.
"""
