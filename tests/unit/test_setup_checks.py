"""Setup checks and the home page's verdict, on plain data: what each state says, where
it is fixed, and that a trouble listed as a "needs you" item is counted once."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from connector.domain.model import NodeStatus
from connector.domain.overview import figures, uncovered_problems, verdict
from connector.domain.setup import (CheckState, Fix, nodes_check, provider_check, shopify_store_check,
                                    webhooks_check, woocommerce_store_check)

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
STALE_AFTER = timedelta(minutes=120)
INSTALL = Fix("Connect the store", "shopify_app.install", {"shop": "a.myshopify.com"})


def _provider(**facts):
    return provider_check("sb-main", "shipbob", **{"fed_nodes": ["Reno"], "last_ok_at": None, "error": None,
                                                   "now": NOW, "stale_after": STALE_AFTER, **facts})


def test_a_3pl_synced_recently_says_when():
    check = _provider(last_ok_at=NOW - timedelta(minutes=12))
    assert check.state is CheckState.OK and check.summary == "Synced 12 min ago." and check.fix is None
    assert check.details == ("Feeds Reno.",)


def test_a_failing_3pl_says_why_and_links_to_its_settings():
    check = _provider(last_ok_at=NOW - timedelta(hours=3), error="shipbob: HTTP 401 (token rejected)")
    assert check.state is CheckState.PROBLEM
    assert check.summary == "Failing: shipbob: HTTP 401 (token rejected) (last synced 3 h ago)."
    assert check.fix == Fix("Check its settings", "settings.provider_edit", {"provider_id": "sb-main"})


def test_a_stale_3pl_says_how_old_its_stock_is():
    check = _provider(last_ok_at=NOW - timedelta(hours=5))
    assert check.state is CheckState.PROBLEM
    assert check.summary == "Stale: last synced 5 h ago; routing trusts stock for 2 h after a sync."
    assert _provider(last_ok_at=NOW - STALE_AFTER).state is CheckState.OK  # at the limit: still trusted


def test_a_3pl_not_synced_yet_or_feeding_nothing_waits():
    assert _provider().state is CheckState.WAITING
    unused = _provider(fed_nodes=[])
    assert unused.state is CheckState.WAITING and unused.fix.endpoint == "settings.nodes"


def test_shopify_connected_through_the_app_with_every_scope():
    check = shopify_store_check("a.myshopify.com", granted_scopes=frozenset({"read_orders"}), missing_scopes=[],
                                configured_token=False, install=INSTALL, config_hint="hint")
    assert check.state is CheckState.OK and check.summary == "Connected to a.myshopify.com through the app."


def test_shopify_missing_scopes_are_named_with_a_way_to_grant_them():
    check = shopify_store_check("a.myshopify.com", granted_scopes=frozenset({"read_orders"}),
                                missing_scopes=["write_inventory"], configured_token=False, install=INSTALL,
                                config_hint="hint")
    assert check.state is CheckState.PROBLEM and "write_inventory" in check.summary
    assert check.fix == Fix("Grant the access", "shopify_app.install", {"shop": "a.myshopify.com"})


def test_shopify_without_any_token_is_not_connected():
    with_app = shopify_store_check("a.myshopify.com", granted_scopes=None, missing_scopes=[],
                                   configured_token=False, install=INSTALL, config_hint="set access_token")
    assert with_app.state is CheckState.PROBLEM and with_app.fix == INSTALL
    assert "set access_token" not in with_app.details  # the install is the way
    without_app = shopify_store_check("a.myshopify.com", granted_scopes=None, missing_scopes=[],
                                      configured_token=False, install=None, config_hint="set access_token")
    assert without_app.fix is None and "set access_token" in without_app.details
    configured = shopify_store_check("a.myshopify.com", granted_scopes=None, missing_scopes=[],
                                     configured_token=True, install=None, config_hint="set access_token")
    assert configured.state is CheckState.OK


def test_woocommerce_keys():
    assert woocommerce_store_check("https://shop.example", has_keys=True, config_hint="h").ok
    missing = woocommerce_store_check("https://shop.example", has_keys=False, config_hint="set keys")
    assert missing.state is CheckState.PROBLEM and missing.details == ("set keys",)


def test_webhooks_problems_failed_deliveries_and_a_failing_read_back_are_each_listed():
    check = webhooks_check("woocommerce", problems=["order.updated: disabled"], checked_at=NOW,
                           reconcile_error="HTTP 500", failed_deliveries=2, now=NOW)
    assert check.state is CheckState.PROBLEM and check.summary.startswith("3 problems")
    assert check.details == ("order.updated: disabled", "The last read-back of orders failed: HTTP 500",
                             "2 order updates arrived but could not be applied.")
    healthy = webhooks_check("woocommerce", problems=[], checked_at=NOW - timedelta(minutes=4),
                             reconcile_error=None, failed_deliveries=0, now=NOW)
    assert healthy.state is CheckState.OK and "checked 4 min ago" in healthy.summary
    assert webhooks_check("woocommerce", problems=[], checked_at=None, reconcile_error=None, failed_deliveries=0,
                          now=NOW).state is CheckState.WAITING
    assert webhooks_check("shopify", problems=[], checked_at=None, reconcile_error=None, failed_deliveries=0,
                          now=NOW).state is CheckState.OK
    assert webhooks_check("shopify", problems=[], checked_at=None, reconcile_error=None, failed_deliveries=1,
                          now=NOW).state is CheckState.PROBLEM


def test_nodes():
    add = Fix("Add a node", "settings.node_new")
    none = nodes_check([], add=add)
    assert none.state is CheckState.PROBLEM and none.fix == add
    some = nodes_check([NodeStatus.ACTIVE, NodeStatus.DEGRADED, NodeStatus.PAUSED], add=add)
    assert some.state is CheckState.OK and some.summary == "2 nodes take orders (1 paused)."
    resting = nodes_check([NodeStatus.OFFLINE, NodeStatus.PAUSED], add=add)
    assert resting.state is CheckState.PROBLEM and resting.summary.startswith("0 nodes take orders (1 offline, 1 paused)")


def test_a_trouble_listed_as_needs_you_counts_once():
    failing = _provider(error="HTTP 503", last_ok_at=NOW)
    store = shopify_store_check(None, granted_scopes=None, missing_scopes=[], configured_token=False, install=None,
                                config_hint="h")
    fine = _provider(last_ok_at=NOW)
    assert uncovered_problems([failing, store, fine], ["sync_failing"]) == [store]
    assert uncovered_problems([failing, store, fine], ["exception"]) == [failing, store]


def test_the_verdict():
    assert verdict(0, 42).headline == "All good — 42 orders routed today" and verdict(0, 42).fine
    assert verdict(0, 1).headline == "All good — 1 order routed today"
    assert verdict(0, 0).headline == "All good — no orders routed yet today"
    assert verdict(3, 42).headline == "3 things need you" and not verdict(3, 42).fine
    assert verdict(1, 0).headline == "1 thing needs you"


def test_figures_say_what_they_mean_and_never_show_a_rate_of_nothing():
    shown = {f.key: f for f in figures(routed_today=0, open_exceptions=0, stockout_risk=0, on_time_rate_7d=None,
                                       split_rate_7d=None, shipped_7d=0)}
    assert list(shown) == ["routed", "exceptions", "stockout", "on_time", "split"]
    assert shown["on_time"].value == shown["split"].value == "no shipments yet"
    assert not any(f.needs_you for f in shown.values()) and all(f.meaning for f in shown.values())
    assert shown["exceptions"].link is None  # nothing to decide
    busy = {f.key: f for f in figures(routed_today=42, open_exceptions=3, stockout_risk=1, on_time_rate_7d=0.954,
                                      split_rate_7d=0.04, shipped_7d=120)}
    assert (busy["routed"].value, busy["on_time"].value, busy["split"].value) == ("42", "95%", "4%")
    assert busy["exceptions"].needs_you and busy["exceptions"].meaning.startswith("3 order lines")
    assert busy["exceptions"].link == Fix("Decide them", "actions.index")
    assert busy["stockout"].meaning.startswith("1 SKU out of stock") and busy["stockout"].needs_you
    assert "Of the 120 parcels" in busy["on_time"].meaning
