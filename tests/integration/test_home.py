"""The home page's data over a real database: each setup state (no 3PL, a failing sync, a
stale one, webhook problems, a Shopify store without a token or with too little access,
WooCommerce keys), the verdict and what needs the creator; and the page itself, at ``/``
and as the Shopify app's home inside the admin."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from adapters.shopify_auth import REQUIRED_SCOPES, Tokens
from connector.domain.setup import CheckState
from connector.domain.shipments import ShipmentFact
from connector.services.home import home_view
from connector.services.inventory import stockout_risk_count
from connector.services.shipments import record_shipment
from connector.services.shopify_app import new_shop_document
from tests.conftest import SHOPIFY_DOMAIN, SHOPIFY_SHOP, WOO_SHOP, with_shopify_app
from tests.integration.test_inventory import DEMAND
from tests.integration.test_shipment_facts import routed_order
from tests.web import SHOPIFY_USER, WOO_USER, add_provider, add_user, sign_in


@pytest.fixture
def config_dict(config_dict):
    return with_shopify_app(config_dict)


def _view(container, store, shop_id=SHOPIFY_SHOP):
    return home_view(store, container.shops.require(shop_id), settings=container.settings,
                     shopify_app=container.shopify_app, now=container.clock())


def _feed_from(container, store, provider_id, node_id, shop_id=SHOPIFY_SHOP):
    add_provider(container, shop_id, provider_id, {"type": "shipbob", "token": "pat-home-secret-1",
                                                   "channel_id": "100102"})
    document, version = container.shop_config.document(store, shop_id)
    node = next(n for n in document["nodes"] if n["id"] == node_id)
    node.update(stock_source=provider_id, provider_location="10")
    container.shop_config.update(store, shop_id, document, version, "test")


def _connect_shopify(container, scopes=REQUIRED_SCOPES):
    assert container.shopify_tokens.save_if(SHOPIFY_DOMAIN, None, Tokens("shpat_home", frozenset(scopes)))


def test_no_3pl_is_fine_and_says_how_to_connect_one(container, store):
    _connect_shopify(container)
    view = _view(container, store)
    (providers,) = view.setup.providers
    assert providers.state is CheckState.OK and providers.fix.endpoint == "settings.provider_new"
    assert view.setup.store.state is CheckState.OK and view.setup.nodes.summary == "5 nodes take orders."
    assert view.setup_problems == () and view.needs_you == ()
    assert view.verdict.fine and view.verdict.headline == "All good — no orders routed yet today"


def test_a_failing_sync_is_one_thing_that_needs_you(container, store, clock):
    _connect_shopify(container)
    _feed_from(container, store, "sb-main", "ne-micro")
    started = clock()
    store.record_sync(SHOPIFY_SHOP, "ne-micro", "sb-main", started - timedelta(minutes=40),
                      started - timedelta(minutes=39), 3, "ok", None)
    store.record_sync(SHOPIFY_SHOP, "ne-micro", "sb-main", started - timedelta(minutes=5),
                      started - timedelta(minutes=5), 0, "failed", "shipbob: HTTP 401 (token rejected)")
    view = _view(container, store)
    (check,) = view.setup.providers
    assert check.state is CheckState.PROBLEM
    assert check.summary == "Failing: shipbob: HTTP 401 (token rejected) (last synced 40 min ago)."
    assert check.details == ("Feeds Northeast micro-warehouse (Newark, NJ).",) and check.fix.endpoint == "settings.provider_edit"
    # The action centre lists it with "Sync now": the check is not counted a second time.
    assert [item.kind for item in view.needs_you] == ["sync_failing"] and view.setup_problems == ()
    assert view.verdict.headline == "1 thing needs you"
    assert "pat-home-secret-1" not in repr(view)


def test_a_stale_sync_says_how_old_the_stock_is(container, store, clock):
    _connect_shopify(container)
    _feed_from(container, store, "sb-main", "ne-micro")
    synced = clock() - timedelta(hours=5)
    store.record_sync(SHOPIFY_SHOP, "ne-micro", "sb-main", synced, synced, 3, "ok", None)
    view = _view(container, store)
    (check,) = view.setup.providers
    assert check.state is CheckState.PROBLEM and check.summary.startswith("Stale: last synced 5 h ago")
    assert [item.kind for item in view.needs_you] == ["sync_stale"] and view.setup_problems == ()
    store.record_sync(SHOPIFY_SHOP, "ne-micro", "sb-main", clock() - timedelta(minutes=12), clock(), 3, "ok", None)
    view = _view(container, store)
    assert view.setup.providers[0].summary == "Synced 12 min ago." and view.verdict.fine


def test_woocommerce_webhook_problems_and_failed_deliveries(container, store, clock):
    view = _view(container, store, WOO_SHOP)
    assert view.setup.webhooks.state is CheckState.WAITING  # not read back yet
    store.finish_order_poll(WOO_SHOP, clock() - timedelta(minutes=4))
    assert _view(container, store, WOO_SHOP).setup.webhooks.summary.startswith(
        "Healthy: all four are active and point here (checked 4 min ago)")
    store.set_webhook_problems(WOO_SHOP, ["order.updated: WooCommerce disabled this webhook after failed deliveries"])
    view = _view(container, store, WOO_SHOP)
    assert view.setup.webhooks.state is CheckState.PROBLEM
    assert view.setup.webhooks.details == ("order.updated: WooCommerce disabled this webhook after failed deliveries",)
    assert "webhook_disabled" in {item.kind for item in view.needs_you}
    assert "webhooks" not in {check.key for check in view.setup_problems}  # listed with its repair action


def test_shopify_without_a_token_or_with_too_little_access(container, store):
    view = _view(container, store)
    assert view.setup.store.state is CheckState.PROBLEM and view.setup.store.summary.startswith("Not connected")
    assert view.setup.store.fix.endpoint == "shopify_app.install"
    assert view.setup.store.fix.args == {"shop": SHOPIFY_DOMAIN}
    assert [check.key for check in view.setup_problems] == ["store"] and view.verdict.headline == "1 thing needs you"
    _connect_shopify(container, scopes=("read_orders", "read_locations"))
    store_check = _view(container, store).setup.store
    assert store_check.state is CheckState.PROBLEM and "write_inventory" in store_check.summary
    assert store_check.fix.label == "Grant the access"


def test_woocommerce_keys(container, store):
    assert _view(container, store, WOO_SHOP).setup.store.state is CheckState.PROBLEM
    document, version = container.shop_config.document(store, WOO_SHOP)
    document["storefront"] = {**(document.get("storefront") or {}), "consumer_key": "ck_home_secret",
                              "consumer_secret": "cs_home_secret"}
    container.shop_config.update(store, WOO_SHOP, document, version, "test")
    view = _view(container, store, WOO_SHOP)
    assert view.setup.store.state is CheckState.OK and "ck_home_secret" not in repr(view)


def test_no_node_is_the_first_thing_to_fix(container, store):
    container.shop_config.create(store, "fresh", new_shop_document("fresh.myshopify.com"), "test")
    assert container.shopify_tokens.save_if("fresh.myshopify.com", None, Tokens("shpat_fresh", frozenset(REQUIRED_SCOPES)))
    view = _view(container, store, "fresh")
    assert view.setup.nodes.state is CheckState.PROBLEM and view.setup.nodes.fix.endpoint == "shopify_app.locations"
    assert [check.key for check in view.setup_problems] == ["nodes"] and view.setup.store.ok


def test_todays_figures_follow_routed_and_shipped_orders(post_shopify, container, store, clock):
    _connect_shopify(container)
    figures = {f.key: f for f in _view(container, store).figures}
    assert figures["routed"].value == "0" and figures["exceptions"].value == "0"
    assert figures["on_time"].value == "no shipments yet" and figures["split"].value == "no shipments yet"
    _, order_id, nodes = routed_order(post_shopify, container, store, clock)
    routed_order(post_shopify, container, store, clock, order_id=5_560_002, lines=(("SERUM-VITC", 1),))
    with store.write():  # the first one ships within the hour, well before its node's cutoff
        record_shipment(store, SHOPIFY_SHOP, order_id, next(iter(nodes)),
                        ShipmentFact(source="manual", shipped_at=clock() + timedelta(hours=1)), clock())
    view = _view(container, store)
    figures = {f.key: f for f in view.figures}
    assert figures["routed"].value == "1"  # the serum cannot reach New York cold in time: an exception
    assert figures["exceptions"].value == "1" and figures["exceptions"].needs_you
    assert figures["exceptions"].link.endpoint == "actions.index"
    assert figures["on_time"].value == "100%" and "Of the 1 parcel" in figures["on_time"].meaning
    assert figures["split"].value == "0%"
    assert view.verdict.headline == "1 thing needs you"  # the exception, with its actions
    assert [item.kind for item in view.needs_you] == ["exception"]


def test_stock_out_risk_is_counted_once_demand_is_planned(container, store, clock):
    figure = {f.key: f for f in _view(container, store).figures}["stockout"]
    assert (figure.value, figure.needs_you) == ("0", False)  # no demand known: nothing runs out
    regions = sorted(container.shops.require(SHOPIFY_SHOP).network.regions)
    with store.write():
        store.save_forecasts(SHOPIFY_SHOP, [(sku, region, weekly, 3.0, "ewma", 8) for sku, weekly in DEMAND
                                            for region in regions], clock())
    container.planning.allocate(store, SHOPIFY_SHOP)
    figure = {f.key: f for f in _view(container, store).figures}["stockout"]
    at_risk = stockout_risk_count(store, container.shops.require(SHOPIFY_SHOP), clock())
    assert at_risk > 0 and figure.value == str(at_risk) and figure.needs_you
    assert figure.link.endpoint == "inventory.index" and figure.meaning.startswith(f"{at_risk} SKU")


# ---------------------------------------------------------------- the page


def test_the_home_page_shows_the_verdict_first_and_each_problem_with_its_fix(client, container, store):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    assert client.get("/").headers["Location"] == "/login?next=/"
    sign_in(client, SHOPIFY_USER)
    page = client.get("/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    main = text.split('<main id="main"', 1)[1]
    assert main.index('id="verdict">1 thing needs you</h1>') < main.index("Needs you</h2>") < main.index(
        "Setup</h2>")
    assert f'href="/shopify/install?shop={SHOPIFY_DOMAIN}">Connect the store' in text
    assert 'href="/" aria-current="page">Home</a>' in text


def test_a_woocommerce_creator_sees_their_own_shop(client, container, store):
    add_user(container, WOO_USER, WOO_SHOP)
    sign_in(client, WOO_USER)
    text = client.get("/").get_data(as_text=True)
    assert "No REST API keys for https://" in text and SHOPIFY_DOMAIN not in text


# ---------------------------------------------------------------- speed: what the page reads


# Tables that grow with orders, stock or time: never read whole by the home page.
GROWING = {"orders", "order_lines", "routing_decisions", "reservations", "reserved_totals", "stock", "webhook_inbox",
           "forward_jobs", "forward_amendments", "events", "sync_runs", "refund_lookups", "node_day_orders",
           "transfers", "forecasts", "allocations", "shipments", "shipment_facts", "metric_days", "inventory_plan"}


def test_the_home_page_reads_only_through_indexes(client, container, store, monkeypatch):
    """Every statement the page runs, with its query plan: none scans a table that grows
    with orders or stock (bench/ times the page on a large shop)."""
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    sign_in(client, SHOPIFY_USER)
    statements: list[str] = []
    opened = container.open_store

    def traced():
        opened_store = opened()
        opened_store.conn.set_trace_callback(statements.append)
        return opened_store

    monkeypatch.setattr(container, "open_store", traced)
    client.application.extensions["connector_stores"].__dict__.clear()  # this thread's connection: a traced one
    assert client.get("/").status_code == 200
    reads = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert reads, "the page read nothing through the traced connection"
    scans = []
    for sql in dict.fromkeys(reads):
        for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall():
            detail = row[-1]
            words = detail.split()
            if words[:1] == ["SCAN"] and words[1] in GROWING:  # whole, even through a covering index
                scans.append((detail, sql))
    assert scans == []


def test_the_home_page_lists_the_seven_most_urgent_and_leads_to_the_rest(client, container, store, clock):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    _connect_shopify(container)
    with store.write():
        ids = [store.add_transfer(SHOPIFY_SHOP, sku="CANDLE-FIG", from_node="central", to_node="ne-micro", units=n,
                                  unit_cost=0.45, lead_days=1, status="proposed", emergency=False,
                                  approval_reason="over the approval limit", now=clock() - timedelta(minutes=n))
               for n in range(1, 10)]
    sign_in(client, SHOPIFY_USER)
    text = client.get("/").get_data(as_text=True)
    assert 'id="verdict">9 things need you</h1>' in text
    shown = [int(i) for i in re.findall(r'id="item-transfer_approval-(\d+)"', text)]
    assert shown == sorted(ids, reverse=True)[:7]  # the longest waiting first
    assert '<a href="/actions">See all 9 in the action centre</a>' in text
    # Each with its actions, returning here when done.
    assert text.count('<input type="hidden" name="next" value="/">') == 14  # Approve and Reject, seven times
