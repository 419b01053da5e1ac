"""Push sellable quantities to a storefront without overwriting the store's own decrements.

Store-free: the caller hands in what it wants at the store (``desired``), what it last
knew to be there (``known``) and how much its own reservations grew since
(``reserved_since_known``); each pusher talks to the storefront through its adapter and
returns an outcome whose ``at_store`` figures the caller persists as the new ``known``.
Nothing here reads or writes the database.

* Shopify compares and sets: every quantity is sent with ``changeFromQuantity`` = what
  we knew, so an order the store took in between makes the write come back
  ``CHANGE_FROM_QUANTITY_STALE`` instead of overwriting it. Those items are read again,
  the quantity is recomputed with :func:`reconcile_quantity` and sent again.
* WooCommerce has no compare-and-set: current stock is read right before the write and
  the same rule applied; the remaining window is the few hundred milliseconds between
  that read and the batch write.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from adapters.shopify_inventory import (
    MAX_QUANTITIES_PER_CALL,
    NOT_STOCKED,
    STALE,
    QuantityError,
    QuantitySet,
    SetResult,
    ShopifyInventory,
)
from adapters.woocommerce_stock import WooCommerceStock, WooItem, WooStockUpdate, region_meta_key
from connector.chunks import chunked
from connector.domain.availability_push import reconcile_quantity
from connector.domain.model import ProviderAuthError, ProviderError

log = logging.getLogger("connector.storefront_push")

Key = tuple[str, str]  # (InventoryItem gid, Location gid)

# inventorySetQuantities reasons are a fixed list (§4.2); "correction" is the one for a
# system that is the source of truth re-stating a quantity.
SHOPIFY_REASON = "correction"


# ---------------------------------------------------------------- Shopify


@dataclass(frozen=True)
class PlannedSet:
    """A quantity to set; ``change_from`` is what the store should hold now. ``activate``:
    the item is not stocked at the location yet (a dry run stops there)."""

    quantity: int
    change_from: int | None
    activate: bool = False


@dataclass
class ShopifyPushOutcome:
    dry_run: bool
    # values confirmed at the store by this push (set, or read and found right): persist
    # them as ``known``. Keys whose desired value equalled ``known`` are not re-confirmed.
    at_store: dict[Key, int] = field(default_factory=dict)
    planned: dict[Key, PlannedSet] = field(default_factory=dict)  # first computation per changed key
    failures: dict[Key, str] = field(default_factory=dict)
    unchanged: int = 0
    read_keys: list[Key] = field(default_factory=list)  # read because no known value: a dry run's only reads
    calls: Counter = field(default_factory=Counter)  # API requests by operation (THROTTLED answers included)
    sent: int = 0  # quantities sent, resends included
    stale_rereads: int = 0
    activations: int = 0
    throttled_waits: int = 0
    paced_waits: int = 0


class ShopifyPusher:
    def __init__(
        self,
        client: ShopifyInventory,
        *,
        max_attempts: int = 3,
    ):
        """``max_attempts`` bounds the send rounds per key (a stale item is re-read and
        resent at most that many times in all). Idempotency keys come from the client's
        ``new_key``."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.client = client
        self.max_attempts = max_attempts

    def push(
        self,
        desired: Mapping[Key, int],
        known: Mapping[Key, int],
        reserved_since_known: Mapping[Key, int],
        *,
        dry_run: bool,
        reference_uri: str,
    ) -> ShopifyPushOutcome:
        """Send the keys whose ``desired`` differs from ``known`` (``changeFromQuantity`` =
        ``known``), in calls of at most 250. Keys without a known value are read first; one
        not stocked at its location is activated, then set from what it holds. A stale
        compare re-reads the key and applies :func:`reconcile_quantity` before resending, at
        most ``max_attempts`` sends per key. A dry run reads only the keys without a known
        value and sends nothing."""
        before = self.client.stats.copy()
        outcome = ShopifyPushOutcome(dry_run=dry_run)
        pending: dict[Key, PlannedSet] = {}
        unknown: list[Key] = []
        for key, wanted in desired.items():
            want = max(0, wanted)  # a negative sellable figure means nothing to sell
            if known.get(key) is None:
                unknown.append(key)
            elif known[key] == want:
                outcome.unchanged += 1
            else:
                pending[key] = PlannedSet(want, known[key])
        if unknown:
            outcome.read_keys = unknown
            for key, now in self._read(unknown, outcome).items():
                # no known value: nothing to measure a store decrement against
                want = reconcile_quantity(desired[key], None, now)
                if now is None:
                    pending[key] = PlannedSet(want, None, activate=True)
                elif now == want:
                    outcome.at_store[key] = now
                    outcome.unchanged += 1
                else:
                    pending[key] = PlannedSet(want, now)
        outcome.planned = dict(pending)
        if not dry_run:
            ready: dict[Key, PlannedSet] = {}
            for key, plan in pending.items():
                if plan.activate:
                    self._activate_then(key, plan.quantity, ready, outcome)
                else:
                    ready[key] = plan
            self._send(ready, desired, known, reserved_since_known, reference_uri, outcome)
        after = self.client.stats
        outcome.calls = after.requests - before.requests
        outcome.throttled_waits = after.throttled - before.throttled
        outcome.paced_waits = after.paced_waits - before.paced_waits
        return outcome

    # ------------------------------------------------------------ steps

    def _read(self, keys: Sequence[Key], outcome: ShopifyPushOutcome) -> dict[Key, int | None]:
        """Current ``available`` for ``keys``; keys that cannot be read become failures.

        Read per location, so an item is only asked about where we need it (a query's cost
        grows with items x locations)."""
        by_location: dict[str, list[str]] = {}
        for item_gid, location_gid in keys:
            by_location.setdefault(location_gid, []).append(item_gid)
        current: dict[Key, int | None] = {}
        try:
            for location_gid, items in by_location.items():
                current.update(self.client.read_available(items, [location_gid]))
        except ProviderAuthError:
            raise
        except ProviderError as exc:
            for key in keys:
                outcome.failures[key] = f"read failed: {exc}"
            return {}
        found = {}
        for key in keys:
            if key in current:
                found[key] = current[key]
            else:
                outcome.failures[key] = "INVALID_INVENTORY_ITEM: Shopify does not know this inventory item"
        return found

    def _activate_then(self, key: Key, quantity: int, ready: dict[Key, PlannedSet],
                       outcome: ShopifyPushOutcome) -> None:
        """Stock the item at the location, then queue ``quantity`` against what it holds."""
        try:
            now = self.client.activate(*key)
        except ProviderAuthError:
            raise
        except ProviderError as exc:
            outcome.failures[key] = f"inventoryActivate failed: {exc}"
            return
        outcome.activations += 1
        if now == quantity:
            outcome.at_store[key] = now
        else:
            ready[key] = PlannedSet(quantity, now)

    def _send(
        self,
        pending: dict[Key, PlannedSet],
        desired: Mapping[Key, int],
        known: Mapping[Key, int],
        reserved: Mapping[Key, int],
        reference_uri: str,
        outcome: ShopifyPushOutcome,
    ) -> None:
        for _round in range(self.max_attempts):
            if not pending:
                return
            resend: dict[Key, PlannedSet] = {}
            stale: dict[Key, PlannedSet] = {}
            not_stocked: list[Key] = []
            for batch in chunked(list(pending.items()), MAX_QUANTITIES_PER_CALL):
                self._send_batch(batch, reference_uri, outcome, resend, stale, not_stocked)
            if stale:
                outcome.stale_rereads += len(stale)
                for key, now in self._read(list(stale), outcome).items():
                    if now is None:
                        not_stocked.append(key)
                        continue
                    # Even when ``now`` equals what we tried to set, an order may have brought it
                    # there: the rule decides, never "looks like ours".
                    want = reconcile_quantity(desired[key], known.get(key), now, reserved.get(key, 0))
                    if want == now:
                        outcome.at_store[key] = now
                    else:
                        resend[key] = PlannedSet(want, now)
            for key in not_stocked:
                # the level went away since we knew it: what it held then is no baseline
                self._activate_then(key, reconcile_quantity(desired[key], None, None), resend, outcome)
            pending = resend
        for key in pending:
            outcome.failures[key] = f"still not set after {self.max_attempts} attempts (the store kept changing)"

    def _send_batch(
        self,
        batch: Sequence[tuple[Key, PlannedSet]],
        reference_uri: str,
        outcome: ShopifyPushOutcome,
        resend: dict[Key, PlannedSet],
        stale: dict[Key, PlannedSet],
        not_stocked: list[Key],
    ) -> None:
        quantities = [QuantitySet(key[0], key[1], plan.quantity, plan.change_from) for key, plan in batch]
        # one key per batch of variables; the adapter reuses it for its own retries (THROTTLED,
        # 429/5xx, IDEMPOTENCY_CONCURRENT_REQUEST), so a repeat can never apply twice
        idempotency_key = self.client.new_key()
        result: SetResult | None = None
        for _try in range(self.max_attempts):
            try:
                result = self.client.set_available(
                    quantities, reason=SHOPIFY_REASON, reference_uri=reference_uri, idempotency_key=idempotency_key
                )
            except ProviderAuthError:
                raise
            except ProviderError as exc:
                for key, _plan in batch:
                    outcome.failures[key] = f"inventorySetQuantities failed: {exc}"
                return
            outcome.sent += len(quantities)
            if not (result.needs_new_key and not result.item_errors):
                break
            idempotency_key = self.client.new_key()  # IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED: "Retry with a new idempotency key"
        assert result is not None  # max_attempts >= 1
        if result.applied:
            for key, plan in batch:
                outcome.at_store[key] = plan.quantity
            return
        if result.call_errors:
            reason = _describe(result.call_errors)
            for key, _plan in batch:
                outcome.failures[key] = reason
            return
        for index, (key, plan) in enumerate(batch):
            errors = result.item_errors.get(index, ())
            codes = {e.code for e in errors}
            if STALE in codes:
                stale[key] = plan
            elif NOT_STOCKED in codes:
                not_stocked.append(key)
            elif errors:
                outcome.failures[key] = _describe(errors)
            else:
                resend[key] = plan  # not applied only because another quantity in the call failed


# ---------------------------------------------------------------- WooCommerce


@dataclass
class WooPushOutcome:
    dry_run: bool
    at_store: dict[str, int] = field(default_factory=dict)  # stock the store confirmed: persist as ``known``
    planned: dict[str, WooStockUpdate] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    unchanged: int = 0
    # SKUs whose stock was read fresh right before writing. A dry run reads nothing and
    # previews from the ``items`` it was given.
    read_skus: list[str] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)  # API requests by kind
    sent: int = 0


class WooPusher:
    def __init__(self, client: WooCommerceStock):
        self.client = client

    def push(
        self,
        desired_total: Mapping[str, int],
        region_meta: Mapping[str, Mapping[str, int]],
        known: Mapping[str, int],
        reserved_since_known: Mapping[str, int],
        items: Mapping[str, WooItem],
        *,
        dry_run: bool,
    ) -> WooPushOutcome:
        """``items`` is the caller's last ``find_by_sku`` answer: it decides which SKUs
        changed (total against ``known``, region meta against the item's meta) and is the
        basis of a dry run. A real push reads the changed SKUs again first."""
        before = self.client.stats.copy()
        outcome = WooPushOutcome(dry_run=dry_run)
        changed: list[str] = []
        wanted_meta: dict[str, dict[str, str]] = {}
        for sku, want in desired_total.items():
            item = items.get(sku)
            if item is None:
                outcome.failures[sku] = "no product or variation with this SKU in the store"
                continue
            wanted_meta[sku] = {region_meta_key(r): str(v) for r, v in sorted(region_meta.get(sku, {}).items())}
            if known.get(sku) == want and item.manage_stock and _meta_matches(item, wanted_meta[sku]):
                outcome.unchanged += 1
            else:
                changed.append(sku)
        if dry_run:
            for sku in changed:
                outcome.planned[sku] = self._update(sku, items[sku], desired_total, known, reserved_since_known,
                                                    wanted_meta[sku])
            return outcome
        updates: list[tuple[str, WooStockUpdate]] = []
        if changed:
            outcome.read_skus = changed
            try:
                fresh = self.client.find_by_sku(changed)
            except ProviderAuthError:
                raise
            except ProviderError as exc:
                fresh = {}
                for sku in changed:
                    outcome.failures[sku] = f"stock read failed: {exc}"
            for sku in changed:
                if sku in outcome.failures:
                    continue
                item = fresh.get(sku)
                if item is None:
                    outcome.failures[sku] = "no longer in the store"
                    continue
                update = self._update(sku, item, desired_total, known, reserved_since_known, wanted_meta[sku])
                if item.manage_stock and item.stock_quantity == update.stock_quantity and _meta_matches(
                        item, update.meta):
                    outcome.at_store[sku] = update.stock_quantity
                    continue
                outcome.planned[sku] = update
                updates.append((sku, update))
        if updates:
            results = self.client.update_stock([update for _sku, update in updates])
            outcome.sent = len(updates)
            for (sku, _update), result in zip(updates, results):
                if result.ok and result.stock_quantity is not None:
                    outcome.at_store[sku] = result.stock_quantity
                else:
                    outcome.failures[sku] = f"{result.error_code}: {result.error_message}"
        outcome.calls = self.client.stats.requests - before.requests
        return outcome

    @staticmethod
    def _update(sku: str, item: WooItem, desired_total: Mapping[str, int], known: Mapping[str, int],
                reserved: Mapping[str, int], meta: Mapping[str, str]) -> WooStockUpdate:
        current = item.stock_quantity if item.manage_stock else None
        quantity = reconcile_quantity(desired_total[sku], known.get(sku), current, reserved.get(sku, 0))
        return WooStockUpdate(item.product_id, item.parent_id, quantity, meta)


# ---------------------------------------------------------------- helpers


def _meta_matches(item: WooItem, meta: Mapping[str, str]) -> bool:
    return all(item.meta.get(key) == value for key, value in meta.items())


def _describe(errors: Sequence[QuantityError]) -> str:
    return "; ".join(f"{e.code or 'ERROR'}: {e.message}" for e in errors)
