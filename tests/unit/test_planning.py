"""Per-node planning: demand attribution, safety stock, reorder points, suggestions.

Numbers are small enough to check by hand; z(95 %) = 1.6449.
"""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from connector.domain.forecast import Forecast, LaunchUplift
from connector.domain.model import Lane, Mode, ModePolicy, Network, Node, NodeStatus, Region, RoutingPolicy, Rule
from connector.domain.planning import (
    NodeTarget,
    PlanningPolicy,
    ReorderSuggestion,
    days_of_cover,
    demand_attribution,
    node_targets,
    reorder_suggestions,
)

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
WEEK = timedelta(weeks=1)
Z95 = 1.6448536269514722
REGIONS = {
    "east": Region("east", "East", promise_days=2),
    "west": Region("west", "West", promise_days=3),
}
NO_SAFETY = PlanningPolicy(service_level=None)


def node(id, lanes, **kw) -> Node:
    return Node(id=id, name=id, kind="3pl", role="evergreen",
                lanes={r: Lane(r, days, cost) for r, (days, cost) in lanes.items()}, **kw)


def network(*nodes, regions=REGIONS) -> Network:
    return Network(
        shop_id="s", timezone="America/New_York", regions=regions, nodes={n.id: n for n in nodes}, sku_rules=(),
        routing=RoutingPolicy(Mode.NORMAL, {m: ModePolicy((Rule.CHEAPEST,)) for m in Mode}),
    )


def fc(sku, region, weekly, sigma=0.0) -> Forecast:
    return Forecast(sku, region, weekly, sigma, "holt", 26)


def forecasts(*items) -> dict[tuple[str, str], Forecast]:
    return {(f.sku, f.region): f for f in items}


NE = node("ne", {"east": (1, 5.0)})
WEST = node("w", {"west": (2, 5.0)})
HUB = node("H", {"east": (3, 9.0), "west": (4, 9.0)})  # too slow for either promise
TWO_REGIONS = network(NE, WEST, HUB)
SALES = forecasts(fc("S", "east", 50, 3), fc("S", "west", 20, 4))


# ---------------------------------------------------------------- targets


def test_domain_example_fifty_a_week_two_weeks_lead_time():
    targets = node_targets(network(NE), forecasts(fc("S", "east", 50, 10)), PlanningPolicy(), NOW)
    # safety = ceil(1.6449 x 10 x sqrt(2) = 23.26) = 24
    assert targets == {("S", "ne"): NodeTarget("S", "ne", 50, 2.0, safety_stock=24, reorder_point=124,
                                                target_level=174)}  # order-up-to: 3 weeks x 50 + 24


def test_without_a_review_period_the_target_is_the_reorder_point():
    target = node_targets(network(NE), forecasts(fc("S", "east", 50, 10)), PlanningPolicy(review_days=0), NOW)
    assert (target["S", "ne"].reorder_point, target["S", "ne"].target_level) == (124, 124)


def test_without_safety_the_reorder_point_is_lead_time_demand():
    target = node_targets(network(NE), forecasts(fc("S", "east", 50, 10)), NO_SAFETY, NOW)["S", "ne"]
    assert (target.safety_stock, target.reorder_point, target.target_level) == (0, 100, 150)


@pytest.mark.parametrize("service_level, safety_days, safety", [
    (0.95, None, 24),  # 1.6449 x 10 x sqrt(2) = 23.26
    (None, 7.0, 50),  # a week of 50
    (0.95, 7.0, 50),  # days of cover is larger
    (0.95, 2.0, 24),  # 2 x 50/7 = 14.3: service level is larger
    (None, 2.0, 15),
    (0.99, None, 33),  # 2.3263 x 10 x sqrt(2) = 32.9
])
def test_safety_stock_from_service_level_or_days_the_larger_wins(service_level, safety_days, safety):
    policy = PlanningPolicy(service_level=service_level, safety_days=safety_days)
    target = node_targets(network(NE), forecasts(fc("S", "east", 50, 10)), policy, NOW)["S", "ne"]
    assert (target.safety_stock, target.reorder_point) == (safety, 100 + safety)


def test_regional_sigmas_combine_as_root_sum_of_squares():
    both = node("n", {"east": (1, 5.0), "west": (1, 5.0)})
    policy = PlanningPolicy(lead_time_days=7)
    target = node_targets(network(both), SALES, policy, NOW)["S", "n"]
    assert target.weekly_demand == 70
    assert target.safety_stock == math.ceil(Z95 * 5)  # sqrt(3^2 + 4^2) = 5: 8.2 -> 9, not 1.6449 x 7 -> 12
    assert target.safety_stock == 9


def test_float_noise_does_not_add_a_unit():
    # A unit a day for 29 days: 7 x 29/7 is 29.000000000000004 in floating point.
    policy = replace(NO_SAFETY, lead_time_days=29)
    assert node_targets(network(NE), forecasts(fc("S", "east", 7)), policy, NOW)["S", "ne"].reorder_point == 29


def test_per_node_lead_time_override():
    policy = replace(NO_SAFETY, node_lead_time_days={"w": 7})
    targets = node_targets(TWO_REGIONS, SALES, policy, NOW)
    assert (targets["S", "w"].lead_time_weeks, targets["S", "w"].reorder_point) == (1.0, 20)
    assert (targets["S", "ne"].lead_time_weeks, targets["S", "ne"].reorder_point) == (2.0, 100)


def test_hub_plans_for_all_demand_over_the_supplier_lead_time():
    policy = PlanningPolicy(hub="H", node_lead_time_days={"H": 28})
    targets = node_targets(TWO_REGIONS, SALES, policy, NOW)
    assert set(targets) == {("S", "H"), ("S", "ne"), ("S", "w")}
    hub = targets["S", "H"]
    assert (hub.weekly_demand, hub.lead_time_weeks) == (70, 4.0)
    assert hub.safety_stock == 17  # 1.6449 x sqrt(3^2 + 4^2) x sqrt(4) = 16.4
    assert (hub.reorder_point, hub.target_level) == (280 + 17, 350 + 17)  # 4 and 5 weeks x 70


def test_nodes_home_to_no_region_get_no_target():
    idle = node("idle", {"east": (1, 9.0)})  # dearer than ne
    assert set(node_targets(network(NE, idle), SALES, PlanningPolicy(), NOW)) == {("S", "ne")}


def test_an_unknown_hub_is_refused():
    with pytest.raises(ValueError):
        node_targets(TWO_REGIONS, SALES, PlanningPolicy(hub="nope"), NOW)


@pytest.mark.parametrize("launch_weeks, start_offset, reorder_point, target_level", [
    ((1, 10), 0, 150, 250),  # lead weeks: 50 + 2 x 50; the review week is doubled too
    ((2, 10), 0, 100, 200),  # the launch starts after the lead time: only the review week is doubled
    ((-5, 0), 0, 100, 150),  # the launch is over
    ((1, 10), 10, 100, 150),  # a horizon that starts after the launch
])
def test_launch_uplift_when_the_window_overlaps_a_launch(launch_weeks, start_offset, reorder_point, target_level):
    launch = LaunchUplift("S", NOW + launch_weeks[0] * WEEK, NOW + launch_weeks[1] * WEEK, 2.0)
    target = node_targets(network(NE), forecasts(fc("S", "east", 50)), NO_SAFETY, NOW, launches=[launch],
                          horizon_start=NOW + start_offset * WEEK)["S", "ne"]
    assert (target.weekly_demand, target.reorder_point, target.target_level) == (50, reorder_point, target_level)


# ---------------------------------------------------------------- attribution


@pytest.mark.parametrize("a, b, expected", [
    (((1, 5.0), {}), ((1, 4.0), {}), "b"),  # cheaper
    (((2, 5.0), {}), ((1, 5.0), {}), "b"),  # same cost: faster
    (((1, 5.0), {"priority": 50}), ((1, 5.0), {"priority": 10}), "b"),  # same cost and speed: priority
    (((1, 5.0), {"priority": 50}), ((2, 5.0), {"priority": 10}), "a"),  # speed before priority
    (((1, 5.0), {}), ((1, 5.0), {}), "a"),  # equal: id
    (((3, 1.0), {}), ((2, 9.0), {}), "b"),  # a is cheaper but misses the 2-day promise
])
def test_attribution_tie_breaks(a, b, expected):
    (a_lane, a_kw), (b_lane, b_kw) = a, b
    net = network(node("a", {"east": a_lane}, **a_kw), node("b", {"east": b_lane}, **b_kw))
    assert demand_attribution(net, NOW, None) == {"east": expected}


def test_hub_is_excluded_while_another_node_meets_the_promise():
    hub = node("H", {"east": (1, 1.0), "west": (1, 1.0)})  # cheapest and fastest everywhere
    assert demand_attribution(network(hub, NE), NOW, "H") == {"east": "ne", "west": "H"}  # west: only the hub


def test_a_region_nobody_serves_within_promise_goes_to_the_hub_if_it_has_a_lane():
    slow = node("slow", {"west": (9, 1.0)})
    assert demand_attribution(network(NE, slow, HUB), NOW, "H") == {"east": "ne", "west": "H"}
    no_lane_hub = node("H", {"east": (1, 1.0)})
    assert demand_attribution(network(NE, slow, no_lane_hub), NOW, "H") == {"east": "ne"}
    assert demand_attribution(network(NE, slow), NOW, None) == {"east": "ne"}


@pytest.mark.parametrize("window, status, home", [
    ((NOW + timedelta(days=1), None), NodeStatus.ACTIVE, "ne"),  # the pop-up has not opened yet
    ((None, NOW), NodeStatus.ACTIVE, "ne"),  # closed at this instant
    ((NOW - timedelta(days=1), NOW + timedelta(days=1)), NodeStatus.ACTIVE, "popup"),
    ((None, None), NodeStatus.DEGRADED, "popup"),  # degraded still ships
    ((None, None), NodeStatus.OFFLINE, "ne"),
    ((None, None), NodeStatus.PAUSED, "ne"),
])
def test_only_usable_nodes_in_their_window_are_home(window, status, home):
    popup = node("popup", {"east": (1, 1.0)}, active_from=window[0], active_until=window[1], status=status)
    assert demand_attribution(network(NE, popup), NOW, None)["east"] == home


# ---------------------------------------------------------------- suggestions


def hub_targets():
    return node_targets(TWO_REGIONS, SALES, replace(NO_SAFETY, hub="H", node_lead_time_days={"H": 28}), NOW)


def test_hub_does_not_reorder_while_the_nodes_hold_the_stock():
    # H alone (50) is far below its reorder point 280; with the nodes' stock the network holds 350.
    policy = PlanningPolicy(hub="H")
    assert reorder_suggestions(hub_targets(), {("S", "H"): 50, ("S", "ne"): 200, ("S", "w"): 100}, policy) == []


def test_hub_reorders_on_echelon_position_from_the_supplier_and_nodes_from_the_hub():
    positions = {("S", "H"): 50, ("S", "ne"): 100, ("S", "w"): 40}  # echelon 190 <= 280; nodes at their points
    suggestions = reorder_suggestions(hub_targets(), positions, PlanningPolicy(hub="H"))
    assert suggestions == [
        ReorderSuggestion("S", "ne", 100, 14.0, reorder_point=100, target_level=150, suggest_units=50,
                          source="hub H"),
        ReorderSuggestion("S", "w", 40, 14.0, reorder_point=40, target_level=60, suggest_units=20, source="hub H"),
        ReorderSuggestion("S", "H", 190, 19.0, reorder_point=280, target_level=350, suggest_units=160,
                          source="supplier"),
    ]


def test_without_a_hub_every_node_orders_from_the_supplier():
    targets = node_targets(TWO_REGIONS, SALES, NO_SAFETY, NOW)
    suggestions = reorder_suggestions(targets, {}, NO_SAFETY)
    assert [(s.node, s.suggest_units, s.source) for s in suggestions] == [("ne", 150, "supplier"),
                                                                          ("w", 60, "supplier")]


def test_only_at_or_below_the_reorder_point():
    targets = node_targets(TWO_REGIONS, SALES, NO_SAFETY, NOW)
    suggestions = reorder_suggestions(targets, {("S", "ne"): 101, ("S", "w"): 40}, NO_SAFETY)
    assert [(s.node, s.position, s.suggest_units) for s in suggestions] == [("w", 40, 20)]


def test_most_urgent_first_then_sku_then_node():
    sales = forecasts(*(fc(sku, r, w) for sku in ("S1", "S2") for r, w in (("east", 50), ("west", 20))))
    targets = node_targets(TWO_REGIONS, sales, NO_SAFETY, NOW)
    positions = {("S1", "ne"): 0, ("S1", "w"): 20, ("S2", "ne"): 50, ("S2", "w"): 20}  # 0, 7, 7, 7 days
    suggestions = reorder_suggestions(targets, positions, NO_SAFETY)
    assert [(s.sku, s.node, s.days_of_cover) for s in suggestions] == [
        ("S1", "ne", 0.0), ("S1", "w", 7.0), ("S2", "ne", 7.0), ("S2", "w", 7.0),
    ]


def test_no_demand_no_suggestion_even_with_safety_stock():
    targets = node_targets(network(NE), forecasts(fc("S", "east", 0, 5)), PlanningPolicy(), NOW)
    assert targets["S", "ne"].safety_stock > 0  # history was noisy; the forecast is zero
    assert reorder_suggestions(targets, {}, PlanningPolicy()) == []


def test_days_of_cover():
    assert days_of_cover(10, 70) == 1.0
    assert days_of_cover(10, 0) == math.inf


# ---------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(st.floats(0, 500), st.floats(0, 500), st.floats(0, 50), st.floats(0, 50), st.floats(0.01, 300),
       st.sampled_from([None, 0.8, 0.95, 0.99]), st.sampled_from([None, 0.0, 3.0, 10.0]),
       st.integers(0, 30), st.integers(0, 14))
def test_targets_are_monotone_in_demand(east, west, sigma_e, sigma_w, more, service, days, lead, review):
    if service is None and days is None:
        days = 0.0
    policy = PlanningPolicy(lead_time_days=lead, review_days=review, service_level=service, safety_days=days,
                            hub="H", node_lead_time_days={"H": lead + 7})
    launch = LaunchUplift("S", NOW + WEEK, NOW + 3 * WEEK, 2.5)
    before = node_targets(TWO_REGIONS, forecasts(fc("S", "east", east, sigma_e), fc("S", "west", west, sigma_w)),
                          policy, NOW, launches=[launch])
    after = node_targets(TWO_REGIONS, forecasts(fc("S", "east", east + more, sigma_e),
                                                fc("S", "west", west, sigma_w)), policy, NOW, launches=[launch])
    for key, target in before.items():
        assert after[key].reorder_point >= target.reorder_point
        assert after[key].target_level >= target.target_level >= target.reorder_point


def test_a_sku_is_planned_only_where_its_handling_allows():
    from connector.domain.model import Handling, SkuRule

    cheap = Node("popup", "popup", "popup", "launch_buffer", {"city": Lane("city", 0, 4.0)})
    cold = Node("cold", "cold", "cold_storage", "evergreen", {"city": Lane("city", 1, 11.0)},
                capabilities=frozenset({"cold_chain"}))
    network = Network(shop_id="s", timezone="UTC", regions={"city": Region("city", "City", 1, countries=frozenset({"US"}))},
                      nodes={"popup": cheap, "cold": cold}, sku_rules=(),
                      routing=RoutingPolicy(Mode.NORMAL, {m: ModePolicy((Rule.CHEAPEST,)) for m in Mode}))
    serum = SkuRule("SERUM-*", frozenset({Handling.COLD_CHAIN}))
    assert demand_attribution(network, NOW, None) == {"city": "popup"}
    assert demand_attribution(network, NOW, None, serum) == {"city": "cold"}
    forecasts = {(sku, "city"): Forecast(sku, "city", 10.0, 2.0, "ewma", 8) for sku in ("SERUM-1", "CANDLE-1")}
    rules = {"SERUM-1": serum, "CANDLE-1": SkuRule("*")}
    targets = node_targets(network, forecasts, PlanningPolicy(), NOW, rule_of=rules.__getitem__)
    assert {key for key in targets} == {("SERUM-1", "cold"), ("CANDLE-1", "popup")}
