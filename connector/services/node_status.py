"""Each node of a shop as routing treats it now, with where its stock comes from and
how fresh it is: what `connector nodes` prints and the settings pages show."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from connector.config import ShopSettings
from connector.domain.model import Node
from connector.services.orders import ShopRouting
from connector.store import Store

RoutingFor = Callable[[Store, str, datetime], ShopRouting]  # Inbox.routing


@dataclass(frozen=True)
class NodeStatusView:
    node: Node  # as routing sees it now (a stale node degraded, with its note)
    routed_as: str  # routing's own verdict: "active", "offline (...)", "ranked down: ..."
    usable: bool
    fed_by: str  # "provider:location" or "manual counts"
    forwards_orders: bool
    last_sync_ok: str | None
    last_attempt: str | None
    sync_error: str | None  # the last attempt's error, when it failed
    over_reserved: tuple[dict, ...]  # rows of Store.over_reserved for this node


def node_statuses(store: Store, shop: ShopSettings, routing_for: RoutingFor, now: datetime) -> list[NodeStatusView]:
    routing = routing_for(store, shop.id, now)
    state = store.sync_state(shop.id)
    over = store.over_reserved(shop.id)
    orders_today = store.orders_today(shop.id, routing.local_day(now))
    views = []
    for node_id, node in routing.network.nodes.items():
        source = shop.sources[node_id]
        synced = state.get(node_id, {})
        verdict = routing.router.node_state(node, orders_today, now)
        views.append(NodeStatusView(
            node=node, routed_as=verdict.describe(), usable=verdict.usable,
            fed_by=f"{source.provider}:{source.location or '-'}" if source.provider else "manual counts",
            forwards_orders=source.forward_orders, last_sync_ok=synced.get("last_ok_at"),
            last_attempt=synced.get("last_attempt_at"), sync_error=synced.get("last_error"),
            over_reserved=tuple(r for r in over if r["node_id"] == node_id),
        ))
    return views
