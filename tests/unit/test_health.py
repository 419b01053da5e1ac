from __future__ import annotations

from datetime import datetime, timedelta, timezone

from connector.domain.health import Freshness, StalePolicy, apply_freshness, discounted
from connector.domain.model import Lane, Mode, ModePolicy, Network, Node, NodeStatus, Region, RoutingPolicy

NOW = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)
POLICY = StalePolicy(timedelta(hours=2), exclude=False, discount=0.5)


def network(*nodes):
    return Network("s", "UTC", {"r": Region("r", "R", 2, countries=frozenset({"US"}))}, {n.id: n for n in nodes}, (),
                   RoutingPolicy(Mode.NORMAL, {m: ModePolicy(()) for m in Mode}))


def node(id, status=NodeStatus.ACTIVE):
    return Node(id, id, "3pl", "evergreen", {"r": Lane("r", 1, 1.0)}, status=status)


def test_fresh_nodes_and_manual_nodes_are_untouched():
    net = network(node("a"), node("manual"))
    adjusted, factors = apply_freshness(net, {"a": Freshness(NOW - timedelta(minutes=30))}, POLICY, NOW)
    assert adjusted == net and factors == {}


def test_stale_node_is_degraded_with_a_reason_and_a_factor():
    adjusted, factors = apply_freshness(network(node("a")), {"a": Freshness(NOW - timedelta(hours=5))}, POLICY, NOW)
    assert adjusted.nodes["a"].status is NodeStatus.DEGRADED
    assert adjusted.nodes["a"].status_note == "stock data 5 h old; stock counted at 50%"
    assert factors == {"a": 0.5}


def test_never_synced_and_failing_sources_are_named():
    adjusted, _ = apply_freshness(network(node("a")), {"a": Freshness(None, "ProviderAuthError: 401")}, POLICY, NOW)
    assert adjusted.nodes["a"].status_note.startswith("never synced; last sync failed: ProviderAuthError: 401")


def test_exclude_policy_takes_the_node_offline():
    policy = StalePolicy(timedelta(hours=2), exclude=True, discount=0.5)
    adjusted, factors = apply_freshness(network(node("a")), {"a": Freshness(NOW - timedelta(days=3))}, policy, NOW)
    assert adjusted.nodes["a"].status is NodeStatus.OFFLINE and "3 days old" in adjusted.nodes["a"].status_note
    assert factors == {"a": 0.0}


def test_paused_nodes_stay_paused():
    adjusted, factors = apply_freshness(network(node("a", NodeStatus.PAUSED)), {"a": Freshness(None)}, POLICY, NOW)
    assert adjusted.nodes["a"].status is NodeStatus.PAUSED and factors == {}


def test_discount_rounds_down():
    assert discounted({("a", "X"): 5, ("b", "X"): 5}, {"a": 0.5}) == {("a", "X"): 2, ("b", "X"): 5}
