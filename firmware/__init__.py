"""RetroGuard firmware: config, detector, safety controller, real-time loop, events, CLI."""

__version__ = "0.1.0"
