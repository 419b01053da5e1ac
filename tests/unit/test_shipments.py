"""Shipment facts and the metric definitions, on plain data."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from connector.domain.shipments import (
    ShipmentFact, average, contribution, delivery_days, merge, rate, ship_due, shipped_on_time,
)

NY = ZoneInfo("America/New_York")
PLACED = datetime(2026, 11, 23, 10, 0, tzinfo=NY)  # a Monday morning in New York


def test_a_later_fact_never_erases_a_known_value():
    first = ShipmentFact(source="3pl:shipbob", shipped_at=PLACED + timedelta(hours=3), carrier="UPS",
                         tracking_number="1Z1")
    later = ShipmentFact(source="shopify", delivered_at=PLACED + timedelta(days=2), first_attempt_ok=False)
    merged = merge(first, later)
    assert merged.carrier == "UPS" and merged.tracking_number == "1Z1"
    assert merged.shipped_at == first.shipped_at and merged.delivered_at == later.delivered_at
    assert merged.first_attempt_ok is False and merged.source == "shopify"


def test_a_stated_value_replaces_the_earlier_one():
    merged = merge(ShipmentFact(source="manual", tracking_number="OLD", first_attempt_ok=False),
                   ShipmentFact(source="manual", tracking_number="NEW", first_attempt_ok=True))
    assert (merged.tracking_number, merged.first_attempt_ok) == ("NEW", True)


def test_the_earliest_ship_time_stays_and_problems_stick():
    early, late = PLACED + timedelta(hours=1), PLACED + timedelta(days=1)
    merged = merge(ShipmentFact(source="manual", shipped_at=late, damaged=True),
                   ShipmentFact(source="shopify", shipped_at=early, damaged=False))
    assert merged.shipped_at == early
    assert merged.damaged is True


def test_merge_into_nothing_is_the_fact():
    fact = ShipmentFact(source="woocommerce", shipped_at=PLACED)
    assert merge(None, fact) is fact


def test_facts_refuse_unknown_sources_and_naive_times():
    with pytest.raises(ValueError, match="source"):
        ShipmentFact(source="carrier-pigeon")
    with pytest.raises(ValueError, match="timezone"):
        ShipmentFact(source="manual", shipped_at=datetime(2026, 11, 23, 12, 0))


@pytest.mark.parametrize("placed_local, cutoff, due_day", [
    (time(10, 0), time(14, 0), 23),  # before the cutoff: due that day
    (time(14, 0), time(14, 0), 24),  # at the cutoff: next day
    (time(16, 30), time(14, 0), 24),  # after it: next day
    (time(9, 0), None, 24),  # no cutoff: next day
])
def test_ship_due_follows_the_nodes_cutoff(placed_local, cutoff, due_day):
    placed = datetime.combine(PLACED.date(), placed_local, tzinfo=NY)
    due = ship_due(placed.astimezone(timezone.utc), cutoff, NY)
    assert due.astimezone(NY).date().day == due_day
    assert due.astimezone(NY).time() == time(23, 59, 59, 999999)


def test_on_time_is_judged_in_the_shops_timezone():
    placed = datetime(2026, 11, 23, 10, 0, tzinfo=NY)
    # 23:30 in New York is already the next day in UTC: still on time.
    assert shipped_on_time(placed, datetime(2026, 11, 24, 4, 30, tzinfo=timezone.utc), time(14, 0), NY)
    assert not shipped_on_time(placed, datetime(2026, 11, 24, 5, 1, tzinfo=timezone.utc), time(14, 0), NY)


def test_delivery_days_from_placed_to_delivered():
    assert delivery_days(PLACED, PLACED + timedelta(days=2, hours=12)) == 2.5
    assert delivery_days(PLACED, PLACED - timedelta(hours=1)) == 0.0


def test_rates_and_averages_say_nothing_when_there_is_nothing_to_measure():
    assert rate(0, 0) is None and average(5.0, 0) is None
    assert rate(3, 4) == 0.75 and average(5.0, 2) == 2.5


def test_contribution_of_an_unshipped_part_counts_nothing():
    made = contribution(ShipmentFact(source="manual", carrier="UPS"), placed_at=PLACED, region_id="nyc",
                        cutoff=time(14), tz=NY, lane_cost=6.1)
    assert made.day == "2026-11-23" and made.region_id == "nyc"
    assert all(value == 0 for value in made.counters().values())


def test_contribution_of_a_shipped_delivered_part():
    fact = ShipmentFact(source="shopify", shipped_at=PLACED + timedelta(hours=2),
                        delivered_at=PLACED + timedelta(days=1), first_attempt_ok=True, damaged=True)
    made = contribution(fact, placed_at=PLACED, region_id=None, cutoff=time(14), tz=NY, lane_cost=6.1)
    assert made.region_id == ""
    assert (made.shipped, made.on_time, made.in_full, made.delivered) == (1, 1, 1, 1)
    assert made.delivery_days == 1.0
    assert (made.first_attempt_known, made.first_attempt_ok, made.damaged, made.lost) == (1, 1, 1, 0)
    assert (made.cost, made.cost_known) == (6.1, 1)


def test_late_or_short_parts_are_not_otif_and_unknown_lanes_cost_nothing():
    late = ShipmentFact(source="manual", shipped_at=PLACED + timedelta(days=2))
    short = ShipmentFact(source="shopify", shipped_at=PLACED + timedelta(hours=1), in_full=False)
    made_late = contribution(late, placed_at=PLACED, region_id="nyc", cutoff=time(14), tz=NY, lane_cost=None)
    made_short = contribution(short, placed_at=PLACED, region_id="nyc", cutoff=time(14), tz=NY, lane_cost=None)
    assert (made_late.on_time, made_late.in_full, made_late.cost_known) == (0, 0, 0)
    assert (made_short.on_time, made_short.in_full) == (1, 0)
