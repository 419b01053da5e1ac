"""An order's fulfillment orders through the GraphQL Admin API: read them, move them to
the location of the node we chose, and fulfil them with tracking when a node without an
API ships.

Facts: /work/shared/reference/shopify.md §4.5-4.6 and §5, and the shopify.dev pages of
``Order.fulfillmentOrders``, ``FulfillmentOrder`` (status, requestStatus,
supportedActions, assignedLocation, lineItems), ``fulfillmentOrderMove`` and
``fulfillmentCreate`` (FulfillmentInput: lineItemsByFulfillmentOrder, trackingInfo
{company number url}, notifyCustomer).

* Scopes: ``write_merchant_managed_fulfillment_orders`` (and
  ``write_third_party_fulfillment_orders`` for orders assigned to a 3PL's location);
  ``read_orders`` for the order. ``adapters.shopify_auth.REQUIRED_SCOPES`` asks for them.
* Neither mutation takes an idempotency key, so they are sent once (no transport retry):
  a lost answer raises ``ProviderOutcomeUnknown`` and the caller reads the fulfillment
  orders (and the order's fulfillments' tracking numbers) again before anything else.
* From 2026-04 ``fulfillmentOrderMove``'s userErrors carry a ``code``
  (CANNOT_MOVE_FULFILLMENT_ORDER_WITH_REPORTED_PROGRESS); its message is what we show.

Requests go through ``ShopifyInventory.graphql``: the shop's one HTTP client, cost-bucket
pacing, THROTTLED handling and redaction.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping

from adapters.http import Auth, HttpClient, describe_graphql_errors
from adapters.shopify_inventory import DEFAULT_API_VERSION, ShopifyInventory
from connector.domain.handoff import FulfillmentOrder, FulfillmentOrderLine, Move, MoveOutcome, OrderFulfillment
from connector.domain.model import ProviderRejected, ProviderResponseError

FULFILLMENT_ORDERS_PAGE = 8
LINES_PER_FULFILLMENT_ORDER = 40
FULFILLMENTS_READ = 20
_MUTATION_COST = 10

ORDER_FULFILLMENT_ORDERS_QUERY = """
query orderFulfillmentOrders($id: ID!, $first: Int!, $after: String, $lines: Int!, $fulfillments: Int!) {
  order(id: $id) {
    id
    fulfillments(first: $fulfillments) { id trackingInfo { company number url } }
    fulfillmentOrders(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id status requestStatus
        assignedLocation { name location { id } }
        supportedActions { action }
        lineItems(first: $lines) {
          pageInfo { hasNextPage }
          nodes { id remainingQuantity sku lineItem { id } }
        }
      }
    }
  }
}
"""

FULFILLMENT_ORDER_MOVE = """
mutation fulfillmentOrderMove($id: ID!, $newLocationId: ID!, $fulfillmentOrderLineItems: [FulfillmentOrderLineItemInput!]) {
  fulfillmentOrderMove(id: $id, newLocationId: $newLocationId, fulfillmentOrderLineItems: $fulfillmentOrderLineItems) {
    movedFulfillmentOrder { id status assignedLocation { location { id } } }
    originalFulfillmentOrder { id status }
    userErrors { code field message }
  }
}
"""

FULFILLMENT_CREATE = """
mutation fulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo { company number url } }
    userErrors { field message }
  }
}
"""


def order_gid(order_id: str) -> str:
    return order_id if order_id.startswith("gid://") else f"gid://shopify/Order/{order_id}"


def gid_number(gid: str) -> str:
    """``gid://shopify/LineItem/466157049`` -> ``466157049`` (our orders' line ids)."""
    return gid.rsplit("/", 1)[-1]


class ShopifyFulfillment:
    """Fulfillment-order reads and writes for one shop."""

    platform = "shopify"

    def __init__(self, shop_domain: str, access_token: str | None = None, *, auth: Auth | None = None,
                 client: HttpClient | None = None, api_version: str = DEFAULT_API_VERSION,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic):
        """One of ``access_token`` (a fixed token), ``auth`` (``TokenKeeper.auth(shop)``) or ``client``."""
        if client is None and auth is not None:
            client = HttpClient(base_url=f"https://{shop_domain}", auth=auth, provider="shopify",
                                sleep=sleep, monotonic=monotonic)
        self.api = ShopifyInventory(shop_domain, access_token, api_version=api_version, client=client,
                                    sleep=sleep, monotonic=monotonic)

    def fulfillment_orders(self, order_id: str) -> OrderFulfillment | None:
        """The order's fulfillment orders, every status; None when Shopify has no such order."""
        orders: list[FulfillmentOrder] = []
        tracking: set[str] = set()
        cursor = None
        cost = 2 + FULFILLMENTS_READ * 2 + 2 + FULFILLMENT_ORDERS_PAGE * (4 + 2 + LINES_PER_FULFILLMENT_ORDER * 2)
        for _ in range(50):  # 400 fulfillment orders: far beyond any real order
            data = self.api.graphql(
                ORDER_FULFILLMENT_ORDERS_QUERY,
                {"id": order_gid(order_id), "first": FULFILLMENT_ORDERS_PAGE, "after": cursor,
                 "lines": LINES_PER_FULFILLMENT_ORDER, "fulfillments": FULFILLMENTS_READ},
                "orderFulfillmentOrders", cost=cost)
            order = data.get("order")
            if order is None:
                return None
            if not isinstance(order, dict):
                raise ProviderResponseError("shopify: order is not an object")
            for fulfillment in _list(order.get("fulfillments"), "order.fulfillments"):
                info = fulfillment.get("trackingInfo") if isinstance(fulfillment, dict) else None
                for entry in info if isinstance(info, list) else ():
                    if isinstance(entry, dict) and isinstance(entry.get("number"), str):
                        tracking.add(entry["number"])
            connection = order.get("fulfillmentOrders")
            if not isinstance(connection, dict):
                raise ProviderResponseError("shopify: order.fulfillmentOrders lacks nodes/pageInfo")
            orders.extend(_fulfillment_order(node) for node in _list(connection.get("nodes"), "fulfillmentOrders.nodes"))
            info = connection.get("pageInfo")
            if not isinstance(info, dict) or info.get("hasNextPage") is not True:
                return OrderFulfillment(tuple(orders), frozenset(tracking))
            cursor = info.get("endCursor")
            if not isinstance(cursor, str) or not cursor:
                raise ProviderResponseError("shopify: fulfillmentOrders hasNextPage without an endCursor")
        raise ProviderResponseError("shopify: fulfillmentOrders did not end after 50 pages")

    def move(self, move: Move) -> MoveOutcome:
        """``fulfillmentOrderMove``; Shopify's userErrors come back as a refused move."""
        variables: dict = {"id": move.fulfillment_order_id, "newLocationId": move.location_id,
                           "fulfillmentOrderLineItems": None if move.lines is None else
                           [{"id": line_id, "quantity": quantity} for line_id, quantity in move.lines]}
        data = self.api.graphql(FULFILLMENT_ORDER_MOVE, variables, "fulfillmentOrderMove",
                                cost=_MUTATION_COST + 6, retry=False)
        payload = data.get("fulfillmentOrderMove")
        if not isinstance(payload, dict) or not isinstance(payload.get("userErrors"), list):
            raise ProviderResponseError("shopify: fulfillmentOrderMove answered without userErrors")
        if payload["userErrors"]:
            return MoveOutcome(False, self.api.client.redact(describe_graphql_errors(payload["userErrors"])))
        moved = payload.get("movedFulfillmentOrder")
        location = ((moved or {}).get("assignedLocation") or {}).get("location") if isinstance(moved, dict) else None
        return MoveOutcome(True, None, location.get("id") if isinstance(location, dict) else None)

    def create_fulfillment(self, lines: Mapping[str, tuple[tuple[str, int], ...]], *, carrier: str,
                           tracking_number: str, tracking_url: str | None, notify_customer: bool) -> str:
        """``fulfillmentCreate`` for ``lines`` (fulfillment order gid -> (line gid, quantity)...)
        with tracking; returns the fulfillment's gid. userErrors raise ``ProviderRejected``."""
        tracking = {"company": carrier, "number": tracking_number}
        if tracking_url:
            tracking["url"] = tracking_url
        variables = {"fulfillment": {
            "lineItemsByFulfillmentOrder": [
                {"fulfillmentOrderId": order_id,
                 "fulfillmentOrderLineItems": [{"id": line_id, "quantity": quantity} for line_id, quantity in picked]}
                for order_id, picked in lines.items()],
            "notifyCustomer": notify_customer,
            "trackingInfo": tracking,
        }}
        data = self.api.graphql(FULFILLMENT_CREATE, variables, "fulfillmentCreate", cost=_MUTATION_COST + 3,
                                retry=False)
        payload = data.get("fulfillmentCreate")
        if not isinstance(payload, dict) or not isinstance(payload.get("userErrors"), list):
            raise ProviderResponseError("shopify: fulfillmentCreate answered without userErrors")
        if payload["userErrors"]:
            raise ProviderRejected(
                f"shopify: fulfillmentCreate refused: {self.api.client.redact(describe_graphql_errors(payload['userErrors']))}")
        fulfillment = payload.get("fulfillment")
        if not isinstance(fulfillment, dict) or not isinstance(fulfillment.get("id"), str):
            raise ProviderResponseError("shopify: fulfillmentCreate answered without the fulfillment")
        return fulfillment["id"]


def _list(value: object, what: str) -> list:
    if isinstance(value, dict) and "nodes" in value:
        value = value["nodes"]
    if not isinstance(value, list):
        raise ProviderResponseError(f"shopify: {what} is not a list")
    return value


def _text(node: Mapping, name: str, what: str) -> str:
    value = node.get(name)
    if not isinstance(value, str) or not value:
        raise ProviderResponseError(f"shopify: {what} {name} is missing or not a string")
    return value


def _fulfillment_order(node: object) -> FulfillmentOrder:
    if not isinstance(node, dict):
        raise ProviderResponseError("shopify: a fulfillment order is not an object")
    gid = _text(node, "id", "fulfillment order")
    what = f"fulfillment order {gid}"
    assigned = node.get("assignedLocation")
    assigned = assigned if isinstance(assigned, dict) else {}
    location = assigned.get("location")
    lines_connection = node.get("lineItems")
    if isinstance(lines_connection, dict) and (lines_connection.get("pageInfo") or {}).get("hasNextPage"):
        raise ProviderResponseError(
            f"shopify: {what} has more than {LINES_PER_FULFILLMENT_ORDER} lines, more than this connector reads")
    lines = []
    for line in _list(lines_connection, f"{what} lineItems"):
        if not isinstance(line, dict):
            raise ProviderResponseError(f"shopify: {what} has a line that is not an object")
        remaining = line.get("remainingQuantity")
        if not isinstance(remaining, int) or isinstance(remaining, bool):
            raise ProviderResponseError(f"shopify: {what} line remainingQuantity is not a number")
        item = line.get("lineItem")
        lines.append(FulfillmentOrderLine(
            id=_text(line, "id", f"{what} line"),
            line_id=gid_number(_text(item if isinstance(item, dict) else {}, "id", f"{what} lineItem")),
            sku=line.get("sku") if isinstance(line.get("sku"), str) else None,
            remaining=remaining,
        ))
    actions = frozenset(a.get("action") for a in node.get("supportedActions") or () if isinstance(a, dict))
    return FulfillmentOrder(
        id=gid,
        status=_text(node, "status", what),
        request_status=_text(node, "requestStatus", what),
        location_id=location.get("id") if isinstance(location, dict) else None,
        location_name=assigned.get("name") if isinstance(assigned.get("name"), str) else "its location",
        actions=actions,  # type: ignore[arg-type]
        lines=tuple(lines),
    )
