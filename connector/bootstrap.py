"""The composition root: the one place that builds settings, stores, adapters
and services. The web app, the CLI, the scheduler and the tests all call
``build``; nothing is built at import time."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from connector.config import Settings, load_settings
from connector.services.inbox import Inbox
from connector.store import Store


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Container:
    settings: Settings
    clock: Callable[[], datetime]
    inbox: Inbox
    storefronts: dict = field(default_factory=dict)

    def open_store(self) -> Store:
        """A new connection: one per thread, request or job."""
        return Store.open(self.settings.database_path, self.settings.busy_timeout_ms)

    def init_database(self) -> list[str]:
        """Create or migrate the database and load shops, regions and nodes from the config."""
        store = self.open_store()
        try:
            applied = store.migrate()
            sync_network(store, self.settings, self.clock())
            return applied
        finally:
            store.close()


def build(settings: Settings | None = None, *, config_path: str | None = None,
          clock: Callable[[], datetime] = utc_now) -> Container:
    from adapters.shopify import ShopifyStorefront
    from adapters.woocommerce import WooCommerceStorefront

    settings = settings if settings is not None else load_settings(config_path)
    storefronts = {"shopify": ShopifyStorefront(), "woocommerce": WooCommerceStorefront()}
    inbox = Inbox(settings, storefronts, clock)
    return Container(settings=settings, clock=clock, inbox=inbox, storefronts=storefronts)


def sync_network(store: Store, settings: Settings, now: datetime) -> None:
    """Configuration is the source of truth for shops, regions and nodes."""
    shops, regions, nodes = [], [], []
    for shop in settings.shops.values():
        network = shop.network
        shops.append({"id": shop.id, "platform": shop.platform, "domain": shop.shop_domain or shop.store_url,
                      "timezone": shop.timezone})
        for region in network.regions.values():
            regions.append({
                "shop_id": shop.id, "id": region.id, "name": region.name, "promise_days": region.promise_days,
                "fallback": region.fallback,
                "spec": json.dumps({"countries": sorted(region.countries), "provinces": sorted(region.provinces),
                                    "postal_prefixes": sorted(region.postal_prefixes)}),
            })
        for node in network.nodes.values():
            nodes.append({
                "shop_id": shop.id, "id": node.id, "name": node.name, "kind": node.kind, "role": node.role,
                "status": node.status.value, "priority": node.priority,
                "spec": json.dumps({
                    "lanes": {r: {"transit_days": l.transit_days, "cost_per_order": l.cost_per_order}
                              for r, l in node.lanes.items()},
                    "capabilities": sorted(node.capabilities),
                    "cutoff": node.cutoff.isoformat() if node.cutoff else None,
                    "daily_capacity": node.daily_capacity,
                    "active_from": node.active_from, "active_until": node.active_until,
                    "backups": list(node.backups),
                }, default=str),
            })
    store.sync_shops(shops, regions, nodes, now)
