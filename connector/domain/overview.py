"""The home page's reading of the network: its one-sentence verdict, and today's figures
each with a line saying what it means. Pure: the figures are handed in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from connector.domain.setup import Fix, SetupCheck


@dataclass(frozen=True)
class Verdict:
    fine: bool
    headline: str


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: str  # as shown: "42", "96%", "no shipments yet"
    meaning: str  # one line: what the number says
    needs_you: bool = False  # shown as a warning: something in it waits for the creator
    link: Fix | None = None  # where to see more


def uncovered_problems(checks: Iterable[SetupCheck], attention_kinds: Iterable[str]) -> list[SetupCheck]:
    """The setup checks that need the creator and are not already listed as a "needs you"
    item (a failing sync is both a failing 3PL check and a "sync now" item: counted once)."""
    listed = set(attention_kinds)
    return [check for check in checks if not check.ok and not (check.covered_by & listed)]


def verdict(needs_you: int, routed_today: int | None) -> Verdict:
    """All good (with today's routed orders), or how many things need the creator."""
    if needs_you:
        return Verdict(False, f"{needs_you} thing{'s need' if needs_you != 1 else ' needs'} you")
    if not routed_today:
        return Verdict(True, "All good — no orders routed yet today")
    return Verdict(True, f"All good — {routed_today} order{'s' if routed_today != 1 else ''} routed today")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _rate(rate: float | None) -> str | None:
    return None if rate is None else f"{rate:.0%}"
