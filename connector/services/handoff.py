"""The decision happens in the store, and in the packing room.

* Every change of an order's routing decisions queues a hand-off (``handoff_store``, in
  the transaction that changed them). Processing it, outside any transaction: Shopify —
  read the order's fulfillment orders, move the unfulfilled lines to the location of the
  node each was routed to (``fulfillmentOrderMove``), never one Shopify says may not move
  (in progress, closed, a request submitted or accepted, MOVE not offered): that, a
  Shopify refusal and a node without a Shopify location are refused moves with their
  reason, listed until a later move succeeds or the order closes. WooCommerce — the
  chosen nodes in the order's meta, and a private note once per change of nodes.
* Nodes without an API (counts typed in or a CSV feed, no forwarding) get pick lists and
  packing slips per day, and "mark shipped": the shipment is recorded, the node's
  reservations for the order released and its stock taken down, and the write-back
  queued — Shopify: a fulfillment with tracking for that node's fulfillment orders;
  WooCommerce: a customer note with the tracking, and "completed" once every node of
  the order has shipped.

Every write to a store is preceded by a read of what it holds (fulfillment orders and
their fulfillments' tracking numbers, the order's notes), so a retry after an unknown
outcome never moves, fulfils or notes twice. A refusal fails the hand-off; anything else
backs off (``forwarding.retry_delay``) and tries again.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Callable, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from connector import handoff_store
from connector.config import Settings, ShopSettings
from connector.domain.handoff import fulfilment_lines, plan_moves
from connector.domain.model import ProviderError, ProviderRejected
from connector.domain.shipments import ShipmentFact
from connector.ports import FulfillmentOrders, OrderNotes, ShopDirectory
from connector.services.forwarding import retry_delay
from connector.services.shipments import record_shipment
from connector.store import Store

log = logging.getLogger("connector.handoff")

NODES_META_KEY = "_fulfillment_nodes"  # machine-readable: node ids, comma-separated
VISIBLE_META_KEY = "Ships from"  # shown in the order's custom fields
NO_LOCATION = "{node} has no Shopify location: choose its Shopify location in Settings › Nodes"
MAX_FIELD = 100


class ShipError(Exception):
    """A "mark shipped" that cannot be done; ``field`` names the form field at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass
class HandoffReport:
    done: int = 0
    refused: int = 0  # moves the store refused (also listed by handoff_store.refused_moves)
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Pick:
    sku: str
    title: str
    quantity: int
    orders: tuple[str, ...]  # order numbers


@dataclass(frozen=True)
class Slip:
    order_id: str
    number: str
    name: str | None  # None: the address is no longer (or was never) stored
    address_lines: tuple[str, ...]
    city: str
    postcode: str
    country: str
    lines: tuple[tuple[str, str, int], ...]  # sku, title, quantity


@dataclass(frozen=True)
class PackingDay:
    node_id: str
    node_name: str
    day: date
    picks: tuple[Pick, ...]
    slips: tuple[Slip, ...]
    other_days: tuple[tuple[date, int], ...]  # other days with orders still to ship there: (day, orders)


def packing_nodes(shop: ShopSettings) -> list[str]:
    """Nodes with no API to hand orders to: counts typed in or a CSV feed, no forwarding."""
    nodes = []
    for node_id in shop.network.nodes:
        source = shop.sources.get(node_id)
        if source is None or source.forward_orders:
            continue
        if source.provider is None or shop.providers[source.provider].type == "csv":
            nodes.append(node_id)
    return nodes


class StoreHandoff:
    def __init__(self, settings: Settings, shops: ShopDirectory,
                 clients: Callable[[ShopSettings], FulfillmentOrders | OrderNotes | None],
                 contact_readers: Mapping[str, Callable], clock: Callable[[], datetime]):
        self.settings = settings
        self.shops = shops
        self.clients = clients  # the shop's store client, or None without credentials
        self.contact_readers = contact_readers  # platform -> shipping_contact(payload)
        self.clock = clock

    # ------------------------------------------------------------ the queue

    def process_due(self, store: Store, shop_id: str | None = None, limit: int = 100) -> HandoffReport:
        report = HandoffReport()
        for row in handoff_store.claim_due(store, self.clock(), limit, shop_id):
            now = self.clock()
            shop = self.shops.get(row["shop_id"])
            try:
                client = self.clients(shop) if shop is not None else None
                if client is None:
                    why = ("the shop is not active" if shop is None else
                           "no API access to the store: the connector holds no Admin API token (Shopify) or "
                           "REST API key (WooCommerce) for it")
                    with store.write():
                        handoff_store.finish(store, row, status="skipped", now=now, error=why)
                    report.skipped += 1
                    continue
                if row["kind"] == handoff_store.DECISION:
                    self._decision(store, shop, client, row, report)
                else:
                    self._shipment(store, shop, client, row, report)
            except Exception as exc:  # noqa: BLE001 - one hand-off's failure must not stop the others
                self._failed(store, row, exc, now, report)
        return report

    def _failed(self, store: Store, row: dict, exc: Exception, now: datetime, report: HandoffReport) -> None:
        if not isinstance(exc, ProviderError):
            log.exception("hand-off %s (%s %s) crashed", row["id"], row["kind"], row["order_id"])
        error = f"{type(exc).__name__}: {exc}"[:500]
        with store.write():
            if isinstance(exc, ProviderRejected):
                handoff_store.finish(store, row, status="failed", now=now, error=error)
                store.event(row["shop_id"], "handoff.failed", row["order_id"],
                            {"kind": row["kind"], "node_id": row["node_id"] or None, "error": error}, now)
                report.failed += 1
            else:
                handoff_store.finish(store, row, status="pending", now=now, error=error,
                                     next_attempt_at=now + retry_delay(row["attempts"] + 1))
                report.retrying += 1
        report.errors.append(f"{row['shop_id']}/{row['order_id']} {row['kind']}: {error}")

    def _done(self, store: Store, row: dict, report: HandoffReport, written: object = None) -> None:
        with store.write():
            handoff_store.finish(store, row, status="done", now=self.clock(), written=written)
        report.done += 1

    def retry(self, store: Store, shop_id: str, order_ref: str, by: str) -> dict:
        """Tell the store about the order again at the next hand-off (after its reason for
        refusing went away); audited. Returns the order (id, number) and how many are due."""
        order = _shop_order(store, shop_id, order_ref)
        now = self.clock()
        with store.write():
            due = handoff_store.queue_again(store, shop_id, order["id"], now)
            store.event(shop_id, "handoff.retry", order["id"], {"by": by, "due": due}, now)
        return {"order_id": order["id"], "number": order["number"], "due": due}

    # ------------------------------------------------------------ decisions

    def _decision(self, store: Store, shop: ShopSettings, client, row: dict, report: HandoffReport) -> None:
        order = store.order(shop.id, row["order_id"])
        if order is None or order.state != "open":
            with store.write():
                handoff_store.clear_refusals(store, shop.id, row["order_id"])
            self._done(store, row, report)
            return
        routed = {d["line_id"]: d["node_id"] for d in store.current_decisions(shop.id, row["order_id"])
                  if d["node_id"] is not None}
        if shop.platform == "shopify":
            self._move(store, shop, client, row, routed, report)
        else:
            self._note_nodes(store, shop, client, row, routed, report)

    def _move(self, store: Store, shop: ShopSettings, client: FulfillmentOrders, row: dict,
              routed: Mapping[str, str], report: HandoffReport) -> None:
        order_id = row["order_id"]
        refusals: dict[str, str] = {}
        wanted: dict[str, tuple[str, str]] = {}
        for line_id, node_id in routed.items():
            location = shop.shopify_locations.get(node_id)
            if location is None:
                refusals[node_id] = NO_LOCATION.format(node=node_id)
            else:
                wanted[line_id] = (node_id, location)
        state = client.fulfillment_orders(order_id)
        if state is None:
            raise ProviderRejected(f"Shopify has no order {order_id}")
        plan = plan_moves(state.orders, wanted)
        refusals.update({r.node_id: r.reason for r in plan.refusals})
        moved: list[dict] = []
        for move in plan.moves:
            outcome = client.move(move)
            if outcome.moved:
                moved.append({"node_id": move.node_id, "fulfillment_order": move.fulfillment_order_id,
                              "location": move.location_id, "lines": len(move.lines) if move.lines else "all"})
            else:
                refusals[move.node_id] = f"Shopify refused to move the items to {move.node_id}: {outcome.message}"
        now = self.clock()
        with store.write():
            handoff_store.clear_refusals(store, shop.id, order_id,
                                         (set(plan.in_place) | {m["node_id"] for m in moved}) - set(refusals))
            # A node the order no longer goes to has nothing left to refuse.
            handoff_store.clear_refusals(store, shop.id, order_id, [
                r["node_id"] for r in handoff_store.refused_moves(store, shop.id)
                if r["order_id"] == order_id and r["node_id"] not in set(routed.values())])
            for node_id, reason in refusals.items():
                if handoff_store.refuse(store, shop.id, order_id, node_id, reason, now):
                    store.event(shop.id, "handoff.move_refused", order_id, {"node_id": node_id, "reason": reason}, now)
            for move in moved:
                store.event(shop.id, "handoff.moved", order_id, move, now)
            handoff_store.finish(store, row, status="done", now=now, written={"lines": dict(routed)})
        report.done += 1
        report.refused += len(refusals)

    def _note_nodes(self, store: Store, shop: ShopSettings, client: OrderNotes, row: dict,
                    routed: Mapping[str, str], report: HandoffReport) -> None:
        order_id = row["order_id"]
        nodes = list(dict.fromkeys(routed.values()))
        if row["written"] is not None and row["written"].get("nodes") == nodes:
            # Nothing to tell: writing anyway would make WooCommerce send order.updated, which
            # routes the order's exception lines again, which would queue this again.
            self._done(store, row, report)
            return
        names = [shop.network.nodes[n].name if n in shop.network.nodes else n for n in nodes]
        client.update_order(order_id, meta={NODES_META_KEY: ", ".join(nodes),
                                            VISIBLE_META_KEY: "; ".join(names) or "not decided yet"})
        if nodes:
            text = f"Ships from {'; '.join(names)} (fulfilment connector, decision {row['generation']})."
            # A note sent before whose answer was lost is there already: look before posting.
            if not any(text in note.text for note in client.notes(order_id)):
                client.add_note(order_id, text, customer=False)
            with store.write():
                store.event(shop.id, "handoff.noted", order_id, {"nodes": nodes}, self.clock())
        self._done(store, row, report, written={"nodes": nodes})

    # ------------------------------------------------------------ shipments

    def _shipment(self, store: Store, shop: ShopSettings, client, row: dict, report: HandoffReport) -> None:
        detail = row["detail"]
        if shop.platform == "shopify":
            self._fulfil(shop, client, row, detail)
        else:
            self._note_shipment(store, shop, client, row, detail)
        with store.write():
            store.event(shop.id, "handoff.shipment_written", row["order_id"],
                        {"node_id": row["node_id"], "tracking_number": detail["tracking_number"]}, self.clock())
        self._done(store, row, report)

    def _fulfil(self, shop: ShopSettings, client: FulfillmentOrders, row: dict, detail: dict) -> None:
        node_id, order_id = row["node_id"], row["order_id"]
        location = shop.shopify_locations.get(node_id)
        if location is None:
            raise ProviderRejected(NO_LOCATION.format(node=node_id))
        shipped: dict[str, int] = {}
        for line_id, _sku, quantity in detail["lines"]:
            shipped[line_id] = shipped.get(line_id, 0) + quantity
        for _ in range(2):  # once more after moving the lines to the node's location
            state = client.fulfillment_orders(order_id)
            if state is None:
                raise ProviderRejected(f"Shopify has no order {order_id}")
            if detail["tracking_number"] in state.tracking_numbers:
                return  # fulfilled already (an earlier attempt whose answer was lost)
            lines = fulfilment_lines(state.orders, location, shipped)
            if lines:
                client.create_fulfillment(lines, carrier=detail["carrier"], tracking_number=detail["tracking_number"],
                                          tracking_url=detail.get("tracking_url"), notify_customer=True)
                return
            plan = plan_moves(state.orders, {line_id: (node_id, location) for line_id in shipped})
            if plan.refusals:
                raise ProviderRejected(plan.refusals[0].reason)
            if not plan.moves:
                break
            for move in plan.moves:
                outcome = client.move(move)
                if not outcome.moved:
                    raise ProviderRejected(f"Shopify refused to move the items to {node_id}: {outcome.message}")
        raise ProviderRejected(f"Shopify has nothing of these lines left to fulfil at {node_id}'s location")

    def _note_shipment(self, store: Store, shop: ShopSettings, client: OrderNotes, row: dict, detail: dict) -> None:
        order_id = row["order_id"]
        text = shipment_note(detail["carrier"], detail["tracking_number"], detail.get("tracking_url"))
        if not any(text in note.text for note in client.notes(order_id)):
            client.add_note(order_id, text, customer=True)
        decisions = store.current_decisions(shop.id, order_id)
        nodes = {d["node_id"] for d in decisions}
        if decisions and None not in nodes and nodes <= handoff_store.shipped_nodes(store, shop.id, order_id):
            client.update_order(order_id, status="completed")

    # ------------------------------------------------------------ packing room

    def pick_list(self, store: Store, shop: ShopSettings, node_id: str, day: date) -> PackingDay:
        """What to pick and pack at ``node_id`` for the orders routed there on ``day`` (the
        shop's local date) and not shipped yet, and which other days still have some."""
        if node_id not in packing_nodes(shop):
            raise ShipError(f"{node_id} is not a node you pack at (its orders go to a 3PL)", "node")
        tz = ZoneInfo(shop.timezone)
        by_day: dict[date, list[dict]] = defaultdict(list)
        for line in handoff_store.to_pack(store, shop.id, node_id):
            by_day[datetime.fromisoformat(line["created_at"]).astimezone(tz).date()].append(line)
        lines = by_day.pop(day, [])
        picks: dict[str, dict] = {}
        orders: dict[str, list[dict]] = {}
        for line in lines:
            pick = picks.setdefault(line["sku"], {"title": line["title"], "quantity": 0, "orders": {}})
            pick["quantity"] += line["quantity"]
            pick["orders"][line["number"]] = None
            orders.setdefault(line["order_id"], []).append(line)
        return PackingDay(
            node_id=node_id, node_name=shop.network.nodes[node_id].name, day=day,
            picks=tuple(Pick(sku, p["title"], p["quantity"], tuple(p["orders"])) for sku, p in sorted(picks.items())),
            slips=tuple(self._slip(store, shop.id, order_id, order_lines) for order_id, order_lines in orders.items()),
            other_days=tuple(sorted((d, len({l["order_id"] for l in rows})) for d, rows in by_day.items())),
        )

    def _slip(self, store: Store, shop_id: str, order_id: str, lines: list[dict]) -> Slip:
        stored = store.latest_order_body(shop_id, order_id)
        contact = None
        if stored is not None:
            platform, body = stored
            contact = self.contact_readers[platform](json.loads(body))
        address = contact.address if contact else None
        return Slip(
            order_id=order_id, number=lines[0]["number"], name=contact.name if contact else None,
            address_lines=contact.address_lines if contact else (), city=contact.city if contact else "",
            postcode=(address.postcode or "") if address else "", country=(address.country or "") if address else "",
            lines=tuple((l["sku"], l["title"], l["quantity"]) for l in lines),
        )

    def mark_shipped(self, store: Store, shop_id: str, order_ref: str, node_id: str, carrier: str,
                     tracking_number: str, tracking_url: str | None, by: str) -> dict:
        """Record that ``node_id`` shipped its part of the order: release its reservations,
        take the units off its stock, record the shipment fact, queue the write-back to the
        store, audit. Returns the order (id, number) and the lines shipped."""
        carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
        tracking_url = (tracking_url or "").strip() or None
        if not carrier:
            raise ShipError("give the carrier (e.g. Royal Mail, USPS)", "carrier")
        if len(carrier) > MAX_FIELD:
            raise ShipError(f"at most {MAX_FIELD} characters", "carrier")
        if not tracking_number:
            raise ShipError("give the tracking number the carrier gave you", "tracking_number")
        if len(tracking_number) > MAX_FIELD or not re.fullmatch(r"[A-Za-z0-9 ._/-]+", tracking_number):
            raise ShipError(f"letters, digits, spaces and . _ / - only, at most {MAX_FIELD}", "tracking_number")
        if tracking_url is not None:
            parts = urlsplit(tracking_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or len(tracking_url) > 500:
                raise ShipError("a web address starting with https://, or leave it empty", "tracking_url")
        shop = self.shops.require(shop_id)
        if node_id not in packing_nodes(shop):
            raise ShipError(f"{node_id} is not a node you pack at", "node")
        order = _shop_order(store, shop_id, order_ref)
        now = self.clock()
        with store.write():
            placed = [r for r in store.active_reservations(shop_id, order["id"]) if r.node_id == node_id]
            if not placed or order["state"] != "open":
                raise ShipError(f"nothing of order {order['number']} waits to be shipped from {node_id}", "order")
            lines = [(r.line_id, r.sku, r.quantity) for r in placed]
            for reservation in placed:
                store.release(reservation, shop_id, "shipped", now)
                # The units left the node; a count typed in never learns that by itself.
                store.adjust_stock(shop_id, node_id, reservation.sku, -reservation.quantity, "shipped", now)
            record_shipment(store, shop_id, order["id"], node_id,
                            ShipmentFact(shipped_at=now, carrier=carrier, tracking_number=tracking_number,
                                         tracking_url=tracking_url, in_full=True, source="manual"), now)
            handoff_store.queue_shipment(store, shop_id, order["id"], node_id,
                                         {"carrier": carrier, "tracking_number": tracking_number,
                                          "tracking_url": tracking_url, "lines": lines, "by": by}, now)
            store.event(shop_id, "packing.shipped", order["id"],
                        {"node_id": node_id, "carrier": carrier, "tracking_number": tracking_number,
                         "tracking_url": tracking_url, "lines": len(lines), "by": by}, now)
        return {"order_id": order["id"], "number": order["number"], "lines": lines}


def shipment_note(carrier: str, tracking_number: str, tracking_url: str | None) -> str:
    return f"Shipped with {carrier}, tracking {tracking_number}" + (f": {tracking_url}" if tracking_url else ".")


def pick_list_csv(day: PackingDay) -> str:
    """One row per SKU: what to pick, and for which orders."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["node", "day", "sku", "title", "quantity", "orders"])
    for pick in day.picks:
        writer.writerow([day.node_id, day.day.isoformat(), pick.sku, _cell(pick.title), pick.quantity,
                         " ".join(pick.orders)])
    return out.getvalue()


def _cell(text: str) -> str:
    """A product title as a spreadsheet shows it, never run as a formula (=, +, -, @ first)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def _shop_order(store: Store, shop_id: str, order_ref: str) -> dict:
    """The shop's order ORDER_REF (an order id or number); ShipError when it has none."""
    found = store.find_orders(order_ref, shop_id)
    if not found:
        raise ShipError(f"no order {order_ref} in this shop", "order")
    return found[0]
