"""Declared state machines: a frozen table of allowed transitions, checked and drawn.

A table lists, for each state, the states it may go to and the triggers that
may take it there; ``None`` as a source is the initial pseudo-state (before
the machine started). The machines that use it (the safety controller, the
session runner) ask :meth:`TransitionTable.allows` before every change of
state and decide themselves what a refusal means; the table never raises and
holds no state, so it is as cheap on the real-time thread as a set lookup.

:meth:`TransitionTable.mermaid` draws the table as a Mermaid
``stateDiagram-v2`` block; the docs and module docstrings carry that block
and a test compares them, so the picture cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)
T = TypeVar("T", bound=StrEnum)


class TransitionTable(Generic[S, T]):
    """``{source: {target: trigger or (trigger, ...)}}``, frozen at construction."""

    def __init__(self, table: Mapping[S | None, Mapping[S, T | tuple[T, ...]]]) -> None:
        edges: list[tuple[S | None, S, T]] = []
        for source, targets in table.items():
            for target, triggers in targets.items():
                for trigger in (triggers,) if isinstance(triggers, StrEnum) else triggers:
                    edges.append((source, target, trigger))
        if len(set(edges)) != len(edges):
            raise ValueError("a transition is declared twice")
        self.edges: tuple[tuple[S | None, S, T], ...] = tuple(edges)
        """Every allowed ``(source, target, trigger)``, in declaration order."""
        self._allowed = frozenset(edges)

    def allows(self, source: S | None, target: S, trigger: T) -> bool:
        """True if ``trigger`` may take the machine from ``source`` to ``target``."""
        return (source, target, trigger) in self._allowed

    def mermaid(self) -> str:
        """The table as a Mermaid ``stateDiagram-v2`` block (without the code fence)."""
        lines = ["stateDiagram-v2"]
        for source, target, trigger in self.edges:
            start = "[*]" if source is None else source.value
            lines.append(f"    {start} --> {target.value} : {trigger.value}")
        return "\n".join(lines)
