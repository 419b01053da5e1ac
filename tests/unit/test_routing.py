"""Routing engine, with plain data: every rule, every mode, fallbacks and each
exception reason."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta, timezone

import pytest

from connector.domain.model import (
    Address,
    ExceptionReason,
    Handling,
    Lane,
    Mode,
    ModePolicy,
    Network,
    Node,
    NodeStatus,
    Order,
    OrderLine,
    Region,
    Restriction,
    RoutingPolicy,
    Rule,
    SkuRule,
)
from connector.domain.routing import Router

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)  # 10:00 in New York
DEFAULT_CHAIN = (Rule.SINGLE_SHIPMENT, Rule.FASTEST, Rule.PRIORITY, Rule.CHEAPEST, Rule.MOST_STOCK)

REGIONS = {
    "east": Region("east", "East", promise_days=2, provinces=frozenset({"US-NY"}), fallback="rest"),
    "west": Region("west", "West", promise_days=3, provinces=frozenset({"US-CA"}), fallback="rest"),
    "rest": Region("rest", "Rest of US", promise_days=5, countries=frozenset({"US"})),
}


def node(id, lanes, **kw) -> Node:
    return Node(
        id=id, name=id, kind="3pl", role="evergreen",
        lanes={r: Lane(r, days, cost) for r, (days, cost) in lanes.items()}, **kw,
    )


def network(nodes, *, rules=DEFAULT_CHAIN, mode=Mode.NORMAL, skus=(), restrictions=(), regions=REGIONS) -> Network:
    modes = {m: ModePolicy(rules) for m in Mode}
    modes[mode] = ModePolicy(rules, tuple(restrictions))
    return Network(
        shop_id="s", timezone="America/New_York", regions=regions, nodes={n.id: n for n in nodes},
        sku_rules=tuple(skus), routing=RoutingPolicy(mode=mode, modes=modes),
    )


def order(*lines, to=("US", "NY", "10012")) -> Order:
    return Order(
        shop_id="s", order_id="o1", number="#1", platform="shopify", created_at=NOW, updated_at=NOW,
        ship_to=Address(*to),
        lines=tuple(OrderLine(f"l{i}", sku, qty) for i, (sku, qty) in enumerate(lines)),
    )


def route(net, o, region="east", stock=None, usage=None, now=NOW):
    return Router(net).route(o, region, stock or {}, usage or {}, now)


def nodes_of(result):
    return [d.node_id for d in result.decisions]


# ---------------------------------------------------------------- preference rules


def test_single_shipment_beats_two_faster_nodes():
    a = node("a", {"east": (1, 5.0)})
    b = node("b", {"east": (1, 5.0)})
    c = node("c", {"east": (2, 9.0)})
    stock = {("a", "X"): 5, ("b", "Y"): 5, ("c", "X"): 5, ("c", "Y"): 5}
    result = route(network([a, b, c]), order(("X", 1), ("Y", 1)), stock=stock)
    assert nodes_of(result) == ["c", "c"]
    assert {d.rule for d in result.decisions} == {"single_shipment"}
    assert "1 shipment" in result.decisions[0].explanation


def test_fastest_first_chain_splits_the_order():
    a = node("a", {"east": (1, 5.0)})
    b = node("b", {"east": (1, 5.0)})
    c = node("c", {"east": (2, 9.0)})
    stock = {("a", "X"): 5, ("b", "Y"): 5, ("c", "X"): 5, ("c", "Y"): 5}
    net = network([a, b, c], rules=(Rule.FASTEST, Rule.SINGLE_SHIPMENT, Rule.CHEAPEST))
    result = route(net, order(("X", 1), ("Y", 1)), stock=stock)
    assert nodes_of(result) == ["a", "b"]
    assert result.decisions[0].rule == "fastest"


def test_fastest_picks_fewer_transit_days():
    net = network([node("slow", {"east": (2, 1.0)}), node("quick", {"east": (1, 9.0)})])
    result = route(net, order(("X", 1)), stock={("slow", "X"): 9, ("quick", "X"): 9})
    assert nodes_of(result) == ["quick"]
    assert result.decisions[0].rule == "fastest"


def test_priority_breaks_a_transit_tie():
    net = network([node("a", {"east": (1, 1.0)}, priority=50), node("b", {"east": (1, 9.0)}, priority=10)])
    result = route(net, order(("X", 1)), stock={("a", "X"): 9, ("b", "X"): 9})
    assert nodes_of(result) == ["b"]
    assert result.decisions[0].rule == "priority"


def test_cheapest_when_transit_and_priority_tie():
    net = network([node("a", {"east": (1, 7.5)}), node("b", {"east": (1, 6.0)})])
    result = route(net, order(("X", 1)), stock={("a", "X"): 9, ("b", "X"): 9})
    assert nodes_of(result) == ["b"]
    assert result.decisions[0].rule == "cheapest"


def test_most_stock_is_the_last_preference():
    net = network([node("a", {"east": (1, 6.0)}), node("b", {"east": (1, 6.0)})])
    result = route(net, order(("X", 2)), stock={("a", "X"): 3, ("b", "X"): 30})
    assert nodes_of(result) == ["b"]
    assert result.decisions[0].rule == "most_stock"


def test_node_id_breaks_a_complete_tie_deterministically():
    net = network([node("b", {"east": (1, 6.0)}), node("a", {"east": (1, 6.0)})])
    stock = {("a", "X"): 5, ("b", "X"): 5}
    first = route(net, order(("X", 1)), stock=stock)
    assert nodes_of(first) == ["a"]
    assert first.decisions[0].rule == "tiebreak"
    assert route(net, order(("X", 1)), stock=stock) == first


def test_only_option_is_named():
    net = network([node("a", {"east": (1, 6.0)}), node("b", {"east": (1, 6.0)})])
    result = route(net, order(("X", 1)), stock={("a", "X"): 5})
    assert nodes_of(result) == ["a"]
    assert result.decisions[0].rule == "only_option"


def test_chain_order_changes_the_winner():
    cheap_slow = node("cheap", {"east": (2, 3.0)})
    dear_fast = node("fast", {"east": (1, 9.0)})
    stock = {("cheap", "X"): 5, ("fast", "X"): 5}
    by_cost = route(network([cheap_slow, dear_fast], rules=(Rule.CHEAPEST, Rule.FASTEST)), order(("X", 1)), stock=stock)
    by_speed = route(network([cheap_slow, dear_fast], rules=(Rule.FASTEST, Rule.CHEAPEST)), order(("X", 1)), stock=stock)
    assert nodes_of(by_cost) == ["cheap"] and by_cost.decisions[0].rule == "cheapest"
    assert nodes_of(by_speed) == ["fast"] and by_speed.decisions[0].rule == "fastest"


def test_greedy_cover_uses_fewest_shipments_when_no_node_has_everything():
    a = node("a", {"east": (1, 5.0)})
    b = node("b", {"east": (1, 5.0)})
    c = node("c", {"east": (1, 5.0)})
    # a has X+Y, b has Z, c has X only: the best is 2 shipments (a + b).
    stock = {("a", "X"): 1, ("a", "Y"): 1, ("b", "Z"): 1, ("c", "X"): 1, ("b", "X"): 1}
    result = route(network([a, b, c]), order(("X", 1), ("Y", 1), ("Z", 1)), stock=stock)
    assert len(set(nodes_of(result))) == 2
    assert nodes_of(result)[1:] == ["a", "b"]


def test_same_sku_on_two_lines_counts_stock_jointly():
    net = network([node("a", {"east": (1, 5.0)}), node("b", {"east": (2, 5.0)})])
    stock = {("a", "X"): 3, ("b", "X"): 10}
    result = route(net, order(("X", 2), ("X", 2)), stock=stock)
    # a cannot ship 4; a single shipment from b beats splitting.
    assert nodes_of(result) == ["b", "b"]


# ---------------------------------------------------------------- ranked down


def test_node_past_cutoff_is_ranked_down_not_excluded():
    early = node("early", {"east": (1, 5.0)}, cutoff=time(9, 0))  # 10:00 local is past it
    late = node("late", {"east": (2, 5.0)}, cutoff=time(17, 0))
    stock = {("early", "X"): 5, ("late", "X"): 5}
    result = route(network([early, late]), order(("X", 1)), stock=stock)
    assert nodes_of(result) == ["late"]
    assert result.decisions[0].rule == "availability"
    alone = route(network([early]), order(("X", 1)), stock=stock)
    assert nodes_of(alone) == ["early"]
    assert "past 09:00 cutoff" in alone.decisions[0].explanation


def test_cutoff_uses_the_shop_time_zone():
    n = node("a", {"east": (1, 5.0)}, cutoff=time(14, 0))
    other = node("b", {"east": (2, 5.0)})
    stock = {("a", "X"): 5, ("b", "X"): 5}
    # 18:30 UTC is 13:30 in New York: before the cutoff.
    result = route(network([n, other]), order(("X", 1)), stock=stock, now=NOW.replace(hour=18, minute=30))
    assert nodes_of(result) == ["a"]


def test_node_at_daily_capacity_is_ranked_down():
    full = node("full", {"east": (1, 5.0)}, daily_capacity=10)
    spare = node("spare", {"east": (2, 5.0)}, daily_capacity=10)
    stock = {("full", "X"): 5, ("spare", "X"): 5}
    result = route(network([full, spare]), order(("X", 1)), stock=stock, usage={"full": 10, "spare": 3})
    assert nodes_of(result) == ["spare"]
    assert result.decisions[0].rule == "availability"


def test_degraded_node_is_used_only_when_nothing_better():
    sick = node("sick", {"east": (1, 5.0)}, status=NodeStatus.DEGRADED)
    well = node("well", {"east": (2, 5.0)})
    stock = {("sick", "X"): 5, ("well", "X"): 5}
    assert nodes_of(route(network([sick, well]), order(("X", 1)), stock=stock)) == ["well"]
    alone = route(network([sick]), order(("X", 1)), stock=stock)
    assert nodes_of(alone) == ["sick"] and "node degraded" in alone.decisions[0].explanation


# ---------------------------------------------------------------- eligibility


@pytest.mark.parametrize("status", [NodeStatus.OFFLINE, NodeStatus.PAUSED])
def test_offline_and_paused_nodes_are_not_eligible(status):
    down = node("down", {"east": (1, 5.0)}, status=status)
    up = node("up", {"east": (2, 5.0)})
    stock = {("down", "X"): 5, ("up", "X"): 5}
    assert nodes_of(route(network([down, up]), order(("X", 1)), stock=stock)) == ["up"]


def test_temporary_node_only_inside_its_active_window():
    popup = node("popup", {"east": (0, 2.0)}, active_from=NOW - timedelta(days=1), active_until=NOW + timedelta(days=1))
    hub = node("hub", {"east": (1, 5.0)})
    stock = {("popup", "X"): 5, ("hub", "X"): 5}
    net = network([popup, hub])
    assert nodes_of(route(net, order(("X", 1)), stock=stock)) == ["popup"]
    assert nodes_of(route(net, order(("X", 1)), stock=stock, now=NOW + timedelta(days=2))) == ["hub"]
    assert nodes_of(route(net, order(("X", 1)), stock=stock, now=NOW - timedelta(days=2))) == ["hub"]


def test_lane_beyond_the_promise_is_not_primary():
    slow = node("slow", {"east": (3, 1.0)})  # east promises 2 days
    net = network([slow])
    result = route(net, order(("X", 1)), stock={("slow", "X"): 5})
    # No node serves the fallback "rest", so nothing can meet or relax the promise.
    decision = result.decisions[0]
    assert decision.node_id is None
    assert decision.exception is ExceptionReason.NO_NODE_SERVES_REGION
    assert "within its 2d promise" in decision.explanation and "slow has a 3d lane (promise 2d)" in decision.explanation


def test_cold_chain_only_from_cold_nodes_within_max_transit():
    rule = SkuRule("SERUM-*", frozenset({Handling.COLD_CHAIN}), max_transit_days=1)
    cold_slow = node("cold-slow", {"east": (2, 5.0)}, capabilities=frozenset({"cold_chain"}))
    cold_fast = node("cold-fast", {"east": (1, 9.0)}, capabilities=frozenset({"cold_chain"}))
    warm = node("warm", {"east": (1, 1.0)})
    stock = {(n, "SERUM-ROSE"): 5 for n in ("cold-slow", "cold-fast", "warm")}
    result = route(network([cold_slow, cold_fast, warm], skus=[rule]), order(("SERUM-ROSE", 1)), stock=stock)
    assert nodes_of(result) == ["cold-fast"]


def test_handling_constraint_exception_names_the_need():
    rule = SkuRule("SERUM-*", frozenset({Handling.COLD_CHAIN}), max_transit_days=2)
    warm = node("warm", {"east": (1, 1.0)})
    result = route(network([warm], skus=[rule]), order(("SERUM-ROSE", 1)), stock={("warm", "SERUM-ROSE"): 5})
    decision = result.decisions[0]
    assert decision.node_id is None
    assert decision.exception is ExceptionReason.HANDLING_CONSTRAINT
    assert "cold_chain" in decision.explanation and "warm" in decision.explanation


def test_fragile_needs_a_fragile_capable_node():
    rule = SkuRule("CANDLE-*", frozenset({Handling.FRAGILE}))
    careful = node("careful", {"east": (2, 9.0)}, capabilities=frozenset({"fragile"}))
    rough = node("rough", {"east": (1, 1.0)})
    stock = {("careful", "CANDLE-FIG"): 5, ("rough", "CANDLE-FIG"): 5}
    result = route(network([careful, rough], skus=[rule]), order(("CANDLE-FIG", 1)), stock=stock)
    assert nodes_of(result) == ["careful"]


def test_exact_sku_rule_wins_over_a_glob():
    rules = [SkuRule("CANDLE-*", frozenset({Handling.FRAGILE})), SkuRule("CANDLE-TIN", frozenset())]
    rough = node("rough", {"east": (1, 1.0)})
    result = route(network([rough], skus=rules), order(("CANDLE-TIN", 1)), stock={("rough", "CANDLE-TIN"): 5})
    assert nodes_of(result) == ["rough"]


def test_oversized_goes_to_a_human_without_a_capable_node():
    rule = SkuRule("MIRROR-XL", frozenset({Handling.OVERSIZED}))
    result = route(network([node("a", {"east": (1, 1.0)})], skus=[rule]), order(("MIRROR-XL", 1)),
                   stock={("a", "MIRROR-XL"): 5})
    assert result.decisions[0].exception is ExceptionReason.NEEDS_HUMAN


def test_oversized_routes_to_a_capable_node():
    rule = SkuRule("MIRROR-XL", frozenset({Handling.OVERSIZED}))
    big = node("big", {"east": (2, 20.0)}, capabilities=frozenset({"oversized"}))
    small = node("small", {"east": (1, 1.0)})
    stock = {("big", "MIRROR-XL"): 2, ("small", "MIRROR-XL"): 2}
    result = route(network([big, small], skus=[rule]), order(("MIRROR-XL", 1)), stock=stock)
    assert nodes_of(result) == ["big"]


# ---------------------------------------------------------------- fallbacks and exceptions


def test_backup_node_used_when_primary_is_offline_with_relaxed_promise():
    backup = node("backup", {"east": (4, 9.0), "rest": (3, 7.0)})
    primary = node("primary", {"east": (1, 5.0)}, status=NodeStatus.OFFLINE, backups=("backup",))
    result = route(network([primary, backup]), order(("X", 1)), stock={("primary", "X"): 5, ("backup", "X"): 5})
    assert nodes_of(result) == ["backup"]
    assert "backup for primary" in result.decisions[0].explanation
    assert "beyond east's 2d promise" in result.decisions[0].explanation


def test_region_fallback_when_no_node_meets_the_promise():
    central = node("central", {"rest": (3, 7.0)})
    result = route(network([central]), order(("X", 1)), stock={("central", "X"): 5})
    assert nodes_of(result) == ["central"]
    assert "fallback region rest" in result.decisions[0].explanation


def test_primary_preferred_over_fallback_even_if_costlier():
    local = node("local", {"east": (2, 20.0)})
    central = node("central", {"rest": (1, 1.0)})
    stock = {("local", "X"): 5, ("central", "X"): 5}
    result = route(network([local, central], rules=(Rule.CHEAPEST,)), order(("X", 1)), stock=stock)
    assert nodes_of(result) == ["local"]
    assert result.decisions[0].rule == "promise"


def test_fallback_chain_follows_out_of_stock():
    local = node("local", {"east": (1, 5.0)})
    central = node("central", {"rest": (3, 7.0)})
    result = route(network([local, central]), order(("X", 2)), stock={("local", "X"): 1, ("central", "X"): 5})
    assert nodes_of(result) == ["central"]


def test_no_node_serves_region():
    regions = {**REGIONS, "islands": Region("islands", "Islands", 5, countries=frozenset({"GU"}))}
    net = network([node("a", {"east": (1, 1.0)})], regions=regions)
    result = route(net, order(("X", 1)), region="islands", stock={("a", "X"): 5})
    assert result.decisions[0].exception is ExceptionReason.NO_NODE_SERVES_REGION


def test_nodes_unavailable_names_each_node_state():
    net = network([node("a", {"east": (1, 1.0)}, status=NodeStatus.PAUSED),
                   node("b", {"east": (1, 1.0)}, active_until=NOW - timedelta(days=1))])
    result = route(net, order(("X", 1)), stock={("a", "X"): 5, ("b", "X"): 5})
    decision = result.decisions[0]
    assert decision.exception is ExceptionReason.NODES_UNAVAILABLE
    assert "a paused" in decision.explanation and "b outside its active window" in decision.explanation


def test_partial_stock_routes_what_it_can_and_flags_the_rest():
    net = network([node("a", {"east": (1, 1.0)}), node("b", {"east": (1, 1.0)})])
    result = route(net, order(("X", 1), ("Y", 5)), stock={("a", "X"): 5, ("a", "Y"): 2, ("b", "Y"): 1})
    assert nodes_of(result) == ["a", None]
    flagged = result.decisions[1]
    assert flagged.exception is ExceptionReason.PARTIAL_STOCK
    assert "needs 5 × Y" in flagged.explanation and "a has 2" in flagged.explanation


def test_no_region_without_default():
    result = route(network([node("a", {"east": (1, 1.0)})]), order(("X", 1)), region=None, stock={("a", "X"): 5})
    assert result.decisions[0].exception is ExceptionReason.NO_REGION
    assert "US/NY/10012" in result.decisions[0].explanation


def test_skipped_lines_are_reported_not_routed():
    o = replace(order(("X", 1)), lines=(
        OrderLine("l0", "X", 1), OrderLine("l1", None, 1), OrderLine("l2", "GIFT", 1, requires_shipping=False),
        OrderLine("l3", "X", 0),
    ))
    result = route(network([node("a", {"east": (1, 1.0)})]), o, stock={("a", "X"): 5})
    assert [d.line_id for d in result.decisions] == ["l0"]
    assert dict(result.skipped) == {"l1": "has no SKU", "l2": "does not require shipping",
                                    "l3": "nothing left to ship (quantity 0)"}


# ---------------------------------------------------------------- modes


def test_disruption_mode_restricts_regions_to_named_nodes_with_relaxed_promise():
    midwest = node("midwest", {"east": (4, 8.0), "west": (4, 8.0)})
    coast = node("coast", {"east": (1, 5.0)})
    stock = {("midwest", "X"): 5, ("coast", "X"): 5}
    restrictions = [Restriction(frozenset({"east", "west"}), ("midwest",))]
    disrupted = network([midwest, coast], mode=Mode.DISRUPTION, restrictions=restrictions)
    result = route(disrupted, order(("X", 1)), stock=stock)
    assert nodes_of(result) == ["midwest"]
    assert result.mode is Mode.DISRUPTION
    assert "disruption mode restricts this region to midwest" in result.decisions[0].explanation
    # In normal mode the same network routes to the coast node.
    normal = replace(disrupted, routing=replace(disrupted.routing, mode=Mode.NORMAL))
    assert nodes_of(route(normal, order(("X", 1)), stock=stock)) == ["coast"]


def test_restriction_applies_only_to_its_regions():
    midwest = node("midwest", {"east": (4, 8.0), "rest": (2, 8.0)})
    coast = node("coast", {"east": (1, 5.0)})
    restrictions = [Restriction(frozenset({"rest"}), ("midwest",))]
    net = network([midwest, coast], mode=Mode.DISRUPTION, restrictions=restrictions)
    assert nodes_of(route(net, order(("X", 1)), stock={("midwest", "X"): 5, ("coast", "X"): 5})) == ["coast"]


def test_restriction_star_covers_every_region():
    midwest = node("midwest", {"east": (4, 8.0)})
    coast = node("coast", {"east": (1, 5.0)})
    net = network([midwest, coast], mode=Mode.DISRUPTION, restrictions=[Restriction(frozenset({"*"}), ("midwest",))])
    assert nodes_of(route(net, order(("X", 1)), stock={("midwest", "X"): 5, ("coast", "X"): 5})) == ["midwest"]


def test_peak_mode_uses_its_own_chain():
    a = node("a", {"east": (1, 5.0)})
    b = node("b", {"east": (1, 5.0)})
    c = node("c", {"east": (2, 9.0)})
    stock = {("a", "X"): 5, ("b", "Y"): 5, ("c", "X"): 5, ("c", "Y"): 5}
    net = network([a, b, c])
    peak_modes = {**net.routing.modes, Mode.PEAK: ModePolicy((Rule.FASTEST, Rule.SINGLE_SHIPMENT))}
    peak = replace(net, routing=RoutingPolicy(Mode.PEAK, peak_modes))
    assert nodes_of(route(net, order(("X", 1), ("Y", 1)), stock=stock)) == ["c", "c"]
    assert nodes_of(route(peak, order(("X", 1), ("Y", 1)), stock=stock)) == ["a", "b"]
    assert route(peak, order(("X", 1)), stock=stock).mode is Mode.PEAK


def test_explanations_are_one_line_and_mention_node_and_rule():
    net = network([node("a", {"east": (1, 5.0)}), node("b", {"east": (2, 5.0)})])
    decision = route(net, order(("X", 1)), stock={("a", "X"): 5, ("b", "X"): 5}).decisions[0]
    assert "\n" not in decision.explanation
    assert decision.explanation.startswith("1 × X from a; 1d to east within its 2d promise")
    assert "decided by fastest" in decision.explanation


# ---------------------------------------------------------------- dual prices


def test_opportunity_cost_keeps_a_cheap_node_for_the_region_it_alone_serves():
    # "cheap" is the cheaper lane to east but the allocation prices its units at 4.0
    # (they are the only way to meet the west's forecast); "dear" costs 2.0 more per order.
    cheap = node("cheap", {"east": (1, 5.0), "west": (1, 5.0)})
    dear = node("dear", {"east": (1, 7.0)})
    net = network([cheap, dear], rules=(Rule.SINGLE_SHIPMENT, Rule.CHEAPEST))
    stock = {("cheap", "X"): 3, ("dear", "X"): 9}
    plain = Router(net).route(order(("X", 1)), "east", stock, {}, NOW)
    priced = Router(net).route(order(("X", 1)), "east", stock, {}, NOW, opportunity={("cheap", "X"): 4.0})
    assert nodes_of(plain) == ["cheap"]
    assert nodes_of(priced) == ["dear"]
    assert priced.decisions[0].rule == "cheapest"


def test_opportunity_cost_counts_per_unit_and_is_explained():
    # 1 unit: cheap 5 + 1.5 < dear 7; 2 units: cheap 5 + 3.0 > dear 7.
    cheap = node("cheap", {"east": (1, 5.0)})
    dear = node("dear", {"east": (1, 7.0)})
    net = network([cheap, dear], rules=(Rule.SINGLE_SHIPMENT, Rule.CHEAPEST))
    stock = {("cheap", "X"): 5, ("dear", "X"): 5}
    dual = {("cheap", "X"): 1.5}
    one = Router(net).route(order(("X", 1)), "east", stock, {}, NOW, opportunity=dual)
    two = Router(net).route(order(("X", 2)), "east", stock, {}, NOW, opportunity=dual)
    assert nodes_of(one) == ["cheap"]
    assert "opportunity cost 1.50/unit" in one.decisions[0].explanation
    assert nodes_of(two) == ["dear"]


def test_opportunity_cost_applies_across_the_lines_of_one_shipment():
    # Two lines from "cheap": 5 + 2 × 1.1 = 7.2 against "dear" 7.0 for both: dear wins,
    # although cheap is each line's best on its own (5 + 1.1 < 7).
    cheap = node("cheap", {"east": (1, 5.0)})
    dear = node("dear", {"east": (1, 7.0)})
    net = network([cheap, dear], rules=(Rule.SINGLE_SHIPMENT, Rule.CHEAPEST))
    stock = {("cheap", "X"): 5, ("cheap", "Y"): 5, ("dear", "X"): 5, ("dear", "Y"): 5}
    dual = {("cheap", "X"): 1.1, ("cheap", "Y"): 1.1}
    result = Router(net).route(order(("X", 1), ("Y", 1)), "east", stock, {}, NOW, opportunity=dual)
    assert nodes_of(result) == ["dear", "dear"]


# ---------------------------------------------------------------- what blocks a line

EAST_ONLY = {"east": Region("east", "East", promise_days=2, provinces=frozenset({"US-NY"}))}
COLD = SkuRule("SERUM-*", frozenset({Handling.COLD_CHAIN}), max_transit_days=1)


@pytest.mark.parametrize("cause, hq, stock, usage, sku, says", [
    ("offline", dict(status=NodeStatus.OFFLINE, status_note="flooded"), 5, 0, "X", "hq offline (flooded)"),
    ("paused", dict(status=NodeStatus.PAUSED), 5, 0, "X", "hq paused"),
    ("not open yet", dict(active_from=NOW + timedelta(days=1)), 5, 0, "X",
     "hq outside its active window (opens 2026-11-23 10:00 EST)"),
    ("closed", dict(active_until=NOW - timedelta(hours=2)), 5, 0, "X",
     "hq outside its active window (closed 2026-11-22 08:00 EST)"),
    ("stale, excluded", dict(status=NodeStatus.OFFLINE, status_note="stock data 3 h old; excluded until a sync succeeds"),
     5, 0, "X", "hq offline (stock data 3 h old; excluded until a sync succeeds)"),
    ("lacks a capability", dict(lanes_days=1), 5, 0, "SERUM-ROSE", "hq lacks cold_chain"),
    ("lane too slow for the SKU", dict(lanes_days=2, capabilities=frozenset({"cold_chain"})), 5, 0, "SERUM-ROSE",
     "hq has a 2d lane (SERUM-ROSE allows 1d)"),
    ("no stock", {}, 0, 0, "X", "hq has 0"),
    ("short, past cutoff and at capacity", dict(cutoff=time(9, 0), daily_capacity=3), 1, 3, "X",
     "hq has 1 (ranked down: past 09:00 cutoff, at daily capacity 3)"),
    ("lane beyond the promise", dict(lanes_days=5), 5, 0, "X", "hq has a 5d lane (promise 2d)"),
])
def test_an_exception_names_every_node_and_what_blocks_it(cause, hq, stock, usage, sku, says):
    # The case: a node and its backup cannot ship, one far node is left.
    hq = dict(hq)
    days = hq.pop("lanes_days", 1)
    nodes = [node("hq", {"east": (days, 5.0)}, backups=("hq-backup",), **hq),
             node("hq-backup", {"east": (2, 6.0)}, status=NodeStatus.OFFLINE),
             node("far", {"east": (5, 4.0)}, capabilities=frozenset({"cold_chain"}))]
    quantities = {("hq", sku): stock, ("hq-backup", sku): 5, ("far", sku): 5}
    result = route(network(nodes, regions=EAST_ONLY, skus=[COLD]), order((sku, 2)), stock=quantities,
                   usage={"hq": usage})
    decision = result.decisions[0]
    assert decision.node_id is None, cause
    assert says in decision.explanation
    assert "hq-backup offline" in decision.explanation
    assert "far has a 5d lane (promise 2d)" in decision.explanation
    assert "\n" not in decision.explanation


def test_an_exception_says_which_nodes_a_disruption_mode_leaves_out():
    midwest = node("midwest", {"east": (4, 8.0)}, status=NodeStatus.PAUSED)
    coast = node("coast", {"east": (1, 5.0)})
    net = network([midwest, coast], mode=Mode.DISRUPTION, regions=EAST_ONLY,
                  restrictions=[Restriction(frozenset({"east"}), ("midwest",))])
    decision = route(net, order(("X", 1)), stock={("midwest", "X"): 5, ("coast", "X"): 5}).decisions[0]
    assert decision.exception is ExceptionReason.NODES_UNAVAILABLE
    assert "midwest paused" in decision.explanation
    assert "coast left out by disruption mode" in decision.explanation


# ---------------------------------------------------------------- a result prepared ahead

PREP_CHAIN = (Rule.SINGLE_SHIPMENT, Rule.CHEAPEST, Rule.FASTEST)


def prepared_case():
    quick = node("quick", {"east": (1, 5.0)}, cutoff=time(11, 0), daily_capacity=2)
    slow = node("slow", {"east": (2, 5.0), "west": (2, 5.0)})
    net = network([quick, slow], rules=PREP_CHAIN)
    inputs = dict(order=order(("X", 2)), region_id="east", sellable={("quick", "X"): 5, ("slow", "X"): 5},
                  orders_today={"quick": 1}, now=NOW, opportunity={})
    return Router(net), inputs


def test_a_prepared_result_is_used_when_nothing_it_rests_on_changed():
    router, inputs = prepared_case()
    prepared = router.prepare(**inputs)
    assert nodes_of(prepared.result) == ["quick"]
    assert router.route(**inputs, prepared=prepared) is prepared.result
    assert router.route(**{**inputs, "now": NOW + timedelta(minutes=30)}, prepared=prepared) is prepared.result
    other = Router(router.network).prepare(**inputs)  # another router (network) made it
    assert router.route(**inputs, prepared=other) is not other.result


@pytest.mark.parametrize("change", [
    dict(sellable={("quick", "X"): 1, ("slow", "X"): 5}),
    dict(orders_today={"quick": 2}),  # at capacity now
    dict(opportunity={("quick", "X"): 9.0}),
    dict(now=NOW + timedelta(hours=2)),  # past quick's cutoff
    dict(order=order(("X", 6), ("X", 1))),
    dict(region_id="west"),
])
def test_a_prepared_result_is_not_used_once_an_input_changed(change):
    router, inputs = prepared_case()
    prepared = router.prepare(**inputs)
    now_inputs = {**inputs, **change}
    fresh = router.route(**now_inputs)
    assert fresh != prepared.result  # the change matters ...
    assert router.route(**now_inputs, prepared=prepared) == fresh  # ... and is seen
