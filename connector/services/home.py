"""The home page's content for one shop: the verdict, setup status, today's figures and
what needs the creator, most urgent first. Every read here is an indexed lookup or a
kept aggregate (bench/ measures the page on a 20,000-SKU × 10-node shop)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from connector.config import Settings, ShopSettings
from connector.domain.attention import Attention
from connector.domain.overview import Figure, Verdict, figures, uncovered_problems, verdict
from connector.domain.setup import SetupCheck
from connector.services.attention import needs_you
from connector.services.inventory import stockout_risk_count
from connector.services.metrics import headline
from connector.services.setup_status import SetupStatus, setup_status
from connector.store import Store

# The home page lists this many "needs you" items; the action centre has them all.
NEEDS_YOU_SHOWN = 7


@dataclass(frozen=True)
class HomeView:
    verdict: Verdict
    setup: SetupStatus
    setup_problems: tuple[SetupCheck, ...]  # setup checks that need the creator and no listed item covers
    needs_you: tuple[Attention, ...]  # every open item, most urgent first
    figures: tuple[Figure, ...]  # today's, each with what it means

    @property
    def needs_you_shown(self) -> tuple[Attention, ...]:
        return self.needs_you[:NEEDS_YOU_SHOWN]


def home_view(store: Store, shop: ShopSettings, *, settings: Settings, shopify_app, now: datetime) -> HomeView:
    """``shopify_app``: connector.services.shopify_app.ShopifyApp, or None."""
    setup = setup_status(store, shop, shopify_app=shopify_app,
                         stale_after=timedelta(minutes=settings.sync.stale_after_minutes), now=now)
    items = tuple(needs_you(store, shop, settings, now))
    problems = tuple(uncovered_problems(setup.checks, {item.kind for item in items}))
    today = headline(store, shop, now)
    shown = figures(routed_today=today.orders_routed_today, open_exceptions=today.open_exceptions,
                    stockout_risk=stockout_risk_count(store, shop, now), on_time_rate_7d=today.on_time_rate_7d,
                    split_rate_7d=today.split_rate_7d, shipped_7d=today.shipped_7d)
    return HomeView(verdict(len(items) + len(problems), today.orders_routed_today), setup, problems, items, shown)
