"""Shipment facts and the metric counters against SQLite: facts merge per part, and the
counters stay exact when the same facts, orders and re-routes arrive again."""
from __future__ import annotations

from datetime import timedelta

from connector.domain.shipments import ShipmentFact
from connector.services.shipments import record_shipment
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
