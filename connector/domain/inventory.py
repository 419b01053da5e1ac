"""How healthy a node's stock of a SKU is, and how it is projected to run down.

The figures are the planning's (``domain.planning``): the node's forecast weekly demand,
its replenishment lead time, safety stock and reorder point; its *position* is what
``connector reorder`` judges on: sellable units (available minus our reservations) plus
units in open transfers toward it, and for the hub the whole network's (echelon stock).

Risk levels, most urgent first (a lower value sorts first):

* out of stock: nothing sellable here while the node is forecast to see demand;
* stock-out risk: the position lasts fewer days than a refill takes to arrive (days of
  cover below the lead time), so a reorder placed today arrives after the shelf is empty;
* below reorder point: time to reorder (what ``connector reorder`` lists);
* ok;
* no demand: the node is not forecast to sell this SKU (it is not the home of any
  region that buys it), so its stock is not planned.

Cover below the lead time is always below the reorder point too (the reorder point is
the lead-time demand plus safety stock), so the levels never contradict each other.

``connector/store.py`` migration 0017 computes the same levels in SQL (stored generated
columns), so a page can list the shop's risks from an index; a test checks both agree.

Pure: plain numbers in, no clock.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Mapping

from connector.domain.planning import DAYS_PER_WEEK, days_of_cover


class Risk(IntEnum):
    OUT_OF_STOCK = 0
    STOCKOUT_RISK = 1
    BELOW_REORDER_POINT = 2
    OK = 3
    NO_DEMAND = 4

    @property
    def label(self) -> str:
        return RISK_LABELS[self]

    @property
    def explanation(self) -> str:
        return RISK_EXPLANATIONS[self]

    @property
    def at_risk(self) -> bool:
        """Belongs on the stock-out risk list: empty, or emptying before a refill can come."""
        return self <= Risk.STOCKOUT_RISK


RISK_LABELS = {
    Risk.OUT_OF_STOCK: "Out of stock",
    Risk.STOCKOUT_RISK: "Runs out before a refill",
    Risk.BELOW_REORDER_POINT: "Below reorder point",
    Risk.OK: "OK",
    Risk.NO_DEMAND: "No forecast demand",
}
RISK_EXPLANATIONS = {
    Risk.OUT_OF_STOCK: "Nothing left to sell here, and orders are expected.",
    Risk.STOCKOUT_RISK: "The stock lasts fewer days than a refill takes to arrive.",
    Risk.BELOW_REORDER_POINT: "Time to reorder: the stock is at or below its reorder point.",
    Risk.OK: "Enough stock for the forecast demand until a refill could arrive.",
    Risk.NO_DEMAND: "No orders are forecast here, so this stock is not planned.",
}


def classify(*, sellable: int, position: int, weekly_demand: float, lead_time_days: float,
             reorder_point: int) -> Risk:
    """The risk level of one node × SKU (see the module docstring)."""
    if weekly_demand <= 0:
        return Risk.NO_DEMAND
    if sellable <= 0:
        return Risk.OUT_OF_STOCK
    if days_of_cover(position, weekly_demand) < lead_time_days:
        return Risk.STOCKOUT_RISK
    if position <= reorder_point:
        return Risk.BELOW_REORDER_POINT
    return Risk.OK


@dataclass(frozen=True)
class Projection:
    node_id: str
    units: tuple[float, ...]  # projected sellable units at the end of day 0 (today), 1, 2, ...
    runs_out_on: int | None   # the first day that ends with nothing left (None: not within the horizon)


def project_units(node_id: str, *, sellable: int, weekly_demand: float, arrivals: Mapping[int, int],
                  days: int) -> Projection:
    """Sellable units day by day: today's sellable, minus the forecast daily demand each day,
    plus each open transfer's units on its arrival day (``arrivals[day]``; day 0 is today).

    Stock never goes below zero: demand on an empty shelf is lost (or goes elsewhere), it is
    not owed by the next delivery, so a transfer arriving after a stock-out refills from 0.
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    daily = max(0.0, weekly_demand) / DAYS_PER_WEEK
    level = float(max(0, sellable)) + arrivals.get(0, 0)
    units = [level]
    runs_out_on = 0 if level <= 0 and daily > 0 else None
    for day in range(1, days):
        level = max(0.0, level - daily) + arrivals.get(day, 0)
        units.append(round(level, 1))
        if runs_out_on is None and daily > 0 and level <= 0:
            runs_out_on = day
    return Projection(node_id, tuple(units), runs_out_on)


def arrival_day(days_until: float) -> int:
    """The projection day a transfer lands on: an overdue one today, else the day it is due."""
    return max(0, math.ceil(days_until))
