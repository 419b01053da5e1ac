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

from connector.domain.shipments import ShipmentFact, merge
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
