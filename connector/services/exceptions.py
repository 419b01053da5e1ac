"""What a person can do about an order line routing could not place, and the
connector's own second look when the cause goes away.

A person can see what every node would mean for the line (``options``), ship it from
one they choose (``route_to``), have the order's exception lines routed again
(``reevaluate``) or dismiss the line with a note (``dismiss``: handled outside the
connector; it stays out of the open exceptions until the line itself changes). Every
action is one write transaction and an event in the audit log with who took it.

On their own, exception lines are routed again when what kept them from routing may
have changed: stock arriving (a sync, a hand count, a transfer received) in the same
transaction as the new count; a configuration change (a node back to active, a mode
switch) right after it is saved; and a periodic re-check for what time changes (a
pop-up's window opening). A change looks at a bounded batch of the orders it could
affect, the oldest first (it gets the first pick of the stock that arrived); the
periodic re-check goes through the rest. A line routed this way says so in its
explanation and in an event ("routed automatically at 14:02 after stock arrived at
ne-micro (sync)").
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable, Sequence

from connector.domain.health import discounted
from connector.domain.manual_route import NodeOption, manual_explanation, node_options
from connector.domain.model import LineDecision, Order, OrderLine
from connector.domain.routing import skip_reason
from connector.exception_store import ExceptionStore
from connector.ports import ShopDirectory
from connector.services.orders import ShopRouting, order_status, reconcile, request_push
from connector.store import Store, StoredOrder, lock_timeout, parse_ts

log = logging.getLogger("connector.exceptions")

RoutingFor = Callable[[Store, str, datetime], ShopRouting]  # Inbox.routing


class ExceptionActionError(Exception):
    """An action that cannot be taken; the message says why, for the person who tried."""


@dataclass(frozen=True)
class Cause:
    """Why exception lines are looked at again. ``kind``: "stock" (units arrived at
    ``nodes``: ``source`` says how, e.g. "sync"), "change" (``source``: what changed,
    e.g. "ne-micro was set active"), "recheck" (the periodic look) or "manual"
    (``source``: who asked)."""

    kind: str
    source: str
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LineOutcome:
    """An exception line after a second look: routed to ``node_id``, or still an
    exception (``node_id`` None) with ``explanation`` saying why."""

    order_id: str
    number: str
    line_id: str
    sku: str
    quantity: int
    node_id: str | None
    explanation: str

    def sentence(self) -> str:
        head = f"Order {self.number} line {self.line_id} ({self.quantity} × {self.sku})"
        if self.node_id:
            return f"{head} now ships from {self.node_id}."
        return f"{head} is still an exception: {self.explanation}"


@dataclass(frozen=True)
class _OpenLines:
    """An open order with exception lines: as stored, as ``reconcile`` takes it, and its
    open exception lines' decisions by line id."""

    stored: StoredOrder
    order: Order
    before: dict[str, dict]


@dataclass(frozen=True)
class ExceptionLine:
    """An order line with its current decision, as the chooser and the CLI show it."""

    order: StoredOrder
    line: dict  # Store.order_lines row
    decision: dict  # Store.current_decisions row


class ExceptionActions:
    def __init__(self, shops: ShopDirectory, routing: RoutingFor, clock: Callable[[], datetime], batch: int = 100):
        self.shops = shops
        self.routing = routing
        self.clock = clock
        self.batch = batch  # orders a change looks at in its own transaction; the periodic re-check does the rest

    # ------------------------------------------------------------ a person's actions

    def line(self, store: Store, shop_id: str, order_id: str, line_id: str) -> ExceptionLine:
        """The exception line, or ExceptionActionError saying why there is none to act on."""
        order = store.order(shop_id, order_id)
        if order is None:
            raise ExceptionActionError(f"There is no order {order_id} in this shop.")
        line = next((l for l in store.order_lines(shop_id, order_id) if l["line_id"] == line_id), None)
        if line is None:
            raise ExceptionActionError(f"Order {order.number} has no line {line_id}.")
        decision = next((d for d in store.current_decisions(shop_id, order_id) if d["line_id"] == line_id), None)
        if order.state != "open":
            raise ExceptionActionError(f"Order {order.number} is {order.state.replace('_', ' ')}: "
                                       "there is nothing to route.")
        if line["skip_reason"]:
            raise ExceptionActionError(f"Line {line_id} of order {order.number} is not ours to route: it "
                                       f"{line['skip_reason']}.")
        if decision is None or decision["exception"] is None:
            where = f" (it ships from {decision['node_id']})" if decision and decision["node_id"] else ""
            raise ExceptionActionError(f"Line {line_id} of order {order.number} is not an exception{where}.")
        return ExceptionLine(order, line, decision)

    def options(self, store: Store, shop_id: str, order_id: str, line_id: str) -> list[NodeOption]:
        """Every node of the shop for the line: can it take it now, transit days against
        the promise, cost per order, sellable units now and after, and if not, why."""
        found = self.line(store, shop_id, order_id, line_id)
        return self._options(store, self.routing(store, shop_id, self.clock()), found, self.clock())

    def route_to(self, store: Store, shop_id: str, order_id: str, line_id: str, node_id: str, by: str,
                 note: str | None = None) -> NodeOption:
        """Ship the line from ``node_id``, chosen by ``by``: reserved there, counted in the
        node's orders today, handed to its 3PL when it forwards orders, audited. Refused
        when the node cannot ship it at all (see ``connector.domain.manual_route``)."""
        note = (note or "").strip() or None
        now = self.clock()
        with store.write():
            found = self.line(store, shop_id, order_id, line_id)
            routing = self.routing(store, shop_id, now)
            option = next((o for o in self._options(store, routing, found, now) if o.node_id == node_id), None)
            if option is None:
                raise ExceptionActionError(f"This shop has no node {node_id!r}.")
            if not option.can_take:
                raise ExceptionActionError(f"Line {line_id} of order {found.order.number} cannot ship from "
                                           f"{node_id}: {'; '.join(option.refusals)}.")
            sku, quantity = found.line["sku"], found.line["quantity"]
            explanation = manual_explanation(option, sku, quantity, by, note)
            nodes_before = {r.node_id for r in store.active_reservations(shop_id, order_id)}
            store.save_decisions(shop_id, order_id, routing.network.routing.mode.value, found.order.region_id,
                                 [LineDecision(line_id, sku, quantity, node_id, "manual", explanation)], now,
                                 routing.config_version)
            store.reserve(shop_id, order_id, line_id, node_id, sku, quantity, now)
            if node_id not in nodes_before:
                store.count_node_order(shop_id, node_id, routing.local_day(now))
            if node_id in routing.forward_nodes:
                store.add_forward_job(shop_id, order_id, node_id, routing.forward_nodes[node_id], now)
            store.set_order_status(shop_id, order_id, order_status(store.current_decisions(shop_id, order_id)))
            request_push(store, routing, shop_id, {sku}, now)
            store.event(shop_id, "exception.routed_by_hand", order_id,
                        {"line_id": line_id, "sku": sku, "quantity": quantity, "node_id": node_id, "by": by,
                         "note": note, "cost": option.cost_text(), "warnings": list(option.warnings),
                         "was": found.decision["explanation"]}, now)
        return option

    def reevaluate(self, store: Store, shop_id: str, order_id: str, by: str) -> list[LineOutcome]:
        """Route the order's open exception lines again through normal routing now."""
        now = self.clock()
        with store.write():
            order = store.order(shop_id, order_id)
            if order is None:
                raise ExceptionActionError(f"There is no order {order_id} in this shop.")
            routing = self.routing(store, shop_id, now)
            outcomes = self._second_look(store, routing, self._open_lines(store, shop_id, order_id, now),
                                         Cause("manual", by), now, force=True)
            if outcomes is None:
                raise ExceptionActionError(f"Order {order.number} has no open exception to re-evaluate.")
            store.event(shop_id, "exception.reevaluated", order_id,
                        {"by": by, "lines": [{"line_id": o.line_id, "node_id": o.node_id} for o in outcomes]}, now)
        return outcomes

    def dismiss(self, store: Store, shop_id: str, order_id: str, line_id: str, note: str, by: str) -> None:
        """The creator handles the line outside the connector: it leaves the open
        exceptions, keeping its reason, the note and who; it comes back only when the
        line changes (another quantity or SKU in an order update)."""
        note = (note or "").strip()
        if not note:
            raise ExceptionActionError("Give a note: say how this line is handled outside the connector.")
        now = self.clock()
        with store.write():
            found = self.line(store, shop_id, order_id, line_id)
            if found.decision["dismissed_at"]:
                raise ExceptionActionError(f"Line {line_id} of order {found.order.number} was already dismissed "
                                           f"by {found.decision['dismissed_by']}: {found.decision['dismissed_note']}")
            ExceptionStore(store).dismiss(shop_id, order_id, line_id, note, by, now)
            store.set_order_status(shop_id, order_id, order_status(store.current_decisions(shop_id, order_id)))
            store.event(shop_id, "exception.dismissed", order_id,
                        {"line_id": line_id, "sku": found.line["sku"], "quantity": found.line["quantity"],
                         "exception": found.decision["exception"], "note": note, "by": by}, now)

    # ------------------------------------------------------------ on their own

    def stock_arrived(self, store: Store, shop_id: str, node_ids: Sequence[str], skus: Sequence[str] | None,
                      source: str, now: datetime) -> list[LineOutcome]:
        """Inside the caller's write transaction, right after ``node_ids``' stock changed
        (of ``skus``; None: any): the oldest orders with an exception line of a SKU those
        nodes now have, a batch of them, routed again. Returns the lines now routed."""
        orders = ExceptionStore(store).orders_with_exceptions(shop_id, skus=skus, stocked_at=list(node_ids),
                                                              limit=self.batch)
        return self._look_again(store, shop_id, orders, Cause("stock", source, tuple(node_ids)), now)

    def network_changed(self, store: Store, shop_id: str, what: str) -> list[LineOutcome]:
        """After a saved configuration change (``what``: e.g. "ne-micro was set active"),
        in a transaction of its own: a batch of the oldest orders with exception lines,
        routed again with the new configuration. A busy database leaves them to the
        periodic re-check."""
        if self.shops.get(shop_id) is None:  # a deactivated shop routes nothing
            return []
        now = self.clock()
        try:
            with store.write():
                orders = ExceptionStore(store).orders_with_exceptions(shop_id, limit=self.batch)
                return self._look_again(store, shop_id, orders, Cause("change", what), now)
        except sqlite3.OperationalError as exc:
            if (busy := lock_timeout(exc, store.busy_timeout_ms)) is None:
                raise
            log.warning("exceptions of %s not re-evaluated after %s: %s", shop_id, what, busy)
            return []

    def recheck(self, store: Store) -> dict[str, int]:
        """The periodic re-check: every shop's open exception lines, oldest order first;
        returns shop id -> lines now routed. Each order is first looked at without the
        write lock (reads only), and only those that would change are routed again, a
        batch per transaction (each looked at again inside it), so a look that finds
        nothing new never holds up the webhooks."""
        routed: dict[str, int] = {}
        for shop_id in self.shops.ids():
            if self.shops.get(shop_id) is None:
                continue
            now = self.clock()
            routing = self.routing(store, shop_id, now)
            changing = [order_id for order_id in ExceptionStore(store).orders_with_exceptions(shop_id)
                        if self._would_change(store, routing, self._open_lines(store, shop_id, order_id, now), now)]
            routed[shop_id] = 0
            for start in range(0, len(changing), self.batch):
                now = self.clock()
                with store.write():
                    routed[shop_id] += len(self._look_again(store, shop_id, changing[start:start + self.batch],
                                                            Cause("recheck", "the regular re-check"), now))
        return routed

    # ------------------------------------------------------------ the work

    def _look_again(self, store: Store, shop_id: str, order_ids: Sequence[str], cause: Cause,
                    now: datetime) -> list[LineOutcome]:
        routing = self.routing(store, shop_id, now)
        routed = []
        for order_id in order_ids:
            outcomes = self._second_look(store, routing, self._open_lines(store, shop_id, order_id, now), cause,
                                         now, force=False)
            routed.extend(o for o in outcomes or () if o.node_id)
        return routed

    @staticmethod
    def _open_lines(store: Store, shop_id: str, order_id: str, now: datetime) -> "_OpenLines | None":
        """An open order with its open (not dismissed) exception lines, as ``reconcile``
        takes it; None when it has none."""
        stored = store.order(shop_id, order_id)
        if stored is None or stored.state != "open":
            return None
        before = {d["line_id"]: d for d in store.current_decisions(shop_id, order_id)
                  if d["node_id"] is None and d["exception"] and not d["dismissed_at"]}
        if not before:
            return None
        lines = tuple(OrderLine(l["line_id"], l["sku"], l["quantity"], bool(l["requires_shipping"]),
                                l["title"] or "", l["fulfilled_by"]) for l in store.order_lines(shop_id, order_id))
        order = Order(shop_id, order_id, stored.number, "", now, stored.updated_at or now, None, lines)
        return _OpenLines(stored, order, before)

    def _second_look(self, store: Store, routing: ShopRouting, found: "_OpenLines | None", cause: Cause,
                     now: datetime, *, force: bool) -> list[LineOutcome] | None:
        """Route the order's open exception lines again through its normal routing
        (``reconcile``). Without ``force`` only when that changes something: a line would
        now ship, or its reason is no longer the one recorded (so a look that finds
        nothing new writes nothing). None: the order has no open exception line."""
        if found is None:
            return None
        stored, order, before = found.stored, found.order, found.before
        shop_id, order_id = stored.shop_id, stored.id
        if not force and not self._would_change(store, routing, found, now):
            return []
        reconcile(store, routing, order, stored.region_id, now)
        after = {d["line_id"]: d for d in store.current_decisions(shop_id, order_id)}
        outcomes = []
        for line_id, was in before.items():
            decision = after.get(line_id)
            if decision is None:  # the line no longer needs routing
                continue
            explanation = decision["explanation"]
            if decision["node_id"]:
                why = _why(cause, routing, decision["node_id"], parse_ts(was["decided_at"]), now)
                store.prefix_explanation(shop_id, order_id, line_id, f"{why}: ")
                explanation = f"{why}: {explanation}"
                if cause.kind != "manual":
                    store.event(shop_id, "exception.routed_automatically", order_id,
                                {"line_id": line_id, "sku": decision["sku"], "quantity": decision["quantity"],
                                 "node_id": decision["node_id"], "why": why, "was": was["explanation"]}, now)
            outcomes.append(LineOutcome(order_id, stored.number, line_id, decision["sku"], decision["quantity"],
                                        decision["node_id"], explanation))
        return outcomes

    @staticmethod
    def _would_change(store: Store, routing: ShopRouting, found: "_OpenLines | None", now: datetime) -> bool:
        if found is None:
            return False
        order, region_id, before = found.order, found.stored.region_id, found.before
        lines = tuple(l for l in order.lines if l.line_id in before and skip_reason(l) is None
                      and (l.sku, l.quantity) == (before[l.line_id]["sku"], before[l.line_id]["quantity"]))
        if len(lines) != len(before):
            return True  # a line changed or no longer needs routing: let reconcile settle it
        skus = {l.sku for l in lines}
        result = routing.router.route(replace(order, lines=lines), region_id,
                                      discounted(store.sellable(order.shop_id, skus), routing.factors),
                                      store.orders_today(order.shop_id, routing.local_day(now)), now,
                                      store.opportunity_costs(order.shop_id, skus))
        # A recorded reason may carry a prefix saying how the line became an exception.
        return any(d.node_id is not None or not before[d.line_id]["explanation"].endswith(d.explanation)
                   for d in result.decisions)

    @staticmethod
    def _options(store: Store, routing: ShopRouting, found: ExceptionLine, now: datetime) -> list[NodeOption]:
        shop_id, sku = found.order.shop_id, found.line["sku"]
        sellable = discounted(store.sellable(shop_id, [sku]), routing.factors)
        return node_options(routing.router, found.order.region_id, sku, found.line["quantity"],
                            {node: units for (node, _), units in sellable.items()},
                            store.orders_today(shop_id, routing.local_day(now)), now,
                            frozenset(r.node_id for r in store.active_reservations(shop_id, found.order.id)))


def _why(cause: Cause, routing: ShopRouting, node_id: str, exception_since: datetime | None, now: datetime) -> str:
    """How a line came to be routed, for its explanation and the audit log."""
    at = now.astimezone(routing.tz).strftime("%H:%M")
    if cause.kind == "manual":
        return f"routed at {at} when {cause.source} re-evaluated it"
    if cause.kind == "stock":
        if node_id in cause.nodes:
            return f"routed automatically at {at} after stock arrived at {node_id} ({cause.source})"
        return f"routed automatically at {at} after stock changed ({cause.source})"
    if cause.kind == "change":
        return f"routed automatically at {at} after {cause.source}"
    node = routing.network.nodes.get(node_id)
    opened = node.active_from if node is not None else None
    if opened is not None and opened <= now and (exception_since is None or exception_since < opened):
        return f"routed automatically at {at} after {node_id}'s active window opened"
    return f"routed automatically at {at} on {cause.source}"
