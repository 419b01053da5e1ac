"""Properties of the router on random networks and orders (hypothesis)."""
from __future__ import annotations

from datetime import datetime, time, timezone

from hypothesis import assume, given, settings, strategies as st

from connector.domain.model import (
    Address, Lane, Mode, ModePolicy, Network, Node, NodeStatus, Order, OrderLine, Region, RoutingPolicy, Rule,
)
from connector.domain.routing import Router, _Tally, _fits, _key_prefix

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
REGIONS = {
    "a": Region("a", "A", 2, countries=frozenset({"US"}), fallback="b"),
    "b": Region("b", "B", 4, countries=frozenset({"CA"})),
}
SKUS = ["S1", "S2", "S3", "S4"]


@st.composite
def scenarios(draw):
    nodes = []
    for i in range(draw(st.integers(1, 5))):
        lanes = {r: Lane(r, draw(st.integers(0, 5)), draw(st.sampled_from([3.0, 5.0, 8.0])))
                 for r in draw(st.sets(st.sampled_from(["a", "b"]), min_size=1))}
        nodes.append(Node(
            id=f"n{i}", name=f"n{i}", kind="3pl", role="evergreen", lanes=lanes,
            status=draw(st.sampled_from([NodeStatus.ACTIVE, NodeStatus.ACTIVE, NodeStatus.DEGRADED,
                                         NodeStatus.OFFLINE])),
            cutoff=draw(st.sampled_from([None, time(9), time(20)])),
            daily_capacity=draw(st.sampled_from([None, 5])),
            priority=draw(st.sampled_from([10, 50, 100])),
        ))
    ids = [n.id for n in nodes]
    nodes = [n if not ids else Node(**{**n.__dict__, "backups": tuple(b for b in draw(
        st.lists(st.sampled_from(ids), max_size=2, unique=True)) if b > n.id)}) for n in nodes]
    chain = tuple(draw(st.permutations(list(Rule)))[: draw(st.integers(1, 5))])
    lines = draw(st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=4))
    stock = {(n.id, sku): draw(st.integers(0, 8)) for n in nodes for sku in SKUS}
    usage = {n.id: draw(st.integers(0, 6)) for n in nodes}
    network = Network("s", "America/New_York", REGIONS, {n.id: n for n in nodes}, (),
                      RoutingPolicy(Mode.NORMAL, {m: ModePolicy(chain) for m in Mode}))
    order = Order("s", "o", "#1", "shopify", NOW, NOW, Address("US", None, None),
                  tuple(OrderLine(f"l{i}", sku, qty) for i, (sku, qty) in enumerate(lines)))
    return network, order, stock, usage


@settings(max_examples=1000, deadline=None)
@given(scenarios())
def test_common_best_shortcut_gives_what_the_full_search_gives(scenario):
    network, order, stock, usage = scenario
    fast = Router(network).route(order, "a", stock, usage, NOW)
    full_router = Router(network)
    full_router._common_best = lambda *args: []  # force the full plan search
    assert fast == full_router.route(order, "a", stock, usage, NOW)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_routed_lines_never_exceed_sellable_stock_and_are_eligible(scenario):
    network, order, stock, usage = scenario
    result = Router(network).route(order, "a", stock, usage, NOW)
    taken: dict[tuple[str, str], int] = {}
    for decision in result.routed:
        node = network.nodes[decision.node_id]
        assert node.status in (NodeStatus.ACTIVE, NodeStatus.DEGRADED)
        assert node.lanes.keys() & {"a", "b"}
        key = (decision.node_id, decision.sku)
        taken[key] = taken.get(key, 0) + decision.quantity
    assert all(stock.get(key, 0) >= qty for key, qty in taken.items())
    assert {d.line_id for d in result.decisions} == {l.line_id for l in order.lines}


class WholeOrderRivals(Router):
    """The deciding rule as it was first written: every rival plan built in full,
    checked for stock and scored over the whole order (quadratic in lines)."""

    def _deciding_rule(self, best, best_key, others, lines, eligible, by_node, sellable, chain, opportunity,
                       node_key):
        keys = set(others)
        for item in lines:
            for c in sorted(eligible[item.line.line_id], key=lambda c: node_key(c, item.sku)):
                if c.node.id != best.get(item.line.line_id):
                    alternative = {**best, item.line.line_id: c.node.id}
                    if _fits(alternative, lines, sellable):
                        keys.add(self._plan_key(alternative, lines, by_node, sellable, chain, opportunity))
                    break
        labels = ["coverage", "promise", "availability", *[r.value for r in chain], "tiebreak"]
        rivals = sorted(keys - {best_key})
        if not rivals:
            return "only_option"
        return labels[next(i for i, (a, b) in enumerate(zip(best_key, rivals[0])) if a != b)]


@settings(max_examples=500, deadline=None)
@given(scenarios(), st.booleans(), st.data())
def test_rivals_scored_from_tallies_decide_as_rivals_scored_in_full(scenario, priced, data):
    network, order, stock, usage = scenario
    # Dyadic prices: sums are exact in floating point whichever order they are added in.
    opportunity = {key: data.draw(st.sampled_from([0.0, 0.25, 1.5, 3.0])) for key in stock} if priced else None
    assert (Router(network).route(order, "a", stock, usage, NOW, opportunity)
            == WholeOrderRivals(network).route(order, "a", stock, usage, NOW, opportunity))


@settings(max_examples=500, deadline=None)
@given(scenarios(), st.booleans(), st.data())
def test_a_plan_with_one_line_moved_scores_from_tallies_as_in_full(scenario, priced, data):
    network, order, stock, usage = scenario
    router = Router(network)
    by_node = {c.node.id: c for c in router._candidates("a", usage, NOW)}
    assume(by_node)
    lines, _ = router._routable_lines(order)
    ids = sorted(by_node)
    plan, left = {}, dict(stock)
    for item in lines:  # each line to a drawn node that still has the stock, or unrouted
        node_id = data.draw(st.sampled_from([None, *ids]))
        if node_id is not None and left.get((node_id, item.sku), 0) >= item.line.quantity:
            plan[item.line.line_id] = node_id
            left[(node_id, item.sku)] -= item.line.quantity
    assume(plan)
    chain = network.routing.current.rules
    opportunity = {key: data.draw(st.sampled_from([0.0, 0.25, 1.5])) for key in stock} if priced else {}
    tally = _Tally(plan, lines, stock, opportunity, chain)
    for item in lines:
        current = plan.get(item.line.line_id)
        for node_id in ids:
            if node_id == current:
                continue
            moved_plan = {**plan, item.line.line_id: node_id}
            moved = tally.moved(item, current, node_id)
            if not _fits(moved_plan, lines, stock):
                assert moved is None
                continue
            used, drained, least_left = moved
            unrouted = len(lines) - len(moved_plan)
            assert (_key_prefix([by_node[n] for n in used], unrouted, drained, least_left, chain)
                    == router._plan_key(moved_plan, lines, by_node, stock, chain, opportunity)[:-1])
