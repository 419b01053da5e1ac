"""In-memory test doubles. Only tests, the benchmarks (and the explicit sandbox) build
these; the composition root's real factory never does."""
from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
from datetime import datetime
from typing import Callable, Iterable, Mapping

from connector.domain.handoff import (
    FulfillmentOrder,
    FulfillmentOrderLine,
    Move,
    MoveOutcome,
    OrderFulfillment,
    OrderNote,
)
from connector.domain.model import (
    ConnectionOutcome,
    ConnectionState,
    InventoryRecord,
    OutboundOrder,
    PendingConnection,
    ProviderError,
    ProviderOrderRef,
    Shipment,
)


class FakeWarehouse:
    """A 3PL that keeps inventory, orders and shipments in lists.

    ``fail_next`` makes the next calls raise (a list of exceptions, consumed in
    order); ``fail_after_records`` makes ``list_inventory`` die part-way, as a
    paginated fetch that breaks on page 3 would.
    """

    provider = "fake"

    def __init__(self, inventory: Iterable[InventoryRecord] = ()):
        self.inventory: list[InventoryRecord] = list(inventory)
        self.orders: dict[str, OutboundOrder] = {}
        self.shipments: list[Shipment] = []
        self.fail_next: list[ProviderError] = []
        self.fail_after_records: int | None = None
        self.create_calls = 0
        self.lookups = 0

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def list_inventory(self) -> Iterable[InventoryRecord]:
        self._maybe_fail()
        for index, record in enumerate(self.inventory):
            if self.fail_after_records is not None and index >= self.fail_after_records:
                from connector.domain.model import ProviderUnavailable

                raise ProviderUnavailable("fake: connection dropped mid-pagination")
            yield record

    def find_order(self, reference: str) -> ProviderOrderRef | None:
        self.lookups += 1
        if reference in self.orders:
            return ProviderOrderRef(f"fake-{reference}", reference, created=False)
        return None

    def create_order(self, order: OutboundOrder) -> ProviderOrderRef:
        existing = self.find_order(order.reference)
        if existing is not None:
            return existing
        self._maybe_fail()
        self.create_calls += 1
        self.orders[order.reference] = order
        return ProviderOrderRef(f"fake-{order.reference}", order.reference, created=True)

    def list_shipments(self, since: datetime) -> Iterable[Shipment]:
        self._maybe_fail()
        return [s for s in self.shipments if (s.shipped_at or since) >= since]

    def check(self) -> None:
        self._maybe_fail()


# ---------------------------------------------------------------- Shopify GraphQL Admin (inventory)


def _selection_end(text: str, start: int) -> int:
    """Index just past the ``{...}`` block opening at ``text[start]``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced selection")


def requested_cost(query: str, variables: Mapping) -> int:
    """Shopify's static estimate, for the documents the inventory adapter sends: a mutation
    field costs 10, every object (a ``{`` below the root field) 1; ``nodes(ids:)`` multiplies
    its per-item objects by the number of ids; a connection costs 2 plus ``first`` times
    the objects of one node."""
    root = re.search(r"\{\s*\w+(?:\s*:\s*\w+)?\s*(\([^)]*\))?[^{]*\{", query)
    if root is None:
        raise ValueError("no root field")
    body_start = root.end() - 1
    inner = query[body_start + 1:_selection_end(query, body_start) - 1]
    if query.lstrip().startswith("mutation"):
        return 10 + inner.count("{")
    if "nodes(ids:" in query:
        return len(variables.get("ids") or ()) * inner.count("{")
    nodes = re.search(r"\bnodes\s*\{", inner)
    if nodes is not None and "first:" in (root.group(1) or ""):
        node_start = nodes.end() - 1
        return 2 + int(variables.get("first") or 0) * inner[node_start:_selection_end(inner, node_start)].count("{")
    return 1 + inner.count("{")


class FakeShopifyAdmin:
    """Shopify's GraphQL Admin API for inventory (2026-04), in memory. ``handle`` answers
    the JSON body of one ``POST /admin/api/2026-04/graphql.json``; the transport and the
    token check belong to the caller (a ``responses`` callback, the benchmark's server).

    * ``variants``: SKU -> InventoryItem gid, answered by ``productVariants(query:
      "sku:... OR sku:...")``. Like Shopify's search, which is not an exact match, a term
      also matches longer SKUs starting with it; ``first``/``after`` page the matches.
    * ``levels``: (InventoryItem gid, Location gid) -> ``available``; a missing or None
      level is not stocked there. ``nodes(ids:)`` reads them (null for an item neither
      in ``variants`` nor in ``levels``), ``inventoryActivate`` stocks one at 0, and
      ``inventorySetQuantities`` checks the 2026-04 shape (``@idempotent`` key,
      ``name: "available"``, ``changeFromQuantity`` on every quantity, <= 250), applies the
      compare-and-set (any stale quantity: nothing applied, ``CHANGE_FROM_QUANTITY_STALE``
      at its index) and replays the stored answer for a repeated idempotency key.
    * A leaky cost bucket of ``maximum`` points refilled at ``restore_rate`` per second of
      ``monotonic`` (inject the clock the client sleeps on); every answer carries
      ``extensions.cost``, and a request the bucket cannot pay for is answered
      ``{"errors": [{"extensions": {"code": "THROTTLED"}}]}``.

    ``requests`` counts answered requests by root field, throttled ones included;
    ``throttled`` and ``errors`` (malformed or unsupported documents) count answers.
    """

    def __init__(self, *, restore_rate: float = 50.0, maximum: float = 1000.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self.restore_rate = restore_rate
        self.maximum = maximum
        self._monotonic = monotonic
        self.available = maximum
        self.updated = monotonic()
        self.variants: dict[str, str] = {}
        self.levels: dict[tuple[str, str], int | None] = {}
        self.replies: dict[str, tuple[str, bytes]] = {}  # idempotency key -> (variables, answer)
        self.lock = threading.Lock()  # the benchmark's server answers from several threads
        self.requests: dict[str, int] = {}
        self.throttled = 0
        self.errors = 0

    def _bucket(self, cost: int) -> tuple[bool, dict]:
        now = self._monotonic()
        self.available = min(self.maximum, self.available + (now - self.updated) * self.restore_rate)
        self.updated = now
        ok = self.available >= cost
        if ok:
            self.available -= cost
        return ok, {"requestedQueryCost": cost, "actualQueryCost": cost if ok else None,
                    "throttleStatus": {"maximumAvailable": self.maximum,
                                       "currentlyAvailable": round(self.available, 1),
                                       "restoreRate": self.restore_rate}}

    def handle(self, body: dict) -> bytes:
        query, variables = body.get("query", ""), body.get("variables") or {}
        with self.lock:
            operation = re.search(r"\{\s*(\w+)", query).group(1)
            self.requests[operation] = self.requests.get(operation, 0) + 1
            ok, cost = self._bucket(requested_cost(query, variables))
            if not ok:
                self.throttled += 1
                return json.dumps({"errors": [{"message": "Throttled", "extensions": {
                    "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": {"cost": cost}}).encode()
            if operation == "inventorySetQuantities":
                data = self._set(query, variables)
            elif operation == "nodes":
                data = self._read(variables)
            elif operation == "inventoryActivate":
                data = self._activate(query, variables)
            elif operation == "productVariants":
                data = self._variants(variables)
            else:
                data = None
            if data is None:
                self.errors += 1
                return json.dumps({"errors": [{"message": f"unsupported or malformed {operation}"}]}).encode()
            if isinstance(data, bytes):
                return data
            answer = json.dumps({"data": data, "extensions": {"cost": cost}}).encode()
            if operation == "inventorySetQuantities":
                self.replies[variables["idempotencyKey"]] = (json.dumps(variables, sort_keys=True), answer)
            return answer

    def _set(self, query: str, variables: dict):
        key = variables.get("idempotencyKey")
        payload = variables.get("input") or {}
        quantities = payload.get("quantities") or []
        if ("@idempotent(key: $idempotencyKey)" not in query or not key or payload.get("name") != "available"
                or not 0 < len(quantities) <= 250 or any("changeFromQuantity" not in q for q in quantities)):
            return None
        if key in self.replies:
            seen, answer = self.replies[key]
            if seen != json.dumps(variables, sort_keys=True):
                return {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": [
                    {"code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH", "field": None,
                     "message": "The same idempotency key cannot be used with different operation parameters."}]}}
            return answer
        errors = []
        for i, q in enumerate(quantities):
            level = (q["inventoryItemId"], q["locationId"])
            if self.levels.get(level) is None:
                errors.append({"code": "ITEM_NOT_STOCKED_AT_LOCATION", "field": ["input", "quantities", str(i),
                               "locationId"], "message": "The inventory item is not stocked at the location."})
            elif q["changeFromQuantity"] is not None and self.levels[level] != q["changeFromQuantity"]:
                errors.append({"code": "CHANGE_FROM_QUANTITY_STALE", "field": ["input", "quantities", str(i),
                               "changeFromQuantity"],
                               "message": "The changeFromQuantity value does not match persisted value."})
        if not errors:
            for q in quantities:
                self.levels[(q["inventoryItemId"], q["locationId"])] = q["quantity"]
        group = None if errors else {"id": f"gid://shopify/InventoryAdjustmentGroup/{len(self.replies) + 1}",
                                     "reason": payload.get("reason"),
                                     "referenceDocumentUri": payload.get("referenceDocumentUri")}
        return {"inventorySetQuantities": {"inventoryAdjustmentGroup": group, "userErrors": errors}}

    def _read(self, variables: dict):
        locations = [variables[k] for k in sorted((k for k in variables if re.fullmatch(r"l\d+", k)),
                                                  key=lambda k: int(k[1:]))]
        known = set(self.variants.values()) | {item for item, _location in self.levels}
        nodes = []
        for gid in variables.get("ids") or []:
            if gid not in known:
                nodes.append(None)  # Shopify answers null for an id it does not know
                continue
            node = {"id": gid}
            for i, loc in enumerate(locations):
                value = self.levels.get((gid, loc))
                node[f"l{i}"] = None if value is None else {"quantities": [{"name": "available", "quantity": value}]}
            nodes.append(node)
        return {"nodes": nodes}

    def _activate(self, query: str, variables: dict):
        if "@idempotent(key: $idempotencyKey)" not in query or not variables.get("idempotencyKey"):
            return None  # mandatory for inventoryActivate from 2026-04 too
        level = (variables["inventoryItemId"], variables["locationId"])
        if self.levels.get(level) is None:
            self.levels[level] = 0
        return {"inventoryActivate": {"inventoryLevel": {
            "id": f"gid://shopify/InventoryLevel/{abs(hash(level))}",
            "quantities": [{"name": "available", "quantity": self.levels[level]}]}, "userErrors": []}}

    def _variants(self, variables: dict):
        first = variables.get("first")
        if not isinstance(first, int) or not 0 < first <= 250:
            return None
        terms = [re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
                 for raw in re.findall(r'sku:("(?:[^"\\]|\\.)*"|[^\s()"]+)', variables.get("query") or "")]
        matches = [(sku, gid) for sku, gid in self.variants.items() if any(sku.startswith(t) for t in terms)]
        after = variables.get("after")
        start = int(base64.b64decode(after)) if after else 0
        page = matches[start:start + first]
        end = start + len(page)
        return {"productVariants": {
            "pageInfo": {"hasNextPage": end < len(matches),
                         "endCursor": base64.b64encode(str(end).encode()).decode() if page else None},
            "nodes": [{"sku": sku, "inventoryItem": {"id": gid}} for sku, gid in page]}}


# ---------------------------------------------------------------- WooCommerce REST v3 (stock)


class FakeWooStore:
    """WooCommerce's REST API v3 for stock, in memory. ``handle`` answers one request whose
    path is relative to ``/wp-json/wc/v3``; authentication belongs to the caller.

    * ``GET /products?sku=A,B`` (exact match over products and variations, ``per_page`` at
      most 100, ``X-WP-Total``/``X-WP-TotalPages``).
    * ``POST /products/batch`` and ``/products/{parent}/variations/batch``: 413 above 100
      updates, otherwise one answer per update in an HTTP 200; an unknown id, a variation
      sent through the wrong route, or an id in ``refuse`` (product id -> error object:
      what a save that failed at the store answers) comes back as an inline error.

    ``requests`` counts requests by kind ("GET products", "POST products/batch",
    "POST variations/batch"); ``errors`` counts batches refused with 413.
    """

    def __init__(self):
        self.products: dict[int, dict] = {}  # id -> {"sku", "parent_id", "stock_quantity", "meta"}
        self.by_sku: dict[str, int] = {}
        self.refuse: dict[int, dict] = {}
        self.lock = threading.Lock()  # the benchmark's server answers from several threads
        self.requests: dict[str, int] = {}
        self.errors = 0

    def add_product(self, product_id: int, sku: str, stock_quantity: int, *, parent_id: int | None = None,
                    meta: Mapping[str, str] | None = None) -> None:
        self.products[product_id] = {"sku": sku, "parent_id": parent_id or 0, "stock_quantity": stock_quantity,
                                     "meta": dict(meta or {})}
        self.by_sku[sku] = product_id

    def handle(self, method: str, path: str, query: Mapping[str, list[str]],
               body: dict | None) -> tuple[int, dict, bytes]:
        """``query`` as ``urllib.parse.parse_qs`` returns it; answers (status, headers, body)."""
        variation = re.fullmatch(r"/products/(\d+)/variations/batch", path)
        if method == "GET" and path == "/products":
            return self._find(query)
        if method == "POST" and (path == "/products/batch" or variation):
            return self._batch(int(variation.group(1)) if variation else None, body or {})
        return 404, {}, json.dumps({"code": "rest_no_route", "message": "No route was found matching the URL and "
                                    "request method.", "data": {"status": 404}}).encode()

    def _count(self, kind: str) -> None:
        self.requests[kind] = self.requests.get(kind, 0) + 1

    def _find(self, query: Mapping[str, list[str]]) -> tuple[int, dict, bytes]:
        with self.lock:
            self._count("GET products")
            skus = query.get("sku", [""])[0].split(",")
            per_page = min(int(query.get("per_page", ["10"])[0]), 100)
            page = int(query.get("page", ["1"])[0])
            matches = [self.products[self.by_sku[s]] | {"id": self.by_sku[s]} for s in skus if s in self.by_sku]
            pages = math.ceil(len(matches) / per_page)
            chunk = matches[(page - 1) * per_page:page * per_page]
            body = [{"id": p["id"], "sku": p["sku"], "parent_id": p["parent_id"], "manage_stock": True,
                     "stock_quantity": p["stock_quantity"],
                     "meta_data": [{"id": n, "key": k, "value": v} for n, (k, v) in enumerate(p["meta"].items())]}
                    for p in chunk]
            return 200, {"X-WP-Total": str(len(matches)), "X-WP-TotalPages": str(pages)}, json.dumps(body).encode()

    def _batch(self, parent_id: int | None, body: dict) -> tuple[int, dict, bytes]:
        with self.lock:
            self._count("POST products/batch" if parent_id is None else "POST variations/batch")
            updates = body.get("update") or []
            if len(updates) > 100:
                self.errors += 1
                return 413, {}, json.dumps({"code": "woocommerce_rest_request_entity_too_large",
                                            "message": "Unable to accept more than 100 items for this request.",
                                            "data": {"status": 413}}).encode()
            answer = []
            for update in updates:
                product = self.products.get(update.get("id"))
                if product is None or product["parent_id"] != (parent_id or 0):
                    answer.append({"id": update.get("id"), "error": {"code": "woocommerce_rest_product_invalid_id",
                                                                     "message": "Invalid ID.",
                                                                     "data": {"status": 400}}})
                    continue
                if update["id"] in self.refuse:
                    answer.append({"id": update["id"], "error": self.refuse[update["id"]]})
                    continue
                product["stock_quantity"] = update["stock_quantity"]
                for meta in update.get("meta_data", []):
                    product["meta"][meta["key"]] = meta["value"]
                answer.append({"id": update["id"], "sku": product["sku"], "parent_id": product["parent_id"],
                               "manage_stock": update["manage_stock"], "stock_quantity": product["stock_quantity"],
                               "meta_data": [{"key": k, "value": v} for k, v in product["meta"].items()]})
            return 200, {}, json.dumps({"update": answer}).encode()


# ---------------------------------------------------------------- pending WooCommerce connections


class InMemoryPendingConnections:
    """``PendingConnections`` in a dict; ``take`` marks a connection taken under a lock, so of
    two callbacks with the same ``user_id`` exactly one gets it."""

    def __init__(self):
        self._pending: dict[str, PendingConnection] = {}
        self._taken: set[str] = set()
        self._outcomes: dict[str, ConnectionOutcome] = {}
        self._lock = threading.Lock()

    def create(self, pending: PendingConnection) -> None:
        with self._lock:
            if pending.nonce in self._pending:
                raise ValueError("a pending connection with this nonce already exists")
            self._pending[pending.nonce] = pending

    def take(self, nonce: str) -> PendingConnection | None:
        with self._lock:
            pending = self._pending.get(nonce)
            if pending is None or nonce in self._taken:
                return None
            self._taken.add(nonce)
            return pending

    def finish(self, connection_id: str, outcome: ConnectionOutcome) -> None:
        with self._lock:
            self._outcomes[connection_id] = outcome

    def state(self, connection_id: str) -> ConnectionState | None:
        with self._lock:
            for nonce, pending in self._pending.items():
                if pending.connection_id == connection_id:
                    return ConnectionState(pending, nonce in self._taken, self._outcomes.get(connection_id))
        return None


# ---------------------------------------------------------------- store hand-off


class FakeFulfillmentOrders:
    """A Shopify shop's fulfillment orders in memory (the ``FulfillmentOrders`` port), as
    Shopify behaves: a whole-order move reassigns the fulfillment order, a partial move
    splits the lines off into a new one at the destination; a fulfillment takes the units
    off ``remaining`` and closes a fulfillment order with nothing left. ``refuse_moves``
    (order id -> message) answers a move with that userError; ``moves`` and
    ``fulfillments`` record what was asked."""

    platform = "shopify"

    def __init__(self):
        self.orders: dict[str, list[FulfillmentOrder]] = {}
        self.tracking: dict[str, set[str]] = {}
        self.refuse_moves: dict[str, str] = {}
        self.moves: list[Move] = []
        self.fulfillments: list[dict] = []
        self.lock = threading.Lock()  # the browser tests' server answers from several threads
        self._ids = 1000

    def _gid(self, kind: str) -> str:
        self._ids += 1
        return f"gid://shopify/{kind}/{self._ids}"

    def add_order(self, order_id: str, lines: Mapping[str, tuple[str, int]], location_id: str, *,
                  status: str = "OPEN", request_status: str = "UNSUBMITTED") -> str:
        """One fulfillment order at ``location_id`` holding ``lines`` (line id -> (sku, units))."""
        with self.lock:
            gid = self._gid("FulfillmentOrder")
            actions = frozenset({"CREATE_FULFILLMENT", "MOVE"} if status == "OPEN" and request_status == "UNSUBMITTED"
                                else {"CREATE_FULFILLMENT"} if status == "IN_PROGRESS" else set())
            self.orders.setdefault(order_id, []).append(FulfillmentOrder(
                gid, status, request_status, location_id, location_id.rsplit("/", 1)[-1], actions,
                tuple(FulfillmentOrderLine(self._gid("FulfillmentOrderLineItem"), line_id, sku, units)
                      for line_id, (sku, units) in lines.items())))
            return gid

    def location_of(self, order_id: str, line_id: str) -> str | None:
        """Where the line's unfulfilled units are assigned now."""
        for order in self.orders.get(order_id, ()):
            if any(line.line_id == line_id and line.remaining > 0 for line in order.lines):
                return order.location_id
        return None

    def fulfillment_orders(self, order_id: str) -> OrderFulfillment | None:
        with self.lock:
            if order_id not in self.orders:
                return None
            return OrderFulfillment(tuple(self.orders[order_id]), frozenset(self.tracking.get(order_id, ())))

    def move(self, move: Move) -> MoveOutcome:
        with self.lock:
            self.moves.append(move)
            order_id, index = self._find(move.fulfillment_order_id)
            if order_id in self.refuse_moves:
                return MoveOutcome(False, self.refuse_moves[order_id])
            current = self.orders[order_id][index]
            if move.lines is None:
                self.orders[order_id][index] = FulfillmentOrder(
                    current.id, current.status, current.request_status, move.location_id,
                    move.location_id.rsplit("/", 1)[-1], current.actions, current.lines)
                return MoveOutcome(True, None, move.location_id)
            moving = dict(move.lines)
            kept = tuple(line for line in current.lines if line.id not in moving)
            self.orders[order_id][index] = FulfillmentOrder(current.id, current.status, current.request_status,
                                                            current.location_id, current.location_name,
                                                            current.actions, kept)
            self.orders[order_id].append(FulfillmentOrder(
                self._gid("FulfillmentOrder"), current.status, current.request_status, move.location_id,
                move.location_id.rsplit("/", 1)[-1], current.actions,
                tuple(line for line in current.lines if line.id in moving)))
            return MoveOutcome(True, None, move.location_id)

    def create_fulfillment(self, lines, *, carrier: str, tracking_number: str, tracking_url: str | None,
                           notify_customer: bool) -> str:
        with self.lock:
            order_id = None
            for fulfillment_order_id, picked in lines.items():
                order_id, index = self._find(fulfillment_order_id)
                current = self.orders[order_id][index]
                units = dict(picked)
                remaining = tuple(FulfillmentOrderLine(line.id, line.line_id, line.sku,
                                                       line.remaining - units.get(line.id, 0)) for line in current.lines)
                closed = all(line.remaining == 0 for line in remaining)
                self.orders[order_id][index] = FulfillmentOrder(
                    current.id, "CLOSED" if closed else current.status, current.request_status, current.location_id,
                    current.location_name, frozenset() if closed else current.actions, remaining)
            self.tracking.setdefault(order_id, set()).add(tracking_number)
            gid = self._gid("Fulfillment")
            self.fulfillments.append({"id": gid, "order_id": order_id, "lines": dict(lines), "carrier": carrier,
                                      "tracking_number": tracking_number, "tracking_url": tracking_url,
                                      "notify_customer": notify_customer})
            return gid

    def _find(self, fulfillment_order_id: str) -> tuple[str, int]:
        for order_id, orders in self.orders.items():
            for index, order in enumerate(orders):
                if order.id == fulfillment_order_id:
                    return order_id, index
        raise ProviderError(f"fake shopify: no fulfillment order {fulfillment_order_id}")


class FakeOrderNotes:
    """A WooCommerce store's order meta, statuses and notes in memory (the ``OrderNotes`` port)."""

    platform = "woocommerce"

    def __init__(self):
        self.meta: dict[str, dict[str, str]] = {}
        self.statuses: dict[str, str] = {}
        self.by_order: dict[str, list[OrderNote]] = {}  # every note added, per order
        self.lock = threading.Lock()

    def update_order(self, order_id: str, *, meta: Mapping[str, str] | None = None, status: str | None = None) -> None:
        with self.lock:
            self.meta.setdefault(order_id, {}).update(meta or {})
            if status:
                self.statuses[order_id] = status

    def notes(self, order_id: str) -> list[OrderNote]:
        with self.lock:
            return list(self.by_order.get(order_id, ()))

    def add_note(self, order_id: str, text: str, *, customer: bool) -> int:
        with self.lock:
            notes = self.by_order.setdefault(order_id, [])
            notes.append(OrderNote(len(notes) + 1, text, customer))
            return len(notes)
