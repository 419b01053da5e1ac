"""Shipment facts and the metric definitions, on plain data."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from connector.domain.model import FulfillmentReported, Shipment
from connector.domain.shipments import (
    ShipmentFact, average, contribution, delivery_days, fact_from_3pl, fact_from_fulfillment, merge, rate, ship_due,
    shipped_on_time,
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
    merged = merge(ShipmentFact(source="manual", tracking_number="OLD", carrier="UPS", in_full=False),
                   ShipmentFact(source="manual", tracking_number="NEW", carrier="DHL", in_full=True))
    assert (merged.tracking_number, merged.carrier, merged.in_full) == ("NEW", "DHL", True)


def test_a_failed_first_attempt_stays_failed_when_a_later_one_succeeds():
    merged = merge(ShipmentFact(source="shopify", first_attempt_ok=False),
                   ShipmentFact(source="shopify", first_attempt_ok=True, delivered_at=PLACED + timedelta(days=3)))
    assert merged.first_attempt_ok is False
    assert merge(ShipmentFact(source="shopify"), ShipmentFact(source="shopify", first_attempt_ok=True)).first_attempt_ok


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


# ---------------------------------------------------------------- what each source says


def fulfillment(**changes) -> FulfillmentReported:
    base = dict(fulfillment_id="1", order_id="2", location_id="3", status="success", shipment_status=None,
                created_at=PLACED + timedelta(hours=2), updated_at=PLACED + timedelta(days=2),
                tracking_company="UPS", tracking_numbers=("1Z1", "1Z2"), tracking_urls=("https://u/1",))
    return FulfillmentReported(**(base | changes))


def test_a_successful_fulfillment_shipped_when_it_was_made():
    fact = fact_from_fulfillment(fulfillment(), in_full=True)
    assert fact.shipped_at == PLACED + timedelta(hours=2) and fact.delivered_at is None
    assert (fact.carrier, fact.tracking_number, fact.tracking_url) == ("UPS", "1Z1, 1Z2", "https://u/1")
    assert fact.first_attempt_ok is None and fact.in_full is True


def test_delivered_and_failed_attempts_from_the_carriers_status():
    delivered = fact_from_fulfillment(fulfillment(shipment_status="delivered"), in_full=None)
    assert delivered.delivered_at == PLACED + timedelta(days=2) and delivered.first_attempt_ok is True
    attempted = fact_from_fulfillment(fulfillment(shipment_status="attempted_delivery"), in_full=None)
    assert attempted.delivered_at is None and attempted.first_attempt_ok is False


def test_pending_fulfillments_have_not_left_and_cancelled_ones_say_nothing():
    assert fact_from_fulfillment(fulfillment(status="pending"), in_full=None).shipped_at is None
    assert fact_from_fulfillment(fulfillment(status="cancelled"), in_full=None) is None


def test_a_3pl_shipment_names_returns_losses_and_damage_in_its_status():
    shipped = Shipment("p1", "ref", "Completed", "1Z", "UPS", shipped_at=PLACED)
    fact = fact_from_3pl("shipbob", shipped)
    assert (fact.source, fact.carrier, fact.in_full, fact.returned) == ("3pl:shipbob", "UPS", True, None)
    returned = fact_from_3pl("shipmonk", Shipment("p1", "ref", "ReturnedToSender", shipped_at=PLACED))
    lost = fact_from_3pl("shiphero", Shipment("p1", "ref", "exception", exception=True,
                                              exception_detail="Carrier reports parcel lost"))
    assert returned.returned is True and lost.lost is True and lost.in_full is None
