"""Firmware-level exceptions with messages meant for the person at the terminal."""

from __future__ import annotations


class ConfigError(Exception):
    """One or more problems in a config file, each as ``file: key: what is wrong``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
