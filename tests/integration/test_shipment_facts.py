"""Shipment facts and the metric counters against SQLite: facts merge per part, and the
counters stay exact when the same facts, orders and re-routes arrive again."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector.domain.shipments import ShipmentFact
from connector.services.metrics import Headline, headline, metrics
from connector.services.shipments import record_shipment
from connector.services.stock import set_manual_count
from connector.shipment_store import ShipmentStore
from tests.conftest import SHOPIFY_SHOP
from tests.e2e.test_webhooks import nyc_order


def counters(store, shop_id=SHOPIFY_SHOP) -> dict[str, dict]:
    """node id ('' for order-level) -> summed counters, over every day and region."""
    totals: dict[str, dict] = {}
    for row in store._dicts("SELECT * FROM metric_days WHERE shop_id = ?", (shop_id,)):
        into = totals.setdefault(row["node_id"], {})
        for name, value in row.items():
            if name not in ("shop_id", "day", "node_id", "region_id") and value:
                into[name] = round(into.get(name, 0) + value, 6)
    return totals


def routed_order(post_shopify, container, store, clock, order_id=5_560_001, lines=(("CANDLE-FIG", 1),)):
    order = nyc_order(order_id, lines=lines, now=clock())
    assert post_shopify(order).status_code == 200
    container.inbox.process(store)
    nodes = {d["node_id"] for d in store.current_decisions(SHOPIFY_SHOP, str(order_id))}
    return order, str(order_id), nodes


def test_routing_counts_the_order_and_its_part_once(post_shopify, container, store, clock):
    order, order_id, nodes = routed_order(post_shopify, container, store, clock)
    [node] = nodes
    assert counters(store)[""] == {"orders_decided": 1, "orders_routed": 1}
    assert counters(store)[node] == {"parts_routed": 1}

    # The same order again (a repeated webhook under another id, an update) counts nothing new.
    order["updated_at"] = (clock() + timedelta(minutes=5)).isoformat()
    post_shopify(order, "orders/updated")
    container.inbox.process(store)
    assert counters(store)[""] == {"orders_decided": 1, "orders_routed": 1}
    assert counters(store)[node] == {"parts_routed": 1}


def test_a_fact_counts_once_however_often_it_arrives(post_shopify, container, store, clock):
    _, order_id, nodes = routed_order(post_shopify, container, store, clock)
    [node] = nodes
    shipped = ShipmentFact(source="manual", shipped_at=clock() + timedelta(hours=1), carrier="UPS",
                           tracking_number="1Z999")
    delivered = ShipmentFact(source="3pl:shipbob", delivered_at=clock() + timedelta(days=2), first_attempt_ok=True)
    for _ in range(3):
        with store.write():
            record_shipment(store, SHOPIFY_SHOP, order_id, node, shipped, clock())
            record_shipment(store, SHOPIFY_SHOP, order_id, node, delivered, clock())
    totals = counters(store)
    assert totals[node] == {"parts_routed": 1, "shipped": 1, "on_time": 1, "in_full": 1, "delivered": 1,
                            "delivery_days": 2.0, "first_attempt_known": 1, "first_attempt_ok": 1,
                            "cost": totals[node]["cost"], "cost_known": 1}
    assert totals[node]["cost"] > 0
    assert totals[""]["orders_shipped"] == 1
    fact, counted = ShipmentStore(store).fact(SHOPIFY_SHOP, order_id, node)
    assert (fact.carrier, fact.tracking_number, fact.first_attempt_ok) == ("UPS", "1Z999", True)
    assert counted.delivered == 1


def test_a_late_ship_time_moves_the_part_from_on_time_to_late(post_shopify, container, store, clock):
    _, order_id, nodes = routed_order(post_shopify, container, store, clock)
    [node] = nodes
    with store.write():
        record_shipment(store, SHOPIFY_SHOP, order_id, node,
                        ShipmentFact(source="manual", shipped_at=clock() + timedelta(days=3)), clock())
    assert counters(store)[node].get("on_time", 0) == 0
    with store.write():  # an earlier ship time reported later: the part shipped when its first parcel left
        record_shipment(store, SHOPIFY_SHOP, order_id, node,
                        ShipmentFact(source="shopify", shipped_at=clock() + timedelta(hours=1)), clock())
    assert counters(store)[node]["on_time"] == 1
    assert counters(store)[node]["shipped"] == 1


def test_an_order_shipped_from_two_nodes_is_one_split_order(post_shopify, container, store, clock):
    # A serum only the cold room keeps and a candle it does not: two parcels.
    _, order_id, nodes = routed_order(post_shopify, container, store, clock, 5_560_002,
                                      lines=(("SERUM-ROSE", 1), ("CANDLE-FIG", 1)))
    assert len(nodes) == 2
    for node in sorted(nodes):
        with store.write():
            record_shipment(store, SHOPIFY_SHOP, order_id, node,
                            ShipmentFact(source="manual", shipped_at=clock() + timedelta(hours=1)), clock())
    totals = counters(store)
    assert totals[""]["orders_shipped"] == 1 and totals[""]["split_orders"] == 1
    assert all(totals[node]["split_parts"] == 1 for node in nodes)
    report = metrics(store, SHOPIFY_SHOP, since=clock().date(), until=clock().date(), now=clock())
    assert report.total.split_rate == 1.0 and report.total.shipped == 2 and report.total.orders_routed == 1
    assert report.total.cost_per_order == pytest.approx(sum(report.nodes[n].cost_per_order for n in nodes))


def test_a_rerouted_line_counts_its_new_node_once_and_the_order_still_once(post_shopify, container, store, clock):
    _, order_id, nodes = routed_order(post_shopify, container, store, clock, 5_560_003)
    [first] = nodes
    set_manual_count(store, SHOPIFY_SHOP, first, "CANDLE-FIG", 0, clock(), routing=container.inbox.routing)
    [second] = {d["node_id"] for d in store.current_decisions(SHOPIFY_SHOP, order_id)}
    assert second != first
    totals = counters(store)
    assert totals[""] == {"orders_decided": 1, "orders_routed": 1}
    assert totals[first]["parts_routed"] == 1 and totals[second]["parts_routed"] == 1


def test_lines_no_node_has_stock_for_are_exceptions_and_stock_outs_once(post_shopify, container, store, clock):
    for node in ("central", "ne-micro", "popup-soho", "west-3pl"):
        store.set_stock(SHOPIFY_SHOP, node, "CANDLE-FIG", on_hand=0, committed=0, available=0, source="test",
                        now=clock())
    order, order_id, nodes = routed_order(post_shopify, container, store, clock, 5_560_004,
                                          lines=(("CANDLE-FIG", 3),))
    assert nodes == {None}
    order["updated_at"] = (clock() + timedelta(minutes=1)).isoformat()
    post_shopify(order, "orders/updated")  # routed again: still no stock, still one exception line
    container.inbox.process(store)
    assert counters(store)[""] == {"orders_decided": 1, "orders_with_exception": 1, "exception_lines": 1}
    report = metrics(store, SHOPIFY_SHOP, since=clock().date(), until=clock().date(), now=clock())
    assert report.total.exception_rate == 1.0 and report.total.orders_routed == 0
    assert [(s.sku, s.lines, s.units) for s in report.stockouts] == [("CANDLE-FIG", 1, 3)]
    assert headline(store, SHOPIFY_SHOP, clock()).open_exceptions == 1


def test_a_fact_before_its_order_counts_when_the_order_is_routed(post_shopify, container, store, clock):
    with store.write():
        record_shipment(store, SHOPIFY_SHOP, "5560005", "ne-micro",
                        ShipmentFact(source="manual", shipped_at=clock() + timedelta(hours=1)), clock())
    assert counters(store) == {}
    routed_order(post_shopify, container, store, clock, 5_560_005)
    assert counters(store)["ne-micro"]["shipped"] == 1


def test_headline_counts_today_and_the_last_seven_days(post_shopify, container, store, clock):
    empty = headline(store, SHOPIFY_SHOP, clock())
    assert empty == Headline(orders_routed_today=0, on_time_rate_7d=None, split_rate_7d=None, shipped_7d=0,
                             open_exceptions=0)
    _, order_id, [node] = routed_order(post_shopify, container, store, clock, 5_560_006)
    routed_order(post_shopify, container, store, clock, 5_560_007)
    with store.write():
        record_shipment(store, SHOPIFY_SHOP, order_id, node,
                        ShipmentFact(source="manual", shipped_at=clock() + timedelta(days=3)), clock())
    figures = headline(store, SHOPIFY_SHOP, clock())
    assert (figures.orders_routed_today, figures.shipped_7d) == (2, 1)
    assert (figures.on_time_rate_7d, figures.split_rate_7d) == (0.0, 0.0)
    # Eight days on, those orders are out of the window.
    assert headline(store, SHOPIFY_SHOP, clock() + timedelta(days=8)).shipped_7d == 0


def test_a_node_filter_keeps_to_that_nodes_parcels(post_shopify, container, store, clock):
    _, order_id, [node] = routed_order(post_shopify, container, store, clock, 5_560_008)
    with store.write():
        record_shipment(store, SHOPIFY_SHOP, order_id, node,
                        ShipmentFact(source="manual", shipped_at=clock() + timedelta(hours=1)), clock())
    day = clock().date()
    assert metrics(store, SHOPIFY_SHOP, since=day, until=day, node_id=node, now=clock()).total.shipped == 1
    other = metrics(store, SHOPIFY_SHOP, since=day, until=day, node_id="cold-room", now=clock())
    assert other.total.shipped == 0 and other.total.on_time_rate is None and other.regions == {}
