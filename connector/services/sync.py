"""Stock sync: each node's stock from where it really lives.

A provider account (a 3PL login, a CSV feed) can feed several nodes. One sync
fetches the account's full inventory first — outside any transaction, since it
is network I/O — then replaces the stock of every node it feeds in a single
transaction. A failed or partial fetch changes nothing, records the error for
each node, and lets the node age into ``degraded`` (see domain.health).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Mapping

from connector.config import NodeSource, Settings
from connector.inventory_store import InventoryStore
from connector.ports import ShopDirectory
from connector.domain.model import InventoryRecord, ProviderError
from connector.services.exceptions import ExceptionActions, LineOutcome
from connector.services.stock import Rerouted, RoutingFor, resolve_over_reserved, when_text
from connector.store import Store

log = logging.getLogger("connector.sync")


@dataclass
class SyncOutcome:
    shop_id: str
    provider: str
    nodes: list[str]
    ok: bool
    rows: dict[str, int] = field(default_factory=dict)  # node -> rows stored
    unmapped_locations: list[str] = field(default_factory=list)
    handed_over: int = 0
    rerouted: list[Rerouted] = field(default_factory=list)  # reserved lines the new counts no longer cover
    exceptions_routed: list[LineOutcome] = field(default_factory=list)  # exception lines the new stock routed
    error: str | None = None


class StockSync:
    def __init__(self, settings: Settings, shops: ShopDirectory, warehouses: Callable[[str, str], object], clock: Callable[[], datetime],
                 routing: RoutingFor, exceptions: ExceptionActions | None = None):
        self.settings = settings
        self.shops = shops
        self.warehouses = warehouses  # (shop id, provider id) -> Warehouse
        self.clock = clock
        self.routing = routing  # Inbox.routing: re-routes what a lower count no longer covers
        self.exceptions = exceptions  # routes exception lines the new stock can ship

    def plan(self, shop_id: str | None = None, node_id: str | None = None) -> list[tuple[str, str, list[str]]]:
        """(shop, provider, nodes) to sync; ``node_id`` narrows to the one provider feeding it."""
        plan = []
        for shop in map(self.shops.require, self.shops.ids()):
            if shop_id and shop.id != shop_id:
                continue
            by_provider: dict[str, list[str]] = defaultdict(list)
            for source in shop.sources.values():
                if source.provider and (node_id is None or source.node_id == node_id):
                    by_provider[source.provider].append(source.node_id)
            plan.extend((shop.id, provider, sorted(nodes)) for provider, nodes in sorted(by_provider.items()))
        return plan

    def sync_provider(self, store: Store, shop_id: str, provider_id: str, only_nodes: Iterable[str] | None = None
                      ) -> SyncOutcome:
        shop = self.shops.require(shop_id)
        fed = [s for s in shop.sources.values() if s.provider == provider_id]
        if only_nodes is not None:
            wanted = set(only_nodes)
            fed = [s for s in fed if s.node_id in wanted]
        nodes = [s.node_id for s in fed]
        started = self.clock()
        outcome = SyncOutcome(shop_id, provider_id, nodes, ok=False)
        try:
            warehouse = self.warehouses(shop_id, provider_id)
            # list() drains the adapter's pages; any failure mid-way raises before we touch the store.
            records = list(warehouse.list_inventory())
            per_node, unmapped = _map_records(records, fed, shop.providers[provider_id].sku_map)
        except ProviderError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"[:500]
        except Exception as exc:  # noqa: BLE001 - a bug in one adapter must not stop the others' syncs
            log.exception("sync %s/%s crashed", shop_id, provider_id)
            outcome.error = f"{type(exc).__name__}: {exc}"[:500]
        finished = self.clock()
        if outcome.error is not None:
            log.warning("sync %s/%s failed: %s", shop_id, provider_id, outcome.error)
            for node_id in nodes:
                store.record_sync(shop_id, node_id, provider_id, started, finished, None, "failed", outcome.error)
            return outcome
        # A provider lists sold-out SKUs with zero quantities, so a node that gets no rows
        # at all is a mapping problem (a mistyped provider_location), not an empty shelf:
        # keep its stock and say so instead of wiping it.
        empty = [node_id for node_id in nodes if not per_node[node_id]]
        for node_id in empty:
            location = next(s.location for s in fed if s.node_id == node_id)
            error = (f"no inventory for location {location!r} in the provider's answer"
                     + (f" (it reported locations {', '.join(unmapped)})" if unmapped else "; nothing was reported"))
            store.record_sync(shop_id, node_id, provider_id, started, finished, 0, "failed", error)
            per_node.pop(node_id)
        # One transaction: the new counts, the hand-over, and moving the reservations the
        # new counts no longer cover, so no one ever sees a node holding less than it promised.
        with store.write():
            outcome.rows = store.replace_stock_for_nodes(shop_id, per_node, provider_id, finished)
            InventoryStore(store).stock_changed(shop_id, list(per_node), synced={
                node_id: [row[0] for row in rows] for node_id, rows in per_node.items()})
            for node_id in per_node:
                store.record_sync(shop_id, node_id, provider_id, started, finished, outcome.rows[node_id], "ok", None)
            outcome.handed_over = store.hand_over_forwarded(shop_id, list(per_node), started, finished)
            outcome.rerouted = resolve_over_reserved(store, self.routing(store, shop_id, finished), shop_id,
                                                     list(per_node), f"sync at {when_text(finished)}", finished)
            if self.exceptions is not None and per_node:
                outcome.exceptions_routed = self.exceptions.stock_arrived(store, shop_id, list(per_node), None,
                                                                          "sync", finished)
        outcome.unmapped_locations = unmapped
        outcome.ok = not empty
        if empty:
            outcome.error = f"no rows for {', '.join(empty)}; previous stock kept"
        return outcome

    def sync(self, store: Store, shop_id: str | None = None, node_id: str | None = None,
             progress: Callable[[SyncOutcome], None] | None = None) -> list[SyncOutcome]:
        outcomes = []
        for shop, provider, nodes in self.plan(shop_id, node_id):
            outcome = self.sync_provider(store, shop, provider, nodes)
            outcomes.append(outcome)
            if progress:
                progress(outcome)
        return outcomes


def _map_records(records: list[InventoryRecord], fed: list[NodeSource], sku_map: Mapping[str, str]
                 ) -> tuple[dict[str, list[tuple[str, int, int, int]]], list[str]]:
    """Provider location -> our node, provider SKU -> our SKU, as (sku, on_hand,
    committed, available) rows per node. A node fed by a provider without locations
    (a CSV of one partner) takes every record. Negative availability (oversold at the
    3PL) is stored as zero: there is nothing to promise."""
    by_location = {s.location: s.node_id for s in fed if s.location is not None}
    catch_all = next((s.node_id for s in fed if s.location is None), None)
    totals: dict[str, dict[str, list[int]]] = {s.node_id: {} for s in fed}
    unmapped: set[str] = set()
    for record in records:
        node_id = by_location.get(record.location_id, catch_all)
        if node_id is None:
            unmapped.add(record.location_id)
            continue
        sku = sku_map.get(record.sku, record.sku)
        available = record.available if record.available > 0 else 0
        row = totals[node_id].get(sku)
        if row is None:
            totals[node_id][sku] = [record.on_hand, record.committed, available]
        else:  # the same SKU twice at one location (two provider items): add them up
            row[0] += record.on_hand
            row[1] += record.committed
            row[2] += available
    per_node = {node: [(sku, *quantities) for sku, quantities in rows.items()] for node, rows in totals.items()}
    return per_node, sorted(unmapped)
