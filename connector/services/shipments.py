"""Recording what is known about shipments: one merged fact per part (shop × order ×
node), whatever the source — a 3PL's shipment poll, a Shopify fulfillment webhook, a
WooCommerce order completed, a creator's "mark shipped" — with the metric counters
moved in the same transaction (see ``connector.shipment_store``).

Bulk seeding (benchmarks, imports) uses the same call: ``record_shipment`` per part
inside one ``store.write()`` per batch; orders must be stored (and routed, through
``Store.save_decisions``) first for their parts to count, or they are counted when
their order is first routed.
"""
from __future__ import annotations

from datetime import datetime

from connector.config import ShopSettings
from connector.domain.model import FulfillmentReported, Order
from connector.domain.shipments import ShipmentFact, fact_from_fulfillment, merge
from connector.shipment_store import ShipmentStore
from connector.store import Store


def record_shipment(store: Store, shop_id: str, order_id: str, node_id: str, fact: ShipmentFact,
                    now: datetime) -> None:
    """Merge ``fact`` into what is known about the part and keep the counters exact.
    Runs inside the caller's write transaction. A fact that adds nothing new (a webhook
    delivered again, a poll overlapping the last) changes nothing."""
    facts = ShipmentStore(store)
    known = facts.fact(shop_id, order_id, node_id)
    before_fact, before = known if known is not None else (None, None)
    merged = merge(before_fact, fact)
    if known is not None and merged == before_fact and before is not None:
        return
    counted = facts.contribution_for(shop_id, order_id, node_id, merged)
    facts.save_fact(shop_id, order_id, node_id, merged, counted, before, now)


def apply_fulfillment(store: Store, shop: ShopSettings, event: FulfillmentReported, now: datetime) -> str:
    """A Shopify fulfillment (created or updated) recorded against the node it shipped
    from: the node whose Shopify location it names, or else the one node its lines were
    routed to. Once shipped, that node holds no stock for those lines any more. Returns
    the inbox outcome."""
    if store.order(shop.id, event.order_id) is None:
        return "unknown_order"
    decisions = store.current_decisions(shop.id, event.order_id)
    node_id = _fulfilling_node(shop, event, decisions)
    if node_id is None:
        store.event(shop.id, "shipment.node_unknown", event.order_id,
                    {"fulfillment_id": event.fulfillment_id, "location_id": event.location_id}, now)
        return "node_unknown"
    fact = fact_from_fulfillment(event, _in_full(event, decisions, node_id))
    if fact is None:
        return f"fulfillment_{event.status}"
    record_shipment(store, shop.id, event.order_id, node_id, fact, now)
    if fact.shipped_at is not None:
        fulfilled = {line_id for line_id, _ in event.lines}
        for reservation in store.active_reservations(shop.id, event.order_id):
            if reservation.node_id == node_id and (not fulfilled or reservation.line_id in fulfilled):
                store.release(reservation, shop.id, "shipped", now)
    return "shipment_recorded"


def _fulfilling_node(shop: ShopSettings, event: FulfillmentReported, decisions: list[dict]) -> str | None:
    if event.location_id is not None:
        for node_id, location in shop.shopify_locations.items():
            if location.rsplit("/", 1)[-1] == event.location_id:
                return node_id
    lines = {line_id for line_id, _ in event.lines}
    nodes = {d["node_id"] for d in decisions if d["node_id"] and (not lines or d["line_id"] in lines)}
    return nodes.pop() if len(nodes) == 1 else None


def _in_full(event: FulfillmentReported, decisions: list[dict], node_id: str) -> bool | None:
    """Whether this fulfillment holds every line routed to the node, each in full (None:
    the fulfillment lists no lines, or nothing is routed there now)."""
    routed = {d["line_id"]: d["quantity"] for d in decisions if d["node_id"] == node_id}
    if not event.lines or not routed:
        return None
    shipped = dict(event.lines)
    return all(shipped.get(line_id, 0) >= quantity for line_id, quantity in routed.items())


def record_completed(store: Store, order: Order, now: datetime) -> None:
    """A store marked the order completed (WooCommerce): every node it is routed to shipped
    its part then. Called before the order is closed (which retires its decisions)."""
    if order.fulfilled_at is None:
        return
    nodes = {d["node_id"] for d in store.current_decisions(order.shop_id, order.order_id) if d["node_id"]}
    for node_id in sorted(nodes):
        record_shipment(store, order.shop_id, order.order_id, node_id,
                        ShipmentFact(source=order.platform, shipped_at=order.fulfilled_at, in_full=True), now)
