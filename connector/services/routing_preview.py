"""Routing preview (a dry run): how an order to an address would be routed now, in the
shop's current mode and in each other mode, from the stock the store holds — reading
only: nothing is reserved, counted or recorded.

It routes exactly as a real order does (``orders.prepare_route``): the same region
lookup, the sellable stock after the stale discount, the orders each node took today
and the allocation's opportunity costs, through the shop's own router for the current
mode (so the preview agrees with what the order would get) and a router over the same
network with only the mode changed for the others.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Sequence

from connector.domain.health import discounted
from connector.domain.model import Address, Mode, Order, OrderLine, RoutingResult
from connector.domain.routing import Router
from connector.services.orders import ShopRouting
from connector.store import Store


@dataclass(frozen=True)
class ModePreview:
    mode: Mode
    current: bool
    result: RoutingResult


def preview_order(shop_id: str, platform: str, ship_to: Address, lines: Sequence[tuple[str, int]],
                  now: datetime) -> Order:
    return Order(shop_id=shop_id, order_id="preview", number="preview", platform=platform, created_at=now,
                 updated_at=now, ship_to=ship_to,
                 lines=tuple(OrderLine(str(i), sku, quantity) for i, (sku, quantity) in enumerate(lines, 1)))


def preview(store: Store, routing: ShopRouting, order: Order, now: datetime) -> list[ModePreview]:
    """The current mode first, then the others in the Mode enum's order."""
    network = routing.network
    skus = {line.sku for line in order.lines if line.sku}
    region_id = routing.regions.resolve(order.ship_to, network.default_region)
    sellable = discounted(store.sellable(order.shop_id, skus), routing.factors)
    orders_today = store.orders_today(order.shop_id, routing.local_day(now))
    opportunity = store.opportunity_costs(order.shop_id, skus)
    current = network.routing.mode
    previews = [ModePreview(current, True, routing.router.route(order, region_id, sellable, orders_today, now,
                                                                opportunity))]
    for mode in Mode:
        if mode is current:
            continue
        router = Router(replace(network, routing=replace(network.routing, mode=mode)))
        previews.append(ModePreview(mode, False, router.route(order, region_id, sellable, orders_today, now,
                                                              opportunity)))
    return previews
