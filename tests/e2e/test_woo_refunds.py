"""WooCommerce partial refunds end to end: signed order webhooks through the test client,
the inbox, the refund lookup against `responses` answers shaped like the REST v3 docs'
"List all refunds" example, and the reservations that follow."""
from __future__ import annotations

import copy
import json

import pytest
import responses

from connector.bootstrap import build
from tests.conftest import WOO_SHOP, WOO_URL, fixture_json, initialised
from tests.e2e.test_webhooks import reservations, sellable, woo_727_demo
from tests.support import FakeClock, woocommerce_orders_factory

REFUNDS_URL = f"{WOO_URL}/wp-json/wc/v3/orders/727/refunds"
# Line 315 of order 727 is SEEDS-MIX x 2 in the demo shop (woo_727_demo).
SEEDS_LINE, SEEDS = "315", "SEEDS-MIX"


@pytest.fixture
def http_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container(settings, clock, http_clock):
    return initialised(build(settings, clock=clock, woocommerce_orders_factory=woocommerce_orders_factory(http_clock)),
                       clock)


def order_727(*, refunds=(), modified: str = "2017-03-22T19:28:08") -> dict:
    """The demo's order 727, as WooCommerce sends it after ``refunds`` (ids) were made."""
    order = woo_727_demo()
    order["refunds"] = [{"id": r, "reason": "", "total": "-5.00"} for r in refunds]
    order["date_modified_gmt"] = order["date_modified"] = modified
    return order


def refund(refund_id: int, line_id: str, units: int) -> dict:
    """The docs' refund 724, made to refund ``units`` of the order's line ``line_id``."""
    documented = copy.deepcopy(fixture_json("woocommerce", "order_723_refunds.json")[1])
    documented["id"] = refund_id
    item = documented["line_items"][0]
    item["quantity"] = -units
    item["meta_data"][0]["value"] = line_id
    return documented


def deliver(post_woo, container, store, payload, topic="order.updated") -> None:
    assert post_woo(payload, topic).status_code == 200
    report = container.inbox.process(store)
    assert report.processed == 1 and report.failed == 0


@responses.activate
def test_a_partial_refund_releases_the_refunded_units_once(post_woo, container, store):
    deliver(post_woo, container, store, order_727(), "order.created")
    node, _, units = reservations(store, WOO_SHOP, "727")[SEEDS_LINE]
    assert units == 2
    before = sellable(store, WOO_SHOP, SEEDS)[node]

    # The webhook names refund 900 but not its lines: nothing changes yet, a lookup is due.
    deliver(post_woo, container, store, order_727(refunds=[900], modified="2017-03-23T10:00:00"))
    assert reservations(store, WOO_SHOP, "727")[SEEDS_LINE] == (node, SEEDS, 2)

    responses.get(REFUNDS_URL, json=[refund(900, SEEDS_LINE, 1)], headers={"X-WP-TotalPages": "1"})
    report = container.refunds.look_up_due(store)
    assert (report.orders, report.applied, report.failed, report.retrying) == (1, 1, 0, 0)
    assert reservations(store, WOO_SHOP, "727")[SEEDS_LINE] == (node, SEEDS, 1)
    assert sellable(store, WOO_SHOP, SEEDS)[node] == before + 1
    assert {l["line_id"]: l["quantity"] for l in store.order_lines(WOO_SHOP, "727")}[SEEDS_LINE] == 1
    assert "reservation.reduced" in [e["kind"] for e in store.events(WOO_SHOP)]

    # Nothing left to look up; a later update of the order (still listing refund 900,
    # still with the ordered quantity 2) keeps the line at 1.
    assert container.refunds.look_up_due(store).orders == 0
    deliver(post_woo, container, store, order_727(refunds=[900], modified="2017-03-24T10:00:00"))
    assert container.refunds.look_up_due(store).orders == 0
    assert len(responses.calls) == 1
    assert reservations(store, WOO_SHOP, "727")[SEEDS_LINE] == (node, SEEDS, 1)
    assert store.reservation_totals_drift() == []

    # The creator deletes the refund in WooCommerce: the unit is to ship again.
    deliver(post_woo, container, store, order_727(refunds=[], modified="2017-03-25T10:00:00"))
    assert reservations(store, WOO_SHOP, "727")[SEEDS_LINE][1:] == (SEEDS, 2)
    assert store.reservation_totals_drift() == []


@responses.activate
def test_refunding_every_unit_of_a_line_releases_it_and_amount_only_refunds_change_nothing(post_woo, container, store):
    deliver(post_woo, container, store, order_727(), "order.created")
    other = reservations(store, WOO_SHOP, "727")["316"]
    deliver(post_woo, container, store, order_727(refunds=[901, 902], modified="2017-03-23T10:00:00"))
    amount_only = fixture_json("woocommerce", "order_723_refunds.json")[0] | {"id": 902}
    responses.get(REFUNDS_URL, json=[amount_only, refund(901, SEEDS_LINE, 2)])

    assert container.refunds.look_up_due(store).applied == 2
    assert reservations(store, WOO_SHOP, "727") == {"316": other}
    assert store.order(WOO_SHOP, "727").status == "routed"


@responses.activate
def test_a_refund_deleted_before_its_lookup_is_never_applied(post_woo, container, store):
    deliver(post_woo, container, store, order_727(), "order.created")
    deliver(post_woo, container, store, order_727(refunds=[900], modified="2017-03-23T10:00:00"))
    deliver(post_woo, container, store, order_727(refunds=[], modified="2017-03-23T11:00:00"))

    assert container.refunds.look_up_due(store).orders == 0
    assert len(responses.calls) == 0
    assert reservations(store, WOO_SHOP, "727")[SEEDS_LINE][2] == 2


@responses.activate
def test_a_refund_missing_from_the_stores_answer_is_done_with_nothing_applied(post_woo, container, store):
    deliver(post_woo, container, store, order_727(), "order.created")
    deliver(post_woo, container, store, order_727(refunds=[900], modified="2017-03-23T10:00:00"))
    responses.get(REFUNDS_URL, json=[])

    report = container.refunds.look_up_due(store)
    assert (report.orders, report.applied) == (1, 0)
    assert container.refunds.look_up_due(store).orders == 0
    assert reservations(store, WOO_SHOP, "727")[SEEDS_LINE][2] == 2


@responses.activate
def test_an_unreachable_store_is_retried_later_and_a_missing_order_is_an_exception(post_woo, container, store,
                                                                                   clock, tmp_path):
    deliver(post_woo, container, store, order_727(), "order.created")
    deliver(post_woo, container, store, order_727(refunds=[900], modified="2017-03-23T10:00:00"))
    responses.get(REFUNDS_URL, status=503, json={"code": "unavailable"})

    report = container.refunds.look_up_due(store)
    assert (report.retrying, report.failed) == (1, 0) and "503" in report.errors[0]
    calls = len(responses.calls)
    assert container.refunds.look_up_due(store).orders == 0  # not due again yet
    assert len(responses.calls) == calls

    clock.advance(minutes=1)
    responses.replace(responses.GET, REFUNDS_URL, status=404,
                      json={"code": "woocommerce_rest_invalid_order_id", "message": "Invalid order ID.",
                            "data": {"status": 404}})
    report = container.refunds.look_up_due(store)
    assert (report.retrying, report.failed) == (0, 1)
    [failed] = store.failed_refund_lookups(WOO_SHOP)
    assert (failed["order_id"], failed["refund_id"], failed["attempts"]) == ("727", "900", 2)
    assert "404" in failed["last_error"]
    assert [e["kind"] for e in store.events(WOO_SHOP) if not e["kind"].startswith("shop.")][-1] == \
        "refund.lookup_failed"
    assert reservations(store, WOO_SHOP, "727")[SEEDS_LINE][2] == 2  # kept: nothing was applied


def test_a_shop_without_a_rest_api_key_shows_why_in_exceptions(post_woo, container, store, cli, clock):
    """The CLI builds the real client factory, and the demo shop has no consumer key.
    Its clock is the real one, so the lookup is asked for a day before the test's start."""
    clock.advance(days=-1)
    deliver(post_woo, container, store, order_727(), "order.created")
    deliver(post_woo, container, store, order_727(refunds=[900], modified="2017-03-23T10:00:00"))

    result = cli("refunds")
    assert result.exit_code == 0
    assert "refunds applied 0, retrying 0, failed 1" in result.output
    result = cli("exceptions")
    assert "A refund on order 727 is not applied. Which lines refund 900 covers" in result.output
    assert "consumer_key" in result.output
    assert reservations(store, WOO_SHOP, "727")[SEEDS_LINE][2] == 2


@responses.activate
def test_a_failed_lookup_is_asked_again_when_the_order_changes(post_woo, container, store, clock):
    deliver(post_woo, container, store, order_727(), "order.created")
    deliver(post_woo, container, store, order_727(refunds=[900], modified="2017-03-23T10:00:00"))
    responses.get(REFUNDS_URL, status=403, json=fx_cannot_view())
    assert container.refunds.look_up_due(store).failed == 1

    deliver(post_woo, container, store, order_727(refunds=[900], modified="2017-03-24T10:00:00"))
    responses.replace(responses.GET, REFUNDS_URL, json=[refund(900, SEEDS_LINE, 1)])
    assert container.refunds.look_up_due(store).applied == 1
    assert reservations(store, WOO_SHOP, "727")[SEEDS_LINE][2] == 1
    assert store.failed_refund_lookups(WOO_SHOP) == []


def fx_cannot_view() -> dict:
    return fixture_json("woocommerce", "rest_cannot_view.json") | {"data": {"status": 403}}


@responses.activate
def test_a_refund_made_after_the_read_is_left_for_the_next_lookup(post_woo, container, store):
    deliver(post_woo, container, store, order_727(), "order.created")
    deliver(post_woo, container, store, order_727(refunds=[900], modified="2017-03-23T10:00:00"))

    def read_then_refund_again(request):
        # While the refunds are being read, the creator refunds again and its webhook is processed.
        deliver(post_woo, container, store, order_727(refunds=[900, 901], modified="2017-03-23T10:05:00"))
        return 200, {"Content-Type": "application/json"}, json.dumps([refund(900, SEEDS_LINE, 1)])

    responses.add_callback(responses.GET, REFUNDS_URL, callback=read_then_refund_again)
    assert container.refunds.look_up_due(store).applied == 1
    assert store.pending_refund_lookups(WOO_SHOP, "727") == {"901"}
