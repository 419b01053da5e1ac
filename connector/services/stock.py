"""Counts typed in by hand (the CLI now, the settings page later)."""
from __future__ import annotations

from datetime import datetime

from connector.store import Store


def set_manual_count(store: Store, shop_id: str, node_id: str, sku: str, quantity: int, now: datetime,
                     actor: str = "cli") -> int | None:
    """Set a node's on-hand = available count for a SKU; audited. Returns the previous available."""
    with store.write():
        previous = store.stock_level(shop_id, node_id, sku)
        store.set_stock(shop_id, node_id, sku, on_hand=quantity, committed=0, available=quantity, source="manual",
                        now=now)
        store.event(shop_id, "stock.manual_count", f"{node_id}/{sku}",
                    {"node_id": node_id, "sku": sku, "from": previous, "to": quantity, "by": actor}, now)
    return previous
