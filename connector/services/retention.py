"""Personal data kept only as long as it is needed.

Order deliveries carry the buyer's name, address, email and phone; the routing,
reservations and forecasts built from them keep none (a region, a country, SKUs and
quantities). After ``[privacy] keep_personal_data_days`` the deliveries are cut to
nothing, orders lose their province, postcode and customer id, and customer
data-request exports (kept for the merchant to answer the request) lose their
content. Kept past that: deliveries that failed to apply (the only copy of the
order, listed in `connector exceptions`) and everything of an order whose hand-over
to a 3PL is still due, since the 3PL needs the address. The shop's compliance
webhooks (customers/redact, shop/redact) still act at once; this is the floor under
them. Each shop's run with anything cut is in its audit log as ``privacy.retention``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from connector.config import Settings
from connector.store import Store


@dataclass
class RetentionReport:
    cutoff: datetime
    dry_run: bool
    shops: dict[str, dict[str, int]] = field(default_factory=dict)  # shop -> {bodies, orders, exports}


class Retention:
    def __init__(self, settings: Settings, clock: Callable[[], datetime]):
        self.settings = settings
        self.clock = clock

    def minimise(self, store: Store, *, dry_run: bool = False) -> RetentionReport:
        now = self.clock()
        cutoff = now - timedelta(days=self.settings.privacy.keep_personal_data_days)
        report = RetentionReport(cutoff, dry_run)
        for shop_id in store.shop_ids():  # a shop since removed from the config too
            if dry_run:
                report.shops[shop_id] = store.past_retention(shop_id, cutoff)
                continue
            counts = store.minimise_past_retention(shop_id, cutoff)
            report.shops[shop_id] = counts
            if any(counts.values()):
                with store.write():
                    store.event(shop_id, "privacy.retention", shop_id, {"before": cutoff.isoformat(), **counts}, now)
        return report
