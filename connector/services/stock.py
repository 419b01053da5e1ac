"""Counts typed in by hand (the CLI now, the settings page later), and what happens
when any count (a hand count or a sync) leaves a node holding fewer units than are
reserved there."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Sequence

from connector.domain.model import Order, OrderLine
from connector.inventory_store import InventoryStore
from connector.services.orders import ShopRouting, reconcile, request_push
from connector.store import ActiveReservation, Store

RoutingFor = Callable[[Store, str, datetime], ShopRouting]  # Inbox.routing
# ExceptionActions.stock_arrived: (store, shop id, nodes, SKUs, source, now) -> lines routed
StockArrived = Callable[[Store, str, Sequence[str], Sequence[str] | None, str, datetime], list]


@dataclass(frozen=True)
class Rerouted:
    """An over-reserved line routed again: to ``to_node``, or None (now an exception)."""

    order_number: str
    line_id: str
    sku: str
    quantity: int
    from_node: str
    to_node: str | None


def set_manual_count(store: Store, shop_id: str, node_id: str, sku: str, quantity: int, now: datetime, *,
                     routing: RoutingFor, actor: str = "cli", stock_arrived: StockArrived | None = None
                     ) -> tuple[int | None, list[Rerouted]]:
    """Set a node's on-hand = available count for a SKU; audited. Returns the previous
    available and the reserved lines a lower count sent elsewhere. ``stock_arrived``
    (``ExceptionActions.stock_arrived``): exception lines the count can ship are routed
    in the same transaction."""
    with store.write():
        previous = store.stock_level(shop_id, node_id, sku)
        store.set_stock(shop_id, node_id, sku, on_hand=quantity, committed=0, available=quantity, source="manual",
                        now=now)
        InventoryStore(store).stock_changed(shop_id, rows=[(node_id, sku)])
        store.event(shop_id, "stock.manual_count", f"{node_id}/{sku}",
                    {"node_id": node_id, "sku": sku, "from": previous, "to": quantity, "by": actor}, now)
        rerouted = resolve_over_reserved(store, routing(store, shop_id, now), shop_id, [node_id],
                                         f"hand count at {when_text(now)}", now)
        if stock_arrived is not None and quantity > (previous or 0):
            stock_arrived(store, shop_id, [node_id], [sku], "hand count", now)
    return previous, rerouted


def resolve_over_reserved(store: Store, routing: ShopRouting, shop_id: str, node_ids: Sequence[str], cause: str,
                          now: datetime) -> list[Rerouted]:
    """Inside the caller's write transaction, right after ``node_ids``' stock changed:
    where a node now holds fewer units of a SKU than are reserved there, release its
    newest reservations until the rest fit, and route those lines again through the
    order's normal routing (the node's sellable stock is what is left after the
    reservations kept, so it only takes a line back if that fits). A line no node can
    take becomes an exception whose reason says what the count found.

    Newest first: the older orders were promised first and are the likeliest to be
    picked already; the units that vanished were, in order of promise, the last ones.
    Lines a 3PL already has stay put (they are at the 3PL, whose committed count
    covers them): ``Store.over_reserved`` keeps showing what they exceed.
    """
    released: dict[str, list[tuple[ActiveReservation, str]]] = {}
    for row in store.over_reserved(shop_id, node_ids):
        why = (f"{row['node_id']} holds {row['available']} of {row['sku']} after the {cause}, "
               f"{row['reserved']} were reserved")
        excess, freed, at_3pl = row["reserved"] - row["available"], [], {}
        for order_id, reservation in store.reservations_at(shop_id, row["node_id"], row["sku"]):
            if excess <= 0:
                break
            if order_id not in at_3pl:
                at_3pl[order_id] = store.lines_with_3pl(shop_id, order_id)
            if reservation.line_id in at_3pl[order_id]:
                continue
            store.release(reservation, shop_id, f"over-reserved: {why}", now)
            released.setdefault(order_id, []).append((reservation, why))
            freed.append([order_id, reservation.line_id, reservation.quantity])
            excess -= reservation.quantity
        store.event(shop_id, "stock.over_reserved", f"{row['node_id']}/{row['sku']}",
                    {**row, "cause": cause, "released": freed, "still_over": max(excess, 0)}, now)
    rerouted: list[Rerouted] = []
    # The oldest order first: it gets the first pick of what is left elsewhere.
    for order_id in sorted(released, key=lambda o: min(r.id for r, _ in released[o])):
        stored = store.order(shop_id, order_id)
        lines = tuple(OrderLine(l["line_id"], l["sku"], l["quantity"], bool(l["requires_shipping"]), l["title"] or "")
                      for l in store.order_lines(shop_id, order_id))
        reconcile(store, routing, Order(shop_id, order_id, stored.number, "", now, stored.updated_at or now, None,
                                        lines), stored.region_id, now)
        decisions = {d["line_id"]: d for d in store.current_decisions(shop_id, order_id)}
        still_at = {r.node_id for r in store.active_reservations(shop_id, order_id)}
        for reservation, why in released[order_id]:
            to_node = decisions[reservation.line_id]["node_id"]
            store.prefix_explanation(shop_id, order_id, reservation.line_id,
                                     f"{why}; routed again: " if to_node else f"{why}; no node can take it: ")
            if reservation.node_id not in still_at:  # its 3PL job, not sent yet, would carry nothing
                store.cancel_forward_jobs(shop_id, order_id, reservation.node_id)
            rerouted.append(Rerouted(stored.number, reservation.line_id, reservation.sku, reservation.quantity,
                                     reservation.node_id, to_node))
    request_push(store, routing, shop_id, {r.sku for r in rerouted}, now)
    return rerouted


def when_text(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
