"""WooCommerce order reconciliation end to end: orders read back from `responses` answers
shaped like the REST v3 "List all orders" docs (the documented order 727 as the demo
shop's), stored in the inbox under their webhook's key, processed, and the watermark
that says where the next run starts."""
from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connector.bootstrap import build
from connector.config import settings_from_dict
from connector.store import parse_ts
from connector.services.reconcile import ORDER_TOPICS
from tests.conftest import WOO_SHOP, WOO_URL, fixture_json, initialised
from tests.e2e.test_webhooks import reservations, woo_727_demo
from tests.e2e.test_woo_refunds import container, http_clock  # noqa: F401 - fixtures: the WooCommerce API client
from tests.support import woocommerce_orders_factory

ORDERS = f"{WOO_URL}/wp-json/wc/v3/orders"
WEBHOOKS = f"{WOO_URL}/wp-json/wc/v3/webhooks"
OURS = "https://connector.example/webhooks/woocommerce"
JSON = {"Content-Type": "application/json"}


class Listing:
    """GET /orders answered per ``status`` from what the test put there (the server's
    filtering by time is the store's job; the requests' parameters are checked instead)."""

    def __init__(self, mock: responses.RequestsMock):
        self.by_status: dict[str, list[list[dict]]] = {"any": [], "trash": []}
        self.asked: list[dict] = []
        self.webhooks = healthy_webhooks()
        self.fail_orders = False
        mock.add_callback(responses.GET, ORDERS, callback=self._answer)
        mock.add_callback(responses.GET, WEBHOOKS, callback=lambda request: (200, JSON, json.dumps(self.webhooks)))

    def _answer(self, request):
        if self.fail_orders:
            return 404, JSON, json.dumps({"code": "rest_no_route", "message": "No route", "data": {"status": 404}})
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        self.asked.append(query)
        pages = self.by_status[query["status"]]
        body = pages.pop(0) if pages else []
        return 200, {**JSON, "X-WP-TotalPages": "1"}, json.dumps(body)


def webhook(webhook_id: int, topic: str, status: str = "active", url: str = OURS) -> dict:
    """The docs' webhook 142 as one to ``url`` for ``topic``."""
    hook = {**fixture_json("woocommerce", "webhooks_list.json")[1], "id": webhook_id, "topic": topic,
            "status": status, "delivery_url": url}
    hook["resource"], hook["event"] = topic.split(".")
    return hook


def healthy_webhooks() -> list[dict]:
    """The documented list (two webhooks to somewhere else) plus one of ours, active, per order topic."""
    return fixture_json("woocommerce", "webhooks_list.json") + [webhook(200 + i, t) for i, t in enumerate(ORDER_TOPICS)]


@pytest.fixture
def listing(rsps) -> Listing:
    return Listing(rsps)


def order_727(clock, *, status: str = "processing", minutes_ago: int = 30) -> dict:
    order = woo_727_demo()
    order["status"] = status
    modified = (clock() - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S")
    order["date_modified_gmt"] = order["date_modified"] = modified
    return order


def inbox_rows(store, order_id: str) -> list[dict]:
    return store._dicts("SELECT topic, status, headers FROM webhook_inbox WHERE shop_id = ? AND resource_id = ? "
                        "ORDER BY id", (WOO_SHOP, order_id))


def test_an_order_whose_webhook_never_came_is_read_back_routed_and_reserved(container, store, clock, listing):
    listing.by_status["any"].append([order_727(clock)])
    report = container.reconcile.reconcile(store)
    (shop,) = report.shops
    assert (shop.shop_id, shop.read, shop.stored, shop.error, shop.webhook_problems) == (WOO_SHOP, 1, 1, None, [])
    # The first run reads back first_lookback_hours (24 by default), both listings.
    assert [(q["status"], q["modified_after"]) for q in listing.asked] == [
        ("any", "2026-11-21T15:00:00"), ("trash", "2026-11-21T15:00:00")]
    assert [(r["topic"], r["status"]) for r in inbox_rows(store, "727")] == [("order.updated", "pending")]
    assert container.inbox.process(store).processed == 1
    assert set(reservations(store, WOO_SHOP, "727")) == {"315", "316"}
    # The watermark is the store's modification time of the order, not our clock.
    assert shop.watermark == clock() - timedelta(minutes=30)

    # The next run starts reconcile_overlap_minutes (10) before it and finds a duplicate.
    listing.asked.clear()
    listing.by_status["any"].append([order_727(clock)])
    again = container.reconcile.reconcile(store).shops[0]
    assert (again.read, again.stored) == (1, 0)
    assert listing.asked[0]["modified_after"] == "2026-11-22T14:20:00"
    assert len(inbox_rows(store, "727")) == 1
    assert container.inbox.process(store).processed == 0


def test_an_order_its_webhook_brought_is_a_duplicate(container, store, clock, listing, post_woo):
    order = order_727(clock)
    assert post_woo(order, "order.created").status_code == 200
    container.inbox.process(store)
    listing.by_status["any"].append([order])
    shop = container.reconcile.reconcile(store).shops[0]
    assert (shop.read, shop.stored) == (1, 0)
    assert [r["topic"] for r in inbox_rows(store, "727")] == ["order.created"]


def test_an_order_trashed_without_its_webhook_releases_its_reservations(container, store, clock, listing, post_woo):
    assert post_woo(order_727(clock, minutes_ago=60), "order.created").status_code == 200
    container.inbox.process(store)
    assert reservations(store, WOO_SHOP, "727")
    listing.by_status["trash"].append([order_727(clock, status="trash", minutes_ago=5)])
    assert container.reconcile.reconcile(store).shops[0].stored == 1
    assert container.inbox.process(store).processed == 1
    assert reservations(store, WOO_SHOP, "727") == {}


def test_a_changed_order_read_back_is_processed_as_its_update(container, store, clock, listing, post_woo):
    """The webhook for the cancellation was lost; the read-back cancels the order."""
    assert post_woo(order_727(clock, minutes_ago=60), "order.created").status_code == 200
    container.inbox.process(store)
    listing.by_status["any"].append([order_727(clock, status="cancelled", minutes_ago=2)])
    assert container.reconcile.reconcile(store).shops[0].stored == 1
    container.inbox.process(store)
    assert reservations(store, WOO_SHOP, "727") == {}


def test_a_failing_store_leaves_the_watermark_and_is_reported_once(container, store, clock, rsps):
    refusal = {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.",
               "data": {"status": 401}}
    rsps.get(ORDERS, status=401, json=refusal)
    rsps.get(WEBHOOKS, status=401, json=refusal)
    first = container.reconcile.reconcile(store).shops[0]
    second = container.reconcile.reconcile(store).shops[0]
    assert "ProviderAuthError" in first.error and second.error == first.error
    assert first.watermark is None
    # An unreachable store says nothing about its webhooks: not asked, nothing recorded.
    assert first.webhook_problems == [] and not store.events(WOO_SHOP, "webhooks.unhealthy")
    assert not any("/webhooks" in call.request.url for call in rsps.calls)
    poll = store.order_poll(WOO_SHOP)
    assert poll["failures"] == 2 and poll["last_ok_at"] is None
    assert len(store.events(WOO_SHOP, "reconcile.failed")) == 1

    rsps.replace(responses.GET, ORDERS, json=[], headers={"X-WP-TotalPages": "0"})
    rsps.replace(responses.GET, WEBHOOKS, json=healthy_webhooks())
    container.reconcile.reconcile(store)
    poll = store.order_poll(WOO_SHOP)
    assert (poll["failures"], poll["last_error"], parse_ts(poll["last_ok_at"])) == (0, None, clock())


def test_a_listing_cut_short_holds_the_watermark_where_it_got(config_dict, clock, http_clock, rsps):
    config_dict["scheduler"] = {**config_dict.get("scheduler", {}), "reconcile_max_requests": 1}
    container = initialised(build(settings_from_dict(config_dict), clock=clock,
                                  woocommerce_orders_factory=woocommerce_orders_factory(http_clock)), clock)
    listing = Listing(rsps)
    base = clock() - timedelta(hours=5)
    full_page = []
    for i in range(100):
        order = woo_727_demo()
        order["id"] = 5000 + i
        order["date_modified_gmt"] = (base + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S")
        full_page.append(order)
    listing.by_status["any"].append(full_page)
    listing.by_status["trash"].append([order_727(clock, status="trash", minutes_ago=1)])
    store = container.open_store()
    try:
        shop = container.reconcile.reconcile(store).shops[0]
        assert (shop.read, shop.stored) == (101, 101)
        # Not the trashed order's newer time: "any" may have more after its 100th order.
        assert shop.watermark == base + timedelta(seconds=99)
    finally:
        store.close()


def test_shops_without_an_orders_key_are_skipped_and_shopify_shops_untouched(settings, clock):
    container = initialised(build(settings, clock=clock, woocommerce_orders_factory=lambda shop: None), clock)
    store = container.open_store()
    try:
        report = container.reconcile.reconcile(store)
    finally:
        store.close()
    assert (report.shops, report.skipped) == ([], [WOO_SHOP])


def test_the_cli_reads_back_stores_and_processes(config_dict, config_file, runner, clock, rsps):
    from connector.cli import main
    from tests.conftest import to_toml

    config_dict["shops"][WOO_SHOP]["storefront"] = {"consumer_key": "ck_cli", "consumer_secret": "cs_cli"}
    config_file.write_text(to_toml(config_dict), encoding="utf-8")
    listing = Listing(rsps)
    listing.by_status["any"].append([order_727(clock)])
    result = runner.invoke(main, ["--config", str(config_file), "reconcile"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{WOO_SHOP}: 1 orders read, 1 not delivered by webhook and now stored" in result.output
    assert "inbox: processed 1, failed 0" in result.output

    rsps.replace(responses.GET, ORDERS, status=404, json={"code": "rest_no_route", "message": "No route",
                                                          "data": {"status": 404}})
    failed = runner.invoke(main, ["--config", str(config_file), "reconcile", "--shop", WOO_SHOP],
                           catch_exceptions=False)
    assert failed.exit_code == 1 and f"{WOO_SHOP}: FAILED" in failed.output
    listed = runner.invoke(main, ["--config", str(config_file), "exceptions"], catch_exceptions=False)
    assert f"{WOO_SHOP} Orders have not been read back from your store since " in listed.output
    assert "1 run in a row failed: ProviderRejected: woocommerce: GET /wp-json/wc/v3/orders rejected with HTTP 404" \
        in listed.output
    unknown = runner.invoke(main, ["--config", str(config_file), "reconcile", "--shop", "nope"])
    assert unknown.exit_code == 2


def test_an_order_the_parser_refuses_is_kept_as_rejected_with_the_reason(container, store, clock, listing):
    broken = order_727(clock)
    broken["line_items"][0]["quantity"] = "two"
    listing.by_status["any"].append([broken])
    assert container.reconcile.reconcile(store).shops[0].stored == 1
    [row] = store._dicts("SELECT status, last_error, headers FROM webhook_inbox WHERE resource_id = '727'")
    assert row["status"] == "rejected" and "quantity" in row["last_error"]
    assert row["headers"] == '{"x-connector-source": "reconciliation"}'
    assert container.inbox.process(store).processed == 0


def test_a_disabled_or_missing_order_webhook_is_reported_until_fixed(container, store, listing, cli):
    listing.webhooks = [h for h in healthy_webhooks() if h["topic"] != "order.deleted"]
    disabled = next(h for h in listing.webhooks if h["topic"] == "order.created")
    disabled["status"] = "disabled"
    first = container.reconcile.reconcile(store).shops[0]
    assert first.webhook_problems == [
        f"webhook #{disabled['id']} (order.created to {OURS}) does not deliver: WooCommerce disabled it after "
        "deliveries failed; set it Active again in WooCommerce > Settings > Advanced > Webhooks",
        "no webhook sends order.deleted to this service: add one (delivery URL "
        "https://<this service>/webhooks/woocommerce, the shop's webhook_secret)",
    ]
    container.reconcile.reconcile(store)
    [event] = store.events(WOO_SHOP, "webhooks.unhealthy")
    assert event["detail"]["problems"] == first.webhook_problems
    listed = cli("exceptions").output
    [line] = [l for l in listed.splitlines() if "webhook" in l]
    assert line.startswith(f"{WOO_SHOP} Your store is not sending order changes by webhook. ")
    assert f"Webhook #{disabled['id']} (order.created to {OURS}) does not deliver" in line
    assert "No webhook sends order.deleted to this service" in line

    # While the orders cannot be read, the problems last seen stand.
    listing.fail_orders = True
    during = container.reconcile.reconcile(store).shops[0]
    assert during.error and during.webhook_problems == first.webhook_problems
    assert len(store.events(WOO_SHOP, "webhooks.unhealthy")) == 1
    listing.fail_orders = False

    listing.webhooks = healthy_webhooks()
    assert container.reconcile.reconcile(store).shops[0].webhook_problems == []
    assert len(store.events(WOO_SHOP, "webhooks.healthy")) == 1
    assert cli("exceptions").output.strip() == "no exceptions"


@pytest.mark.parametrize("field", ["sku", "name", "postcode", "status"])
def test_an_order_read_back_with_a_lone_surrogate_is_stored_applied_and_keyed_as_its_webhook(
        container, store, clock, listing, post_woo, field):
    odd = order_727(clock)
    {"sku": lambda: odd["line_items"][0].update(sku="SEEDS-MIX\ud800"),
     "name": lambda: odd["line_items"][0].update(name="Seeds \udfff"),
     "postcode": lambda: odd["shipping"].update(postcode="E1 6AN\ud800"),
     "status": lambda: odd.update(status="\ud800")}[field]()
    listing.by_status["any"].append([odd])

    shop = container.reconcile.reconcile(store).shops[0]

    assert (shop.error, shop.stored) == (None, 1)
    report = container.inbox.process(store)
    assert (report.retrying, report.failed) == (0, 0)
    # The webhook for the same state of the order is the same delivery.
    assert post_woo(odd, "order.updated").get_json()["duplicate"] is True
