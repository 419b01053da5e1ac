"""Storefront availability: push what each location / product may sell, and answer
the availability API.

A push re-allocates the SKUs it covers (so it reflects the reservations made
since the last allocation), then:

- Shopify: per SKU × node mapped to a Shopify location, ``available`` = the units
  the allocation lets regions sell from that node. Inventory item ids are looked
  up by SKU once and kept in ``storefront_items``.
- WooCommerce: per SKU, ``stock_quantity`` = the units all regions may sell, and
  the per-region figures as product meta for themes.

What we last set at the store, the SKU's reservations at that moment and the
units we held back for store orders our inbox had not processed yet are kept
in ``push_state``: the compare-and-set base that keeps a push from overwriting
the store's own decrements (``domain.availability_push``). Reservations are
counted per SKU across nodes, so an order the store took at one location and
we routed to another explains the decrement too. A hold older than
``HOLD_EXPIRES_AFTER`` is dropped: by then the order behind it has long been
processed or never will be (a store-side adjustment, which the next 3PL sync
restates anyway).

Pushes are requested (``push_requests``) in the same transaction as the change
that needs them — reservations after orders (debounced by the shop's
``debounce_seconds``), a received transfer — and run by the scheduler's
``push-due`` job; the sync and planning chains push directly.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable

from connector.config import Settings, ShopSettings
from connector.ports import ShopDirectory
from connector.domain.availability_push import carry_hold
from connector.domain.model import ProviderError
from connector.services.planning import Planning
from connector.services.storefront_push import ShopifyPusher, WooPusher
from connector.store import Store

log = logging.getLogger("connector.availability")

TOTAL = "*"  # push_state location of a WooCommerce product's total
RETRY_FAILED_PUSH_AFTER = timedelta(minutes=1)
HOLD_EXPIRES_AFTER = timedelta(hours=24)


@dataclass
class PushReport:
    shop_id: str
    platform: str
    dry_run: bool
    skus: int = 0
    # (sku, location: node id or "*", store had / we knew, we set or would set)
    changes: list[tuple[str, str, int | None, int]] = field(default_factory=list)
    unchanged: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # "sku@location" -> why
    not_in_store: list[str] = field(default_factory=list)
    skipped: str | None = None  # why nothing was pushed at all


class Availability:
    """``client_for(shop_settings)``: the storefront inventory client (Shopify GraphQL or
    WooCommerce REST) for a shop, or None when the shop has no credentials; the
    composition root keeps one per shop."""

    def __init__(self, settings: Settings, shops: ShopDirectory, clock: Callable[[], datetime], planning: Planning,
                 client_for: Callable[[ShopSettings], object | None]):
        self.settings = settings
        self.shops = shops
        self.clock = clock
        self.planning = planning
        self.client_for = client_for

    # ------------------------------------------------------------ reading

    def lookup(self, store: Store, shop_id: str, sku: str, region_id: str) -> dict | None:
        """Units of ``sku`` the region may buy now, its promise, and the node they ship
        from (the one holding most of them); None for a SKU the shop does not have."""
        shop = self.shops.require(shop_id)
        rows = store.allocated_units(shop_id, sku, region_id)
        if not rows and not store.has_sku(shop_id, sku):
            return None
        region = shop.network.regions[region_id]
        return {
            "shop": shop_id, "sku": sku, "region": region_id,
            "units": sum(units for _, units, _ in rows),
            "promise_days": region.promise_days,
            "node": rows[0][0] if rows else None,
            "nodes": {node: units for node, units, _ in rows},
            "as_of": max((at for _, _, at in rows), default=None),
        }

    # ------------------------------------------------------------ pushing

    def push(self, store: Store, shop_id: str, skus: Iterable[str] | None = None, *,
             dry_run: bool = False) -> PushReport:
        """Re-allocate ``skus`` (default: all) and push the result; a dry run saves
        nothing and sends nothing, and says what it would send."""
        shop = self.shops.require(shop_id)
        report = PushReport(shop_id, shop.platform, dry_run)
        if not shop.storefront.push:
            report.skipped = "push is off for this shop ([storefront] push = false)"
            return report
        client = self.client_for(shop)
        if client is None:
            report.skipped = ("no credentials: set [storefront] access_token (Shopify) or consumer_key and "
                              "consumer_secret (WooCommerce), or their environment variables")
            return report
        allocation = self.planning.allocate(store, shop_id, skus, save=not dry_run)
        report.skus = allocation.skus
        if shop.platform == "shopify":
            self._push_shopify(store, shop, client, allocation.allocations, report)
        else:
            self._push_woo(store, shop, client, allocation.allocations, report)
        if not dry_run:
            with store.write():
                store.event(shop_id, "storefront.push", shop.platform,
                            {"skus": report.skus, "changed": len(report.changes), "calls": report.calls,
                             "failures": dict(list(report.failures.items())[:20]),
                             "not_in_store": report.not_in_store[:20]}, self.clock())
        return report

    def push_due(self, store: Store) -> list[PushReport]:
        """Run the pushes whose debounce has passed; a failed one is asked for again."""
        now = self.clock()
        reports = []
        for shop_id, skus, reasons in store.take_due_pushes(now):
            if self.shops.get(shop_id) is None:
                continue
            try:
                reports.append(self.push(store, shop_id, skus))
            except ProviderError as exc:
                log.warning("push for %s failed: %s", shop_id, exc)
                with store.write():
                    store.request_push(shop_id, skus or [], "retry after failure", now + RETRY_FAILED_PUSH_AFTER,
                                       now)
                    store.event(shop_id, "storefront.push_failed", None, {"error": str(exc), "reasons": reasons},
                                now)
        return reports

    def _push_shopify(self, store: Store, shop: ShopSettings, client, allocations, report: PushReport) -> None:
        locations = shop.shopify_locations
        if not locations:
            report.skipped = "no node has a shopify_location"
            return
        before = client.stats.requests.copy()
        skus = [a.sku for a in allocations]
        items = store.storefront_items(shop.id, skus)
        missing = [sku for sku in skus if sku not in items]
        if missing:
            found = client.inventory_items(missing)
            if found and not report.dry_run:
                store.save_storefront_items(shop.id, {sku: (gid, None) for sku, gid in found.items()}, self.clock())
            items.update({sku: (gid, None) for sku, gid in found.items()})
            report.not_in_store = sorted(set(missing) - set(found))
        base = _Base(store, shop.id, self.clock())
        raw, desired, known, grew, key_of = {}, {}, {}, {}, {}
        for a in allocations:
            if a.sku not in items:
                continue
            item = items[a.sku][0]
            per_node: dict[str, int] = {}
            for (node, _region), units in a.units.items():
                per_node[node] = per_node.get(node, 0) + units
            for node, location in locations.items():
                key = (item, location)
                key_of[key] = (a.sku, node)
                raw[key] = per_node.get(node, 0)
                desired[key], known_value, grew[key] = base.adjust(a.sku, node, raw[key])
                if known_value is not None:
                    known[key] = known_value
        outcome = ShopifyPusher(client).push(desired, known, grew, dry_run=report.dry_run,
                                             reference_uri=f"gid://micro-fulfillment-connector/Push/{shop.id}")
        report.unchanged = outcome.unchanged
        report.calls = dict(client.stats.requests - before)
        for key, plan in sorted(outcome.planned.items()):
            sku, node = key_of[key]
            report.changes.append((sku, node, plan.change_from, plan.quantity))
        for key, why in outcome.failures.items():
            sku, node = key_of[key]
            report.failures[f"{sku}@{node}"] = why
        if not report.dry_run:
            base.save([(*key_of[key], quantity, raw[key])
                       for key, quantity in _confirmed(desired, known, outcome).items()])

    def _push_woo(self, store: Store, shop: ShopSettings, client, allocations, report: PushReport) -> None:
        before = client.stats.requests.copy()
        skus = [a.sku for a in allocations]
        items = client.find_by_sku(skus)
        report.not_in_store = sorted(set(skus) - set(items))
        base = _Base(store, shop.id, self.clock())
        raw, desired, meta, known, grew = {}, {}, {}, {}, {}
        for a in allocations:
            if a.sku not in items:
                continue
            raw[a.sku] = sum(a.by_region.values())
            meta[a.sku] = dict(a.by_region)
            desired[a.sku], known_value, grew[a.sku] = base.adjust(a.sku, TOTAL, raw[a.sku])
            if known_value is not None:
                known[a.sku] = known_value
        outcome = WooPusher(client).push(desired, meta, known, grew, items, dry_run=report.dry_run)
        report.unchanged = outcome.unchanged
        report.calls = dict(client.stats.requests - before)
        for sku, update in sorted(outcome.planned.items()):
            report.changes.append((sku, TOTAL, known.get(sku, items[sku].stock_quantity), update.stock_quantity))
        for sku, why in outcome.failures.items():
            report.failures[f"{sku}@{TOTAL}"] = why
        if not report.dry_run:
            base.save([(sku, TOTAL, quantity, raw[sku])
                       for sku, quantity in _confirmed(desired, known, outcome).items()])


def _confirmed(desired, known, outcome) -> dict:
    """What the store holds after a push, per key: what it confirmed, and for keys left
    alone because they already matched, what we knew. Saving the latter too moves their
    reservation baseline on, so growth that explained a hold is not counted again later."""
    confirmed = dict(outcome.at_store)
    for key in desired:
        if key in known and key not in confirmed and key not in outcome.planned and key not in outcome.failures:
            confirmed[key] = known[key]
    return confirmed


class _Base:
    """The compare-and-set base of one push: what we knew per (sku, location), and the
    hold carried forward (``domain.availability_push.carry_hold``)."""

    def __init__(self, store: Store, shop_id: str, now: datetime):
        self.store, self.shop_id, self.now = store, shop_id, now
        self.state = store.push_state(shop_id)
        self.reserved: dict[str, int] = {}
        for (_node, sku), units in store.reserved_totals(shop_id).items():
            self.reserved[sku] = self.reserved.get(sku, 0) + units

    def adjust(self, sku: str, location: str, desired: int) -> tuple[int, int | None, int]:
        """(desired with the unexplained hold taken off, known quantity or None, reservation
        growth not used by the hold)."""
        if (sku, location) not in self.state:
            return desired, None, 0
        quantity, reserved_then, held, pushed_at = self.state[(sku, location)]
        if pushed_at is not None and self.now - pushed_at > HOLD_EXPIRES_AFTER:
            held = 0
        effective, growth = carry_hold(desired, held, self.reserved.get(sku, 0) - reserved_then)
        return effective, quantity, growth

    def save(self, rows) -> None:
        """rows: (sku, location, quantity now at the store, our desired figure before holds)."""
        self.store.save_push_state(self.shop_id, [
            (sku, location, quantity, self.reserved.get(sku, 0), max(0, desired - quantity))
            for sku, location, quantity, desired in rows], self.now)


def storefront_client(shop: ShopSettings):
    """The real inventory client for a shop, or None without credentials."""
    from adapters.shopify_inventory import ShopifyInventory
    from adapters.woocommerce_stock import WooCommerceStock

    config = shop.storefront
    if shop.platform == "shopify":
        if not config.access_token:
            return None
        return ShopifyInventory(shop.shop_domain, config.access_token, api_version=config.api_version)
    if not (config.consumer_key and config.consumer_secret):
        return None
    return WooCommerceStock(shop.store_url, config.consumer_key, config.consumer_secret)
