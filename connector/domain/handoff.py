"""What the store must be told so that it agrees with our decisions: which of a Shopify
order's fulfillment orders move to which location, which cannot and why, and which
fulfillment-order lines a shipment from a node fulfils. Pure: the fulfillment orders
come in as read from the store, plans go out.

Facts (reference/shopify.md §4.5, shopify.dev FulfillmentOrder and fulfillmentOrderMove):
a move fails for a closed fulfillment order, one with progress reported (IN_PROGRESS),
or one whose request status is SUBMITTED, ACCEPTED, CANCELLATION_REQUESTED or
CANCELLATION_REJECTED; ``supportedActions`` lists MOVE only when Shopify allows it now.
Without ``fulfillmentOrderLineItems`` every unfulfilled line of the fulfillment order moves.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

OPEN = "OPEN"
UNSUBMITTED = "UNSUBMITTED"
MOVE = "MOVE"
CREATE_FULFILLMENT = "CREATE_FULFILLMENT"

# Plain words for a fulfillment order that must not be moved, by its status / request status.
_STATUS_WORDS = {
    "IN_PROGRESS": "work on it has started in Shopify (in progress)",
    "CLOSED": "it is closed in Shopify (fulfilled or cancelled)",
    "CANCELLED": "it is cancelled in Shopify",
    "INCOMPLETE": "Shopify marked it incomplete",
    "ON_HOLD": "it is on hold in Shopify",
    "SCHEDULED": "it is scheduled for later in Shopify",
}
_REQUEST_WORDS = {
    "SUBMITTED": "a fulfillment request was already sent for it",
    "ACCEPTED": "its fulfillment service accepted it",
    "CANCELLATION_REQUESTED": "a cancellation was requested from its fulfillment service",
    "CANCELLATION_REJECTED": "its fulfillment service rejected the cancellation",
    "REJECTED": "its fulfillment service rejected it",
    "CLOSED": "its fulfillment request is closed",
}


@dataclass(frozen=True)
class FulfillmentOrderLine:
    id: str  # FulfillmentOrderLineItem gid
    line_id: str  # the order line's id as our orders hold it (the LineItem gid's number)
    sku: str | None
    remaining: int  # remainingQuantity: not yet fulfilled


@dataclass(frozen=True)
class FulfillmentOrder:
    id: str
    status: str
    request_status: str
    location_id: str | None  # assignedLocation.location.id
    location_name: str
    actions: frozenset[str]
    lines: tuple[FulfillmentOrderLine, ...]

    def why_not_movable(self) -> str | None:
        """None when Shopify lets us move it now; else why not, in plain words."""
        if self.status != OPEN:
            return _STATUS_WORDS.get(self.status, f"its status in Shopify is {self.status}")
        if self.request_status != UNSUBMITTED:
            return _REQUEST_WORDS.get(self.request_status, f"its request status is {self.request_status}")
        if MOVE not in self.actions:
            return "Shopify does not offer to move it now"
        return None


@dataclass(frozen=True)
class OrderFulfillment:
    """An order's fulfillment orders and the tracking numbers of its fulfillments."""

    orders: tuple[FulfillmentOrder, ...]
    tracking_numbers: frozenset[str]


@dataclass(frozen=True)
class MoveOutcome:
    moved: bool
    message: str | None = None  # the store's words when it refused
    location_id: str | None = None  # where the moved fulfillment order is now


@dataclass(frozen=True)
class OrderNote:
    """A note on a WooCommerce order; ``customer``: the customer sees it (and is emailed)."""

    id: int
    text: str
    customer: bool


@dataclass(frozen=True)
class Move:
    fulfillment_order_id: str
    location_id: str
    node_id: str
    # (fulfillment-order line gid, quantity); None: the whole fulfillment order moves
    lines: tuple[tuple[str, int], ...] | None


@dataclass(frozen=True)
class Refusal:
    node_id: str
    reason: str


@dataclass(frozen=True)
class MovePlan:
    moves: tuple[Move, ...]
    refusals: tuple[Refusal, ...]
    in_place: frozenset[str]  # nodes whose lines are all at their location already


def plan_moves(orders: Sequence[FulfillmentOrder], wanted: Mapping[str, tuple[str, str]]) -> MovePlan:
    """``wanted``: order line id -> (node id, Shopify location gid) for every routed line.

    A fulfillment order's unfulfilled lines that belong elsewhere move there: the whole
    fulfillment order when all its unfulfilled lines go to one other location, else only
    those lines. One that may not move is a refusal with the reason, and is never sent.
    Lines already where they belong are left alone, so a plan made again after a move
    (a retry after an unknown outcome) asks for nothing more.
    """
    moves: list[Move] = []
    refusals: dict[str, str] = {}
    seen_nodes: set[str] = set()
    for order in orders:
        pending = [line for line in order.lines if line.remaining > 0]
        targets: dict[tuple[str, str], list[FulfillmentOrderLine]] = {}
        for line in pending:
            node_location = wanted.get(line.line_id)
            if node_location is None:
                continue
            seen_nodes.add(node_location[0])
            if node_location[1] != order.location_id:
                targets.setdefault(node_location, []).append(line)
        if not targets:
            continue
        why = order.why_not_movable()
        if why is not None:
            for node_id, _ in targets:
                refusals.setdefault(node_id, f"Shopify's fulfillment order at {order.location_name} was not moved: {why}")
            continue
        whole = len(targets) == 1 and sum(len(lines) for lines in targets.values()) == len(pending)
        for (node_id, location_id), lines in targets.items():
            moves.append(Move(order.id, location_id, node_id,
                              None if whole else tuple((line.id, line.remaining) for line in lines)))
    moving = {move.node_id for move in moves}
    return MovePlan(tuple(moves), tuple(Refusal(node, reason) for node, reason in refusals.items()),
                    frozenset(seen_nodes - moving - set(refusals)))


def fulfilment_lines(orders: Sequence[FulfillmentOrder], location_id: str,
                     shipped: Mapping[str, int]) -> dict[str, tuple[tuple[str, int], ...]]:
    """The fulfillment-order lines a shipment of ``shipped`` (order line id -> units) from
    ``location_id`` fulfils: fulfillment order gid -> ((line gid, quantity), ...), only
    from fulfillment orders at that location that Shopify lets us fulfil, never more than
    a line still has to fulfil."""
    left = dict(shipped)
    plan: dict[str, tuple[tuple[str, int], ...]] = {}
    for order in orders:
        if order.location_id != location_id or CREATE_FULFILLMENT not in order.actions:
            continue
        picked = []
        for line in order.lines:
            units = min(line.remaining, left.get(line.line_id, 0))
            if units > 0:
                picked.append((line.id, units))
                left[line.line_id] -= units
        if picked:
            plan[order.id] = tuple(picked)
    return plan
