"""Simulated backends that behave like the hardware, for tests and the demo."""
