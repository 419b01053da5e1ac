"""Handing routed orders to 3PLs, and hearing back about shipments.

Exactly once per (order, node): routing adds one ``forward_jobs`` row per pair
in the same transaction as the reservation (a unique index forbids a second).
Sending claims the job first, then calls the adapter, whose ``create_order``
looks our reference up before it POSTs — so a retry after a crash, a timeout or
a cut answer finds the order instead of creating it again. The HTTP call happens
outside any database transaction. Every failure of one job (whatever it raises)
is recorded on that job and the batch goes on; only a refusal fails a job at
once. When its attempts are used up, a job fails for good only once a lookup has
shown the 3PL does not hold the order; while that is unknown it keeps retrying.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Mapping, Sequence

from connector.config import Settings
from connector.ports import ShopDirectory
from connector.domain.model import (
    OutboundOrder,
    ProviderError,
    ProviderOrderRef,
    ProviderRejected,
    ProviderUnavailable,
    ShipmentLine,
)
from connector.domain.shipments import fact_from_3pl
from connector.services.shipments import record_shipment
from connector.store import ActiveReservation, Store

log = logging.getLogger("connector.forwarding")


def retry_delay(attempts: int) -> timedelta:
    """How long a failed outside call waits before its next try: 1, 2, 4 ... minutes
    after the 1st, 2nd, 3rd ... failure, capped at an hour."""
    return timedelta(minutes=min(2 ** (attempts - 1), 60))


@dataclass
class ForwardReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class ShipmentReport:
    shipments: int = 0
    released: int = 0
    errors: list[str] = field(default_factory=list)


class Forwarding:
    def __init__(self, settings: Settings, shops: ShopDirectory, warehouses: Callable[[str, str], object],
                 contact_readers: Mapping[str, Callable], clock: Callable[[], datetime]):
        self.settings = settings
        self.shops = shops
        self.warehouses = warehouses
        self.contact_readers = contact_readers  # platform -> shipping_contact(payload)
        self.clock = clock

    def forward_due(self, store: Store, limit: int = 100) -> ForwardReport:
        report = ForwardReport()
        for job in store.claim_forward_jobs(self.clock(), limit):
            now = self.clock()
            order = store.order(job["shop_id"], job["order_id"])
            if order is None or order.state != "open":
                store.finish_forward_job(job["id"], status="cancelled", now=now,
                                         error=f"order is {order.state if order else 'gone'}")
                report.cancelled += 1
                continue
            # What the 3PL gets, read once: the job records exactly these lines as sent.
            placed = [r for r in store.active_reservations(job["shop_id"], job["order_id"])
                      if r.node_id == job["node_id"]]
            try:
                outbound = self._outbound(store, job, order, placed)
                result = self.warehouses(job["shop_id"], job["provider"]).create_order(outbound)
            except Exception as exc:  # noqa: BLE001 - one job's failure, whatever it is, must not stop the batch
                self._failed(store, job, placed, exc, now, report)
                continue
            self._sent(store, job, placed, result, now, report)
        return report

    def _sent(self, store: Store, job: dict, placed: Sequence[ActiveReservation], result: ProviderOrderRef,
              now: datetime, report: ForwardReport) -> None:
        store.finish_forward_job(job["id"], status="sent", now=now, provider_order_id=result.provider_order_id,
                                 sent_lines=[(r.line_id, r.sku, r.quantity) for r in placed])
        with store.write():
            store.event(job["shop_id"], "forward.sent", job["order_id"],
                        {"node_id": job["node_id"], "provider_order_id": result.provider_order_id,
                         "created": result.created}, now)
        report.sent += 1

    def _failed(self, store: Store, job: dict, placed: Sequence[ActiveReservation], exc: Exception,
                now: datetime, report: ForwardReport) -> None:
        """A refusal fails the job at once; anything else backs off and tries again (the
        next try looks the reference up first). With the attempts used up, a lookup
        decides: found is sent, absent fails for good, still unknown keeps retrying."""
        if not isinstance(exc, ProviderError):
            log.exception("forward job %s (%s) crashed", job["id"], job["reference"])
        attempts = job["attempts"] + 1
        error = f"{type(exc).__name__}: {exc}"[:500]
        permanent = isinstance(exc, ProviderRejected)
        if not permanent and attempts >= self.settings.scheduler.forward_max_attempts:
            found, permanent, error = self._settle(job, error)
            if found is not None:
                self._sent(store, job, placed, found, now, report)
                return
        if permanent:
            store.finish_forward_job(job["id"], status="failed", now=now, error=error)
            with store.write():
                store.resolve_amendments(job["id"], "the order never reached the 3PL", now)
                store.event(job["shop_id"], "forward.failed", job["order_id"],
                            {"node_id": job["node_id"], "attempts": attempts, "error": error}, now)
            report.failed += 1
        else:
            store.finish_forward_job(job["id"], status="pending", now=now, error=error,
                                     next_attempt_at=now + retry_delay(attempts))
            report.retrying += 1
        report.errors.append(f"{job['reference']}: {error}")

    def _settle(self, job: dict, error: str) -> tuple[ProviderOrderRef | None, bool, str]:
        """(found, fail for good, error) from one last lookup of the job's reference. A
        3PL that is down leaves the outcome unknown; any other lookup failure is final."""
        try:
            found = self.warehouses(job["shop_id"], job["provider"]).find_order(job["reference"])
        except ProviderUnavailable as exc:
            return None, False, (f"outcome unknown: {job['provider']} may hold {job['reference']} "
                                 f"(lookup failed: {exc}); last error: {error}")[:500]
        except Exception as exc:  # noqa: BLE001 - recorded on the job
            return None, True, f"{error}; the lookup failed too: {type(exc).__name__}: {exc}"[:500]
        if found is None:
            return None, True, f"{error}; {job['provider']} holds no order {job['reference']}"[:500]
        return found, False, error

    def _outbound(self, store: Store, job: dict, order, placed: Sequence[ActiveReservation]) -> OutboundOrder:
        """The 3PL order for ``placed`` (the order's reservations at the job's node)."""
        shop_id, order_id, node_id = job["shop_id"], job["order_id"], job["node_id"]
        stored = store.latest_order_body(shop_id, order_id)
        if stored is None:
            raise ProviderRejected("no stored order body with an address (redacted or never received)")
        platform, body = stored
        contact = self.contact_readers[platform](json.loads(body))
        if contact is None or not contact.address_lines:
            raise ProviderRejected("the order has no shipping address to hand to the 3PL")
        shop = self.shops.require(shop_id)
        source = shop.sources[node_id]
        provider = shop.providers[job["provider"]]
        try:  # the 3PL knows our SKUs under its own names (sku_map read backwards)
            lines = tuple(ShipmentLine(provider.provider_sku(r.sku), r.quantity) for r in placed)
        except ValueError as exc:
            raise ProviderRejected(f"{job['provider']}: {exc}") from None
        if not lines:
            raise ProviderRejected(f"nothing is reserved at {node_id} for this order any more")
        method = source.shipping_method_for(order.region_id)
        if method is None:  # config validation makes this unreachable for forwarding nodes
            raise ProviderRejected(f"no shipping method configured at {node_id} for region {order.region_id!r}")
        return OutboundOrder(
            reference=job["reference"], order_number=order.number, ship_to_name=contact.name or order.number,
            ship_to=contact.address, address_lines=contact.address_lines, city=contact.city, email=contact.email,
            phone=contact.phone, lines=lines, location_id=source.location, shipping_method=method,
        )

    def amended(self, store: Store, job_id: int, by: str) -> int:
        """Someone changed (or cancelled) the 3PL's order to match ours: the job now has
        the quantities the order wants, a reservation still held for a line shrinks or
        goes with it, and the notes close. Returns how many lines; 0 when none waited."""
        now = self.clock()
        with store.write():
            notes = store.open_amendments(job_id=job_id)
            if not notes:
                return 0
            job = store.forward_job(job_id)
            wanted = {a["line_id"]: a["wanted"] for a in notes}
            sent = store.lines_with_3pl(job["shop_id"], job["order_id"])
            store.set_sent_lines(job_id, [(line_id, line.sku, wanted.get(line_id, line.quantity))
                                          for line_id, line in sent.items()
                                          if line.job_id == job_id and wanted.get(line_id, line.quantity) > 0])
            for reservation in store.active_reservations(job["shop_id"], job["order_id"]):
                quantity = wanted.get(reservation.line_id)
                if reservation.node_id != job["node_id"] or quantity is None or quantity >= reservation.quantity:
                    continue
                if quantity == 0:
                    store.release(reservation, job["shop_id"], "removed from the 3PL's order", now)
                else:
                    store.shrink_reservation(reservation, job["shop_id"], quantity)
            closed = store.resolve_amendments(job_id, f"amended at the 3PL by {by}", now)
            store.event(job["shop_id"], "forward.amended", job["order_id"],
                        {"job_id": job_id, "node_id": job["node_id"], "by": by, "lines": wanted}, now)
        return closed

    def poll_shipments(self, store: Store) -> ShipmentReport:
        """Record shipment updates; a shipped (order, node) holds no reservation any more."""
        report = ShipmentReport()
        for shop in map(self.shops.require, self.shops.ids()):
            providers = sorted({s.provider for s in shop.sources.values() if s.forward_orders and s.provider})
            for provider in providers:
                now = self.clock()
                since = store.shipments_since(shop.id, provider) or now - timedelta(days=7)
                try:
                    shipments = list(self.warehouses(shop.id, provider).list_shipments(since))
                except ProviderError as exc:
                    report.errors.append(f"{shop.id}/{provider}: {exc}")
                    continue
                with store.write():
                    for shipment in shipments:
                        store.upsert_shipment(shop.id, provider, shipment, now)
                        report.shipments += 1
                        job = store.forward_job_by_reference(shipment.reference) if shipment.reference else None
                        if job is None or job["shop_id"] != shop.id:
                            continue
                        record_shipment(store, shop.id, job["order_id"], job["node_id"],
                                        fact_from_3pl(provider, shipment), now)
                        if shipment.shipped_at is None:
                            continue
                        store.mark_forward_shipped(job["id"])
                        store.resolve_amendments(job["id"], "shipped before the 3PL's order was changed", now)
                        for reservation in store.active_reservations(shop.id, job["order_id"]):
                            if reservation.node_id == job["node_id"]:
                                store.release(reservation, shop.id, "shipped", now)
                                report.released += 1
                    # Overlap the next window a little: providers' clocks and ours differ.
                    store.set_shipments_since(shop.id, provider, now - timedelta(minutes=5))
        return report


def drift_report(store: Store, shop_id: str) -> list[dict]:
    """Our reservations against the 3PL's committed quantities, per node and SKU.

    ``forwarded`` is what we reserved for orders already handed to the 3PL (and not
    yet reflected by a sync); the 3PL's ``committed`` should include at least that.
    ``over_reserved``: reserved units beyond what the node holds (only lines already
    at the 3PL are left over-reserved; see ``services.stock.resolve_over_reserved``).
    """
    committed = store.committed_by_node_sku(shop_id)
    reserved = store.reserved_by_node_sku(shop_id)
    forwarded = store.reserved_by_node_sku(shop_id, forwarded_only=True)
    over = {(r["node_id"], r["sku"]): r["reserved"] - r["available"] for r in store.over_reserved(shop_id)}
    rows = []
    for key in sorted(set(committed) | set(reserved)):
        node_id, sku = key
        rows.append({
            "node_id": node_id, "sku": sku, "reserved": reserved.get(key, 0), "forwarded": forwarded.get(key, 0),
            "provider_committed": committed.get(key, 0),
            "drift": committed.get(key, 0) - forwarded.get(key, 0),
            "over_reserved": over.get(key, 0),
        })
    return rows
