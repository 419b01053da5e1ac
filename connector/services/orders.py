"""Apply what a storefront says about an order: route new lines, keep, shrink
or release reservations, and record every decision with its reason.

All functions here run inside the caller's write transaction (see
``services.inbox``), so a decision and its reservation land together or not
at all.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from typing import Mapping

from connector.domain.health import discounted
from connector.domain.model import Order, OrderLine, RefundCreated
from connector.domain.regions import RegionIndex
from connector.domain.routing import PreparedRoute, Router, skip_reason
from connector.services.shipments import record_completed
from connector.store import ActiveReservation, LineAt3pl, Store


class ShopRouting:
    """A shop's router and region index for one view of its network (node health
    folded in). ``factors`` discount stale nodes' stock; ``forward_nodes`` maps
    nodes whose orders we hand to a 3PL to that provider; ``push_after`` is how
    long after a change of reservations the storefront push runs (None: the shop
    does not push)."""

    def __init__(self, network, factors: Mapping[str, float] | None = None,
                 forward_nodes: Mapping[str, str] | None = None, push_after: timedelta | None = None,
                 config_version: int | None = None):
        self.network = network
        self.config_version = config_version  # recorded on every decision made with this routing
        self.router = Router(network)
        self.regions = RegionIndex(network.regions.values())
        self.tz = ZoneInfo(network.timezone)
        self.factors = dict(factors or {})
        self.forward_nodes = dict(forward_nodes or {})
        self.push_after = push_after
        self.prepared: dict[str, PreparedRoute] = {}  # order id -> routed ahead by prepare_route

    def local_day(self, now: datetime) -> str:
        return now.astimezone(self.tz).date().isoformat()


def apply_order(store: Store, routing: ShopRouting, order: Order, now: datetime) -> str:
    """Upsert an order and reconcile its reservations. Returns the order's status."""
    stored = store.order(order.shop_id, order.order_id)
    if stored is not None and stored.updated_at is not None and order.updated_at < stored.updated_at:
        # Shopify and WooCommerce do not guarantee delivery order; the newer state already applied wins.
        store.event(order.shop_id, "order.stale_update_ignored", order.order_id,
                    {"received_updated_at": order.updated_at, "stored_updated_at": stored.updated_at}, now)
        return stored.status
    if order.refund_ids is not None:
        order = _net_of_refunds(store, order, now)
    region_id = routing.regions.resolve(order.ship_to, routing.network.default_region)
    store.upsert_order(order, region_id, now)
    store.set_skip_reasons(order.shop_id, order.order_id,
                           [(l.line_id, r) for l in order.lines if (r := skip_reason(l))])
    # Asked for in the same transaction as the reservations it reflects, so no
    # change of sellable stock can be committed without its push.
    request_push(store, routing, order.shop_id, {l.sku for l in order.lines if l.sku}, now)
    if order.state != "open":
        record_completed(store, order, now)
        return close_order(store, order.shop_id, order.order_id, order.state, now)
    return reconcile(store, routing, order, region_id, now, first_seen=stored is None)


def prepare_route(store: Store, routing: ShopRouting, order: Order, now: datetime) -> None:
    """Before the write lock is taken: route a new order from what the store holds now,
    as ``reconcile`` would, into ``routing.prepared``. Inside the lock ``reconcile`` reads
    its inputs again and uses this result only if they are the same (else it routes
    again), so a large order's planning does not hold up the webhooks waiting to be
    stored. Reads only; an order already stored or with refunds is left to ``reconcile``."""
    if order.state != "open" or order.refund_ids or store.order(order.shop_id, order.order_id) is not None:
        return
    lines = tuple({l.line_id: l for l in order.lines if skip_reason(l) is None}.values())
    if not lines:
        return
    skus = {l.sku for l in lines}
    routing.prepared[order.order_id] = routing.router.prepare(
        replace(order, lines=lines),
        routing.regions.resolve(order.ship_to, routing.network.default_region),
        discounted(store.sellable(order.shop_id, skus), routing.factors),
        store.orders_today(order.shop_id, routing.local_day(now)),
        now,
        store.opportunity_costs(order.shop_id, skus),
    )


def _net_of_refunds(store: Store, order: Order, now: datetime) -> Order:
    """A WooCommerce order's quantities are as ordered: take off what the refunds it
    still lists took (those whose lines we have read), and ask for the lines of the
    others. A refund deleted in the store drops off the list, so its units count again."""
    refund_ids = order.refund_ids or ()
    store.track_refund_lookups(order.shop_id, order.order_id, refund_ids, now, look_up=order.state == "open")
    refunded = store.refunded_quantities(order.shop_id, order.order_id, refund_ids)
    if not refunded:
        return order
    return replace(order, lines=tuple(
        replace(l, quantity=max(l.quantity - refunded.get(l.line_id, 0), 0)) for l in order.lines))


def request_push(store: Store, routing: ShopRouting, shop_id: str, skus, now: datetime) -> None:
    if routing.push_after is not None and skus:
        store.request_push(shop_id, skus, "orders", now + routing.push_after, now)


def close_order(store: Store, shop_id: str, order_id: str, state: str, now: datetime) -> str:
    """Cancelled, fulfilled, deleted or awaiting payment: hold no stock for it."""
    for reservation in store.active_reservations(shop_id, order_id):
        store.release(reservation, shop_id, state, now)
    store.cancel_forward_jobs(shop_id, order_id)
    if state == "cancelled":
        # What a 3PL already has: cancelling it there is the creator's call (and a human's click).
        note_changes_at_3pl(store, shop_id, order_id, store.lines_with_3pl(shop_id, order_id), {}, now)
    store.retire_decisions(shop_id, order_id)
    store.set_order_state(shop_id, order_id, state, now)
    store.set_order_status(shop_id, order_id, state)
    return state


def note_changes_at_3pl(store: Store, shop_id: str, order_id: str, with_3pl: Mapping[str, LineAt3pl],
                        wanted: Mapping[str, OrderLine], now: datetime) -> None:
    """Lines a 3PL has but not yet shipped whose quantity the order no longer wants
    (``wanted``: the order's shippable lines; a missing line wants 0) are noted for a
    human to change at the 3PL (``connector exceptions``); a line back to what was sent
    needs nothing any more. After the shipment a change is a return: nothing to note."""
    for line_id, sent in with_3pl.items():
        if sent.shipped:
            continue
        line = wanted.get(line_id)
        quantity = line.quantity if line is not None and line.sku == sent.sku else 0
        if quantity == sent.quantity:
            store.resolve_amendments(sent.job_id, "the order changed back", now, line_id=line_id)
        elif store.note_amendment(shop_id, order_id, sent.job_id, line_id, sent.sku, sent.quantity, quantity, now):
            store.event(shop_id, "forward.amend_needed", order_id,
                        {"job_id": sent.job_id, "node_id": sent.node_id, "line_id": line_id, "sku": sent.sku,
                         "sent": sent.quantity, "wanted": quantity}, now)


def reconcile(store: Store, routing: ShopRouting, order: Order, region_id: str | None, now: datetime, *,
              first_seen: bool = False) -> str:
    """``first_seen``: the order was not stored before (so nothing of it was sent anywhere)."""
    shop_id, order_id = order.shop_id, order.order_id
    wanted = {l.line_id: l for l in order.lines if skip_reason(l) is None}
    # Lines a 3PL already has stay where they are, whether or not we still hold their
    # stock (a sync hands it over to the 3PL's committed): routing one again would ship
    # it twice. A change to one is a note for a human to make at the 3PL.
    with_3pl = {} if first_seen else store.lines_with_3pl(shop_id, order_id)
    note_changes_at_3pl(store, shop_id, order_id, with_3pl, wanted, now)
    held: dict[str, ActiveReservation] = {r.line_id: r for r in store.active_reservations(shop_id, order_id)
                                          if r.line_id not in with_3pl}
    to_route: list[OrderLine] = []
    for line_id, reservation in held.items():
        line = wanted.get(line_id)
        if line is None or line.sku != reservation.sku:
            store.release(reservation, shop_id, "line removed", now)
            store.retire_decisions(shop_id, order_id, [line_id])
        elif line.quantity < reservation.quantity:
            store.shrink_reservation(reservation, shop_id, line.quantity)
            store.event(shop_id, "reservation.reduced", order_id,
                        {"line_id": line_id, "node_id": reservation.node_id, "from": reservation.quantity,
                         "to": line.quantity}, now)
        elif line.quantity > reservation.quantity:
            # Route the whole line again: its old units are free inside this transaction.
            store.release(reservation, shop_id, "quantity increased; rerouted", now)
            to_route.append(line)
    to_route.extend(l for line_id, l in wanted.items() if line_id not in held and line_id not in with_3pl)
    # Lines that no longer need routing (skipped now, or gone from the order) lose any
    # stale decision: an exception held no stock, so the loop above never saw it.
    store.retire_decisions(shop_id, order_id, [d["line_id"] for d in store.current_decisions(shop_id, order_id)
                                               if d["line_id"] not in wanted and d["line_id"] not in with_3pl])

    if to_route:
        nodes_before = {r.node_id for r in held.values()}
        skus = {l.sku for l in to_route}
        result = routing.router.route(
            replace(order, lines=tuple(to_route)),
            region_id,
            discounted(store.sellable(shop_id, skus), routing.factors),
            store.orders_today(shop_id, routing.local_day(now)),
            now,
            store.opportunity_costs(shop_id, skus),
            prepared=routing.prepared.pop(order_id, None),
        )
        store.save_decisions(shop_id, order_id, result.mode.value, result.region_id, result.decisions, now,
                             routing.config_version)
        store.reserve_many(shop_id, order_id,
                           [(d.line_id, d.node_id, d.sku, d.quantity) for d in result.routed], now)
        for node_id in {d.node_id for d in result.routed} - nodes_before:
            store.count_node_order(shop_id, node_id, routing.local_day(now))
        for node_id in {d.node_id for d in result.routed}:
            if node_id in routing.forward_nodes:
                store.add_forward_job(shop_id, order_id, node_id, routing.forward_nodes[node_id], now)

    if not held and to_route and len(to_route) == len(wanted):
        # A first routing: this call's decisions are all the order has.
        status = _status(sum(1 for d in result.decisions if d.node_id is not None), len(result.decisions))
    else:
        current = store.current_decisions(shop_id, order_id)
        status = _status(sum(1 for d in current if d["node_id"] is not None), len(current))
    store.set_order_status(shop_id, order_id, status)
    return status


def _status(routed: int, decided: int) -> str:
    exceptions = decided - routed
    if exceptions and routed:
        return "partial"
    if exceptions:
        return "exception"
    if routed:
        return "routed"
    return "nothing_to_ship"


def apply_refund(store: Store, routing: ShopRouting, refund: RefundCreated, shop_id: str, now: datetime,
                 *, order_nets_out_refunds: bool = True) -> str | None:
    """Refunded line quantities stop being shipped. With ``order_nets_out_refunds``
    (Shopify's current_quantity), a refund older than the stored order update is
    already reflected in it, so it is recorded but not applied twice. Without
    (WooCommerce), the stored quantities are net only of the refunds recorded
    here, so a refund recorded for the first time always applies."""
    stored = store.order(shop_id, refund.order_id)
    applies = stored is not None and (
        not order_nets_out_refunds
        or refund.created_at is None or stored.updated_at is None or refund.created_at > stored.updated_at
    )
    changed = False
    for line in refund.lines:
        if store.record_refund_line(shop_id, refund.refund_id, refund.order_id, line.line_id, line.quantity,
                                    applies, now) and applies:
            store.reduce_line_quantity(shop_id, refund.order_id, line.line_id, line.quantity)
            changed = True
    if stored is None:
        store.event(shop_id, "refund.order_unknown", refund.order_id, {"refund_id": refund.refund_id}, now)
        return None
    if not changed or stored.state != "open":
        return stored.status
    lines = tuple(
        OrderLine(l["line_id"], l["sku"], l["quantity"], bool(l["requires_shipping"]), l["title"] or "",
                  l["fulfilled_by"])
        for l in store.order_lines(shop_id, refund.order_id)
    )
    order = Order(
        shop_id=shop_id, order_id=refund.order_id, number=stored.number, platform="", created_at=now,
        updated_at=stored.updated_at or now, ship_to=None, lines=lines, state="open",
    )
    store.set_skip_reasons(shop_id, refund.order_id, [(l.line_id, r) for l in lines if (r := skip_reason(l))])
    request_push(store, routing, shop_id, {l.sku for l in lines if l.sku}, now)
    return reconcile(store, routing, order, stored.region_id, now)
