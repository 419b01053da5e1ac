"""The routing-quality benchmark's simulator (bench/routing_quality.py): one cost
function for every policy, stock conservation, and a trace small enough to check
greedy, the router and the hindsight optimum by hand."""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from connector.domain.model import Lane, Mode, ModePolicy, Network, Node, Region, RoutingPolicy, Rule

_PATH = Path(__file__).resolve().parents[2] / "bench" / "routing_quality.py"


def _load():
    name = "routing_quality"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


rq = _load()
COSTS = rq.Costs(late_penalty=10.0, lost_sale=30.0)


def tiny_network() -> Network:
    """Regions a and b (2-day promise). p: cheap partner, reaches both in 2 days and
    is the only node meeting b's promise; e: reaches only a, dearer; h: hub, backup
    of both, 4 days (late) everywhere."""
    regions = {r: Region(r, r, promise_days=2) for r in ("a", "b")}

    def node(id, lanes, backups=()):
        return Node(id=id, name=id, kind="3pl", role="evergreen", backups=backups,
                    lanes={r: Lane(r, d, c) for r, (d, c) in lanes.items()})

    nodes = {
        "p": node("p", {"a": (2, 4.0), "b": (2, 4.0)}, ("h",)),
        "e": node("e", {"a": (1, 6.0)}, ("h",)),
        "h": node("h", {"a": (4, 9.0), "b": (4, 9.0)}),
    }
    chain = (Rule.CHEAPEST, Rule.SINGLE_SHIPMENT, Rule.FASTEST)
    return Network(shop_id="t", timezone="America/New_York", regions=regions, nodes=nodes, sku_rules=(),
                   routing=RoutingPolicy(Mode.NORMAL, {m: ModePolicy(chain) for m in Mode}))


def tiny_trace() -> "rq.Trace":
    """One unit of X at each node. Day 0: a wants 1 X. Day 1: b wants 1 X. Day 2: b
    wants 2 X (no node ever holds 2: lost by everyone)."""
    orders = [
        [rq.SimOrder("o1", 0, "a", (("X", 1),))],
        [rq.SimOrder("o2", 1, "b", (("X", 1),))],
        [rq.SimOrder("o3", 2, "b", (("X", 2),))],
    ]
    coords = {"p": (36.0, -87.0), "e": (40.0, -77.0), "h": (33.0, -97.0), "a": (37.0, -86.0), "b": (35.0, -88.0)}
    return rq.Trace(network=tiny_network(), days=3, orders=orders, history=[],
                    initial={("p", "X"): 1, ("e", "X"): 1, ("h", "X"): 1}, replenishment={}, outages={},
                    coords=coords, markets=dict.fromkeys(coords, "US"), skus=("X",), category={"X": "x"})


class FixedPrices:
    def __init__(self, prices):
        self.prices = prices

    def __call__(self, ctx, stock):
        return self.prices


def test_order_cost_counts_each_shipment_late_penalty_and_lost_units():
    net = tiny_network()
    order = rq.SimOrder("o", 0, "b", (("X", 1), ("Y", 2), ("Z", 3)))
    tally = rq.Tally()
    # p ships X within b's promise (4), h ships Y late (9 + 10), Z (3 units) is lost (90).
    assert rq.order_cost(net, order, {0: "p", 1: "h", 2: None}, COSTS, tally) == pytest.approx(4 + 19 + 90)
    assert (tally.shipments, tally.late_shipments, tally.split_orders, tally.lost_lines, tally.lost_units) == (2, 1, 1, 1, 3)
    # Two lines from one node are one shipment.
    assert rq.order_cost(net, rq.SimOrder("o", 0, "b", (("X", 1), ("Y", 1))), {0: "p", 1: "p"}, COSTS) == 4


def test_tiny_trace_by_hand():
    trace = tiny_trace()
    greedy = rq.simulate(trace, rq.ShopifyGreedy(trace), COSTS)
    plain = rq.simulate(trace, rq.RouterPolicy(trace, "router"), COSTS)
    priced = rq.simulate(trace, rq.RouterPolicy(trace, "router + prices", FixedPrices({("p", "X"): 5.0})), COSTS)
    best = rq.hindsight(trace, COSTS, integral=True)
    bound = rq.hindsight(trace, COSTS, integral=False)

    # Greedy and the plain router both take the closest / cheapest node p for a, so b's
    # order goes late from the hub (9 + 10) and the 2-unit order is lost (60).
    assert greedy.assignments == {"o1": {0: "p"}, "o2": {0: "h"}, "o3": {0: None}}
    assert greedy.tally.total == pytest.approx(4 + 19 + 60)
    assert plain.assignments == greedy.assignments
    # A dual price of 5 on p's unit makes e (6) cheaper than p (4 + 5) for a: p is kept for b.
    assert priced.assignments == {"o1": {0: "e"}, "o2": {0: "p"}, "o3": {0: None}}
    assert priced.tally.total == pytest.approx(6 + 4 + 60)
    # Hindsight: the same plan, proven optimal; the LP relaxation bounds it from below.
    assert best.optimal and best.objective == pytest.approx(70)
    assert best.outcome.tally.total == pytest.approx(best.objective)
    assert bound.objective <= best.objective + 1e-6
    assert rq.gap_share(greedy.tally.total, priced.tally.total, best.objective) == pytest.approx(1.0)
    assert rq.gap_share(greedy.tally.total, plain.tally.total, best.objective) == pytest.approx(0.0)
    for outcome in (greedy, plain, priced, best.outcome):
        assert rq.check_conservation(trace, outcome) == []
        assert outcome.tally.units_shipped + outcome.tally.lost_units == 4


def test_outage_is_seen_by_every_policy_and_the_hindsight_model():
    trace = tiny_trace()
    trace.outages = {"p": frozenset({1})}  # p offline the day b's 1-unit order comes
    greedy = rq.simulate(trace, rq.ShopifyGreedy(trace), COSTS)
    plain = rq.simulate(trace, rq.RouterPolicy(trace, "router"), COSTS)
    best = rq.hindsight(trace, COSTS, integral=True)
    assert greedy.assignments["o2"] == {0: "h"} and plain.assignments["o2"] == {0: "h"}
    assert best.outcome.assignments["o2"] == {0: "h"}
    # With p out for b, the hindsight keeps nothing back: p serves a (cheapest), h serves b late.
    assert best.objective == pytest.approx(4 + 19 + 60)


def test_non_idling_hindsight_cannot_drop_a_line_that_stock_could_ship():
    """Hindsight may leave a line unfilled to keep the units for a later, dearer order;
    the non-idling variant may not, like greedy and the router."""
    trace = tiny_trace()
    trace.initial[("h", "X")] = 2  # the hub alone could ship day 2's 2-unit order (late)
    trace.orders[1] = [rq.SimOrder("o2", 1, "b", (("X", 1),)), rq.SimOrder("o2b", 1, "a", (("X", 1),))]
    free = rq.hindsight(trace, COSTS, integral=True)
    held = rq.hindsight(trace, COSTS, integral=True, non_idling=3)
    greedy = rq.simulate(trace, rq.ShopifyGreedy(trace), COSTS)
    # Free: e -> o1 (6), p -> o2 (4), o2b dropped (30) although the hub had 2, hub -> o3 (19).
    assert free.objective == pytest.approx(6 + 4 + 30 + 19)
    assert free.outcome.assignments["o2b"] == {0: None}
    assert rq.dropped_on_purpose(trace, free.outcome) == (1, 1)
    # Non-idling: o2b must ship, so one hub unit goes and o3 is lost (60); greedy gets the same cost.
    assert held.objective == pytest.approx(6 + 4 + 19 + 60)
    assert rq.dropped_on_purpose(trace, held.outcome) == (0, 0)
    assert greedy.tally.total == pytest.approx(held.objective)
    assert rq.dropped_on_purpose(trace, greedy) == (0, 0)


def test_generated_trace_policies_bounded_by_hindsight_and_conserve_stock():
    trace = rq.make_trace(days=8, orders_per_day=12, seed=4, history_days=21)
    greedy = rq.simulate(trace, rq.ShopifyGreedy(trace), COSTS)
    plain = rq.simulate(trace, rq.RouterPolicy(trace, "router"), COSTS)
    outcomes = [greedy, plain]
    try:
        pricer = rq.DualPricer(trace, COSTS, horizon_days=7, weeks=3)
    except ImportError:
        pricer = None
    if pricer is not None:
        outcomes.append(rq.simulate(trace, rq.RouterPolicy(trace, "ours", pricer), COSTS))
        assert pricer.calls == trace.days
    best = rq.hindsight(trace, COSTS, integral=True, time_limit=60)
    bound = rq.hindsight(trace, COSTS, integral=False, time_limit=60)
    assert best.optimal
    assert best.outcome.tally.total == pytest.approx(best.objective)
    assert bound.objective <= best.objective + 1e-6
    demand = sum(q for day in trace.orders for o in day for _s, q in o.lines)
    for outcome in outcomes + [best.outcome]:
        assert rq.check_conservation(trace, outcome) == []
        assert outcome.tally.units_shipped + outcome.tally.lost_units == demand
        assert best.objective <= outcome.tally.total + 1e-6
    for outcome in outcomes:
        assert rq.dropped_on_purpose(trace, outcome) == (0, 0)  # policies never idle stock


def test_forecast_only_sees_sales_before_the_day():
    trace = rq.make_trace(days=3, orders_per_day=5, seed=2, history_days=14)
    ctx = rq.Day(1, trace.now(1), trace.network, frozenset(), tuple(trace.history) + tuple(trace.orders[0]),
                 trace.replenishment)
    pytest.importorskip("connector.domain.forecast")
    demand = rq.forecast_horizon(trace, ctx, 7, 2)
    assert set(demand) == {(s, r) for s in trace.skus for r in trace.network.regions}
    leaked = rq.Day(1, trace.now(1), trace.network, frozenset(), tuple(trace.orders[1]), trace.replenishment)
    with pytest.raises(AssertionError):
        rq.forecast_horizon(trace, leaked, 7, 2)


def test_stock_prices_lie_between_what_a_unit_more_saves_and_a_unit_less_costs():
    """A dual price is a subgradient of the LP's optimal cost in the stock: at least what
    a little more stock saves per unit, at most what a little less costs per unit (the
    two differ where the LP is degenerate, as here for p)."""
    trace = tiny_trace()
    prices = rq.stock_prices(trace, COSTS)
    assert set(prices) == {("p", "X"), ("h", "X")}  # one more unit at e saves nothing: a's order is all it serves

    def lp_with(key, delta):
        changed = replace(trace, initial={**trace.initial, key: trace.initial[key] + delta})
        return rq.hindsight(changed, COSTS, integral=False).objective

    base = rq.hindsight(trace, COSTS, integral=False).objective
    for key in trace.initial:
        saved = (base - lp_with(key, 0.01)) / 0.01
        lost = (lp_with(key, -0.01) - base) / 0.01
        assert saved - 1e-6 <= prices.get(key, 0.0) <= lost + 1e-6, (key, saved, prices.get(key), lost)


def test_clairvoyant_prices_see_the_rest_of_the_trace_renumbered_from_the_night():
    trace = tiny_trace()
    trace.outages = {"e": frozenset({0, 2})}
    trace.replenishment = {1: {("e", "X"): 1}, 2: {("p", "X"): 1}}
    pricer = rq.ClairvoyantPricer(trace, COSTS)
    ctx = rq.Day(1, trace.now(1), trace.network, frozenset(), (), trace.replenishment)
    rest = pricer.rest_of_trace(ctx, {("p", "X"): 1, ("e", "X"): 0, ("h", "X"): 1})
    assert rest.days == 2
    assert [[(o.id, o.day) for o in day] for day in rest.orders] == [[("o2", 0)], [("o3", 1)]]
    assert rest.initial == {("p", "X"): 1, ("h", "X"): 1}  # today's delivery is already in the stock
    assert rest.replenishment == {1: {("p", "X"): 1}}
    assert rest.outages == {"e": frozenset({1})}
    assert rest.history == []


def test_router_with_clairvoyant_prices_reaches_the_tiny_optimum():
    trace = tiny_trace()
    pricer = rq.ClairvoyantPricer(trace, COSTS)
    priced = rq.simulate(trace, rq.RouterPolicy(trace, "clairvoyant", pricer), COSTS)
    best = rq.hindsight(trace, COSTS, integral=True)
    assert pricer.calls == trace.days
    assert priced.assignments == best.outcome.assignments
    assert priced.tally.total == pytest.approx(best.objective)
