"""The app's main navigation: its sections, one line each, in the order they are shown.

base.html renders ``main_nav()`` (a context processor installed by pages.py) on every
signed-in and embedded page: each entry's link (inside the Shopify admin it carries the
session token, as every ``url_for`` there does), ``aria-current="page"`` on the section the
page belongs to, and a count beside the label where the section has one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask import current_app, g, request, url_for

from connector.services.attention import needs_you
from connector.web import current_store
from connector.web.auth import current_user


@dataclass(frozen=True)
class Section:
    label: str
    endpoint: str  # where the entry links to
    # The pages that belong to it: endpoints, or "blueprint." for all of a blueprint's pages.
    covers: tuple[str, ...]
    count: Callable[[str], int | None] | None = None  # f(shop_id): the figure shown beside the label
    embedded_only: bool = False  # only inside the Shopify admin


def open_items(shop_id: str) -> int:
    """How many things wait in the action centre (collected once per request: the home
    page, which collects them anyway, leaves the count in ``g``)."""
    if "needs_you_count" not in g:
        container = current_app.extensions["connector"]
        shop = container.shops.get(shop_id)
        g.needs_you_count = 0 if shop is None else len(
            needs_you(current_store(), shop, container.settings, container.clock()))
    return g.needs_you_count


SECTIONS: tuple[Section, ...] = (
    Section("Home", "home.index", ("home.", "shopify_app.home")),
    Section("Action centre", "actions.index", ("actions.", "exceptions."), count=open_items),
    Section("Inventory", "inventory.index", ("inventory.",)),
    Section("Packing", "packing.index", ("packing.",)),
    Section("Metrics", "metrics.index", ("metrics.",)),
    Section("Settings", "settings.status", ("settings.",)),
    Section("Store locations", "shopify_app.locations", ("shopify_app.locations", "shopify_app.add_location"),
            embedded_only=True),
)


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    current: bool
    count: int | None


def main_nav() -> list[NavItem]:
    """This page's navigation (empty for a visitor who is not signed in)."""
    user = current_user()
    shop_id = g.get("shop_id") or (user.shop_id if user is not None else None)
    if shop_id is None:
        return []
    embedded, endpoint = bool(g.get("embedded")), request.endpoint or ""
    return [NavItem(section.label, url_for(section.endpoint), _covers(section, endpoint),
                    section.count(shop_id) if section.count else None)
            for section in SECTIONS if embedded or not section.embedded_only]


def _covers(section: Section, endpoint: str) -> bool:
    return any(endpoint == page or (page.endswith(".") and endpoint.startswith(page)) for page in section.covers)
