"""Balance and gait measured from the belt IMU: what the walking does for the walker.

Pure Python, streaming and bounded, so it runs on the Pi beside the monitor
(on a measurement thread, never on the real-time loop: :mod:`.worker`).
See ``docs/gait.md`` for what each figure is, what it is not, and how much
it changes between two trials of the same person (its noise).

Modules: :mod:`.stream` (sensor rate to ~100 Hz analysis samples),
:mod:`.filters` (biquads), :mod:`.frame` (vertical, AP and ML; learning them
for an unknown mounting), :mod:`.balance` (the standing check: ISway
measures), :mod:`.walking` (steps, step time, regularity, harmonic ratio,
trunk sway), :mod:`.harmonics` (stride DFT), :mod:`.figures` (to the
session record's types), :mod:`.worker` (the measurement thread).
"""
