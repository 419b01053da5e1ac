"""Regional allocation on hand-checkable instances: eligibility (window, handling,
restriction, promise, status), both flow problems, the dual prices."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from connector.domain.allocation import Arc, SkuProblem, allocate, eligible_arcs, solve_min_cost_flow
from connector.domain.model import (
    Handling,
    Lane,
    Mode,
    ModePolicy,
    Network,
    Node,
    NodeStatus,
    Region,
    Restriction,
    RoutingPolicy,
    Rule,
    SkuRule,
)

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
REGIONS = {
    "east": Region("east", "East", promise_days=2),
    "west": Region("west", "West", promise_days=3),
    "event": Region("event", "Event city", promise_days=1),
}
ANY = SkuRule(pattern="*")


def node(id, lanes, **kw) -> Node:
    return Node(id=id, name=id, kind="3pl", role="evergreen",
                lanes={r: Lane(r, days, cost) for r, (days, cost) in lanes.items()}, **kw)


def network(nodes, *, mode=Mode.NORMAL, restrictions=()) -> Network:
    modes = {m: ModePolicy((Rule.FASTEST,)) for m in Mode}
    modes[mode] = ModePolicy((Rule.FASTEST,), tuple(restrictions))
    return Network("s", "America/New_York", REGIONS, {n.id: n for n in nodes}, (), RoutingPolicy(mode, modes))


def pairs(arcs) -> set[tuple[str, str]]:
    return {(a.node_id, a.region_id) for a in arcs}


def solve(stock, arcs, demand, lost=20.0, **kw):
    arcs = tuple(Arc(n, r, c) for n, r, c in arcs)
    return allocate([SkuProblem("X", stock, arcs, demand, lost)], **kw)[0]


# ---------------------------------------------------------------- eligibility


def test_lanes_beyond_the_promise_and_unusable_nodes_are_not_eligible():
    net = network([
        node("hub", {"east": (3, 4.0), "west": (3, 4.0)}),  # east promise is 2 days
        node("off", {"east": (1, 1.0)}, status=NodeStatus.OFFLINE),
        node("paused", {"east": (1, 1.0)}, status=NodeStatus.PAUSED),
        node("ok", {"east": (1, 6.0)}),
    ])
    assert eligible_arcs(net, ANY, NOW) == (Arc("hub", "west", 4.0), Arc("ok", "east", 6.0))


def test_degraded_node_stays_eligible_at_a_penalty():
    net = network([node("slow", {"east": (1, 6.0)}, status=NodeStatus.DEGRADED)])
    assert eligible_arcs(net, ANY, NOW, degraded_penalty=2.5) == (Arc("slow", "east", 8.5),)


def test_temporary_node_is_eligible_only_inside_its_window():
    popup = node("popup", {"event": (0, 2.0)}, active_from=NOW, active_until=NOW + timedelta(days=3))
    net = network([popup, node("hub", {"east": (2, 4.0)})])
    inside = eligible_arcs(net, ANY, NOW)
    assert pairs(inside) == {("popup", "event"), ("hub", "east")}
    assert pairs(eligible_arcs(net, ANY, NOW - timedelta(seconds=1))) == {("hub", "east")}
    assert pairs(eligible_arcs(net, ANY, NOW + timedelta(days=3))) == {("hub", "east")}

    # Inside the window the pop-up's stock only goes to its event region; outside it, nowhere.
    result = allocate([SkuProblem("X", {"popup": 7, "hub": 3}, inside, {"event": 2, "east": 9}, 20.0)])[0]
    assert {k: v for k, v in result.units.items() if k[0] == "popup"} == {("popup", "event"): 7}
    outside = eligible_arcs(net, ANY, NOW + timedelta(days=4))
    result = allocate([SkuProblem("X", {"popup": 7, "hub": 3}, outside, {"event": 2, "east": 9}, 20.0)])[0]
    assert result.units == {("hub", "east"): 3}
    assert result.by_region == {"east": 3, "event": 0}


def test_cold_chain_sku_only_goes_through_capable_nodes():
    net = network([
        node("cold", {"east": (1, 5.0), "west": (2, 5.0)}, capabilities=frozenset({"cold_chain"})),
        node("dry", {"east": (1, 1.0), "west": (1, 1.0)}),
    ])
    cold = SkuRule("CHOC-*", handling=frozenset({Handling.COLD_CHAIN}))
    arcs = eligible_arcs(net, cold, NOW)
    assert pairs(arcs) == {("cold", "east"), ("cold", "west")}
    result = allocate([SkuProblem("CHOC-1", {"cold": 4, "dry": 50}, arcs, {"east": 3, "west": 3}, 20.0)])[0]
    assert {n for n, _ in result.units} == {"cold"} and sum(result.by_region.values()) == 4
    assert sum(result.unmet_demand.values()) == 2.0


def test_oversized_and_max_transit_days_are_honoured():
    net = network([
        node("big", {"east": (1, 5.0), "west": (3, 5.0)}, capabilities=frozenset({"oversized"})),
        node("small", {"east": (1, 1.0)}),
    ])
    rule = SkuRule("SOFA", handling=frozenset({Handling.OVERSIZED}), max_transit_days=2)
    assert eligible_arcs(net, rule, NOW) == (Arc("big", "east", 5.0),)


def test_restriction_mode_uses_only_the_restricted_nodes_with_the_promise_relaxed():
    net = network(
        [node("mid", {"east": (4, 7.0)}), node("local", {"east": (1, 2.0), "west": (1, 2.0)})],
        mode=Mode.DISRUPTION, restrictions=[Restriction(frozenset({"east"}), ("mid",))],
    )
    assert pairs(eligible_arcs(net, ANY, NOW)) == {("mid", "east"), ("local", "west")}


def test_restricted_node_still_needs_to_be_usable_and_capable():
    net = network(
        [node("mid", {"east": (4, 7.0)}, status=NodeStatus.OFFLINE), node("local", {"east": (1, 2.0)})],
        mode=Mode.DISRUPTION, restrictions=[Restriction(frozenset({"*"}), ("mid",))],
    )
    assert eligible_arcs(net, ANY, NOW) == ()


# ---------------------------------------------------------------- problem A


def test_never_promises_a_unit_twice():
    result = solve({"a": 5}, [("a", "east", 1.0), ("a", "west", 1.0)], {"east": 4, "west": 4})
    assert sum(result.units.values()) == 5 and sum(result.planned.values()) == 5
    assert sum(result.unmet_demand.values()) == 3
    assert result.expected_cost == pytest.approx(5 * 1.0 + 3 * 20.0)


def test_demand_is_left_unmet_when_shipping_costs_more_than_the_lost_sale():
    result = solve({"a": 5}, [("a", "east", 25.0)], {"east": 2})
    assert result.planned == {} and result.unmet_demand == {"east": 2.0}
    assert result.expected_cost == pytest.approx(40.0)
    assert result.opportunity_cost == {"a": 0.0}
    assert result.units == {("a", "east"): 5}  # availability still lets the region sell it


@pytest.mark.parametrize("lane_cost, planned, unmet, cost", [
    (8.0, 3, 0.0, 3 * 8.0),  # the ceil unit avoids half a lost sale (10) for 8: worth it
    (9.99, 3, 0.0, 3 * 9.99),  # for 9.99 still, by a cent
    (12.0, 2, 0.5, 2 * 12.0 + 0.5 * 20.0),  # for 12 it is not
])
@pytest.mark.parametrize("second_node", [False, True], ids=["one node (poured)", "two nodes (solved)"])
def test_fractional_demand_takes_the_ceil_unit_only_when_its_fraction_pays(lane_cost, planned, unmet, cost,
                                                                          second_node):
    # A second stocked node with a dearer lane sends the SKU to the flow solver; it is never worth using.
    arcs = [("a", "east", lane_cost)] + ([("b", "east", 19.0)] if second_node else [])
    stock = {"a": 9, "b": 4} if second_node else {"a": 9}
    result = solve(stock, arcs, {"east": 2.5})
    assert result.planned == {("a", "east"): planned}
    assert result.unmet_demand == {"east": unmet}
    assert result.expected_cost == pytest.approx(cost)



def test_the_ceil_unit_ships_when_exactly_ceil_units_can_reach_the_region():
    result = solve({"a": 2, "b": 1}, [("a", "east", 8.0), ("b", "east", 9.0)], {"east": 2.5})
    assert result.planned == {("a", "east"): 2, ("b", "east"): 1}
    assert result.expected_cost == pytest.approx(2 * 8.0 + 9.0)
    # A unit lost at a: the half sale (10) goes, a's lane (8) is saved; at b: 10 - 9.
    assert result.opportunity_cost == {"a": 2.0, "b": 1.0}

def test_opportunity_cost_is_high_for_the_only_cheap_source_of_a_region_and_zero_for_abundant_stock():
    # "solo" alone serves west; "hub" has plenty for east and could reach west only at a high cost.
    result = solve(
        {"hub": 100, "solo": 3},
        [("hub", "east", 2.0), ("hub", "west", 9.0), ("solo", "west", 1.0)],
        {"east": 10, "west": 5},
    )
    # Losing one solo unit: the hub ships it to west instead (9 - 1).
    assert result.opportunity_cost == {"hub": 0.0, "solo": 8.0}
    assert result.planned == {("hub", "east"): 10, ("hub", "west"): 2, ("solo", "west"): 3}


def test_opportunity_cost_is_the_lost_sale_net_of_shipping_when_nothing_can_replace_the_unit():
    result = solve({"a": 3}, [("a", "east", 5.0)], {"east": 5})
    assert result.opportunity_cost == {"a": 15.0}


def test_node_without_stock_has_no_opportunity_cost():
    result = solve({"a": 0, "b": 2}, [("a", "east", 1.0), ("b", "east", 3.0)], {"east": 5})
    assert result.opportunity_cost == {"a": 0.0, "b": 17.0}


def test_skus_in_one_batch_do_not_interact():
    one = SkuProblem("X", {"a": 3}, (Arc("a", "east", 5.0),), {"east": 5}, 20.0)
    two = SkuProblem("Y", {"a": 9, "b": 1}, (Arc("a", "west", 2.0), Arc("b", "west", 1.0)), {"west": 4}, 7.0)
    together = allocate([one, two, one])
    assert together == [allocate([one])[0], allocate([two])[0], allocate([one])[0]]
    assert [r.sku for r in together] == ["X", "Y", "X"]


# ---------------------------------------------------------------- problem B


def test_overflow_is_spread_in_proportion_to_demand():
    result = solve({"a": 30}, [("a", "east", 1.0), ("a", "west", 1.0)], {"east": 10, "west": 5})
    assert result.by_region == {"east": 20, "west": 10}


def test_forecast_is_served_before_lane_cost_is_considered():
    result = solve({"a": 5}, [("a", "east", 90.0), ("a", "west", 1.0)], {"east": 5})
    assert result.by_region == {"east": 5, "west": 0}


def test_forecast_is_served_first_even_through_a_chain_of_dearer_lanes():
    # Serving all three forecasts moves a1 and a2 onto their dear lanes (+5 each):
    # tiers must outweigh a lane-cost change summed over every node in the exchange.
    result = solve({"a1": 1, "a2": 1, "a3": 1},
                   [("a1", "east", 0.0), ("a1", "west", 5.0), ("a2", "west", 0.0), ("a2", "event", 5.0),
                    ("a3", "east", 0.0)],
                   {"east": 1, "west": 1, "event": 1})
    assert result.by_region == {"east": 1, "west": 1, "event": 1}


def test_lane_cost_decides_within_a_tier():
    result = solve({"a": 4, "b": 4}, [("a", "east", 1.0), ("b", "east", 3.0), ("a", "west", 2.0),
                                      ("b", "west", 2.0)], {"east": 4, "west": 4})
    assert result.units == {("a", "east"): 4, ("b", "west"): 4}


def test_zero_demand_region_gets_stock_nothing_else_can_use():
    result = solve({"hub": 10, "local": 6}, [("hub", "east", 1.0), ("local", "west", 1.0)], {"east": 2})
    assert result.units == {("hub", "east"): 10, ("local", "west"): 6}
    assert result.by_region == {"east": 10, "west": 6}


def test_unreachable_stock_is_not_allocated():
    result = solve({"a": 4, "island": 7}, [("a", "east", 1.0)], {"east": 1})
    assert result.by_region == {"east": 4}
    assert result.opportunity_cost == {"a": 0.0, "island": 0.0}


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize("problem, message", [
    (SkuProblem("X", {"a": -1}, (), {}, 1.0), "stock"),
    (SkuProblem("X", {"a": 1.5}, (), {}, 1.0), "stock"),
    (SkuProblem("X", {}, (), {"east": -1.0}, 1.0), "demand"),
    (SkuProblem("X", {}, (), {}, 0.0), "lost_sale_cost"),
    (SkuProblem("X", {}, (Arc("a", "east", float("nan")),), {}, 1.0), "arc costs"),
    (SkuProblem("X", {}, (Arc("a", "east", 1.0), Arc("a", "east", 2.0)), {}, 1.0), "more than one arc"),
])
def test_bad_input_is_refused_naming_the_sku(problem, message):
    fine = SkuProblem("OK", {"a": 1}, (Arc("a", "east", 1.0),), {"east": 1.0}, 1.0)
    with pytest.raises(ValueError, match=f"^X: {message}"):
        allocate([fine, problem, fine])


def test_skus_sharing_one_arcs_tuple_keep_their_own_nodes_and_regions():
    arcs = (Arc("a", "east", 1.0), Arc("b", "east", 2.0))
    shared = [
        SkuProblem("X", {"a": 2, "b": 5}, arcs, {"east": 4}, 20.0),
        SkuProblem("Y", {"b": 3, "c": 9}, arcs, {"east": 5, "west": 2}, 20.0),  # c and west are outside the arcs
        SkuProblem("Z", {"a": 1}, arcs, {}, 20.0),
    ]
    own = [allocate([SkuProblem(p.sku, p.stock, tuple(list(p.arcs)), p.demand, p.lost_sale_cost)])[0]
           for p in shared]
    assert allocate(shared) == own
    y = own[1]
    assert y.by_region == {"east": 3, "west": 0}
    assert y.opportunity_cost == {"a": 0.0, "b": 18.0, "c": 0.0}
    assert y.unmet_demand == {"east": 2.0, "west": 2.0}


def test_no_problems_no_allocations():
    assert allocate([]) == []


def test_min_cost_flow_takes_sparse_vertex_numbers():
    # Vertices 5, 7 and 1,000,000 only (the solver sees them renumbered 0, 1, 2);
    # 7 has no arc and no supply. Flows come back in the order the arcs went in.
    flows = solve_min_cost_flow(
        tails=np.array([5, 5, 1_000_000]), heads=np.array([1_000_000, 1_000_000, 5]),
        capacities=np.array([2, 5, 9]), unit_costs=np.array([3, 1, 4]),
        vertices=np.array([5, 7, 1_000_000]), supplies=np.array([6, 0, -6]),
    )
    assert flows.tolist() == [1, 5, 0]


def test_min_cost_flow_refuses_an_infeasible_instance():
    with pytest.raises(RuntimeError, match="not solved to optimality"):
        solve_min_cost_flow(np.array([0]), np.array([9]), np.array([1]), np.array([1]), np.array([0, 9]),
                            np.array([2, -2]))
