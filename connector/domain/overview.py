"""The home page's reading of the network: its one-sentence verdict, and today's figures
each with a line saying what it means. Pure: the figures are handed in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from connector.domain.attention import plural
from connector.domain.metrics import shown
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


def figures(*, routed_today: int, open_exceptions: int, stockout_risk: int, on_time_rate_7d: float | None,
            split_rate_7d: float | None, shipped_7d: int) -> tuple[Figure, ...]:
    """Today's figures, each with what it means. A rate over no shipments is not 0%: it
    says there were none yet (as the metrics do)."""
    return (
        Figure("routed", "Orders routed today", str(routed_today),
               "Orders placed today (your shop's time) that were sent to one of your locations."),
        Figure("exceptions", "Open exceptions", str(open_exceptions),
               f"{plural(open_exceptions, 'order line')} no location could take on its own: "
               f"{'each waits' if open_exceptions != 1 else 'it waits'} for you to choose."
               if open_exceptions else "Every open order line has a location.",
               needs_you=open_exceptions > 0, link=Fix("Decide them", "actions.index") if open_exceptions else None),
        Figure("stockout", "SKUs at stock-out risk", str(stockout_risk),
               f"{plural(stockout_risk, 'SKU')} out of stock, or running out before a refill can arrive, "
               "where orders are taken." if stockout_risk else "No SKU runs out before a refill can arrive.",
               needs_you=stockout_risk > 0, link=Fix("See the inventory", "inventory.index")),
        Figure("on_time", "On-time ship rate, 7 days", shown("on_time_rate", on_time_rate_7d),
               f"Of the {plural(shipped_7d, 'parcel')} from orders placed in the last 7 days that have left, the "
               "share that left by their location's cutoff promise." if on_time_rate_7d is not None else
               "No parcel from an order of the last 7 days has left yet."),
        Figure("split", "Split rate, 7 days", shown("split_rate", split_rate_7d),
               "Of the last 7 days' orders that shipped, the share that went out from more than one location."
               if split_rate_7d is not None else "No order of the last 7 days has shipped yet."),
    )
