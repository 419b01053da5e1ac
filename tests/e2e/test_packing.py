"""The packing room end to end: the page through Flask's test client (pick list, print view,
CSV, "Mark shipped" with its errors beside the field, another shop's order or node a 404)
and the same through the CLI (`connector packing`, `connector ship`, `connector handoff`)."""
from __future__ import annotations

import csv
import io
import random
from zoneinfo import ZoneInfo

import pytest

from connector import handoff_store, sandbox
from tests.conftest import SHOPIFY_SECRET, SHOPIFY_SHOP, WOO_SECRET, WOO_SHOP
from tests.web import SHOPIFY_USER, add_user, csrf_token, sign_in

ORDER_ID = "7001"


@pytest.fixture
def routed(container, store):
    """Order #2001 for New York (two lines), routed to one of the shop's nodes (all of them
    have their counts typed in: packing nodes); returns (node, local day)."""
    payload = sandbox.shopify_order(random.Random(5), int(ORDER_ID), 2001, container.clock(), lines=2)
    for line, (sku, units) in zip(payload["line_items"], (("CANDLE-FIG", 2), ("CANDLE-CEDAR", 1))):
        line.update(sku=sku, quantity=units, current_quantity=units, fulfillable_quantity=units, title=f"{sku} title")
    payload["shipping_address"].update(country_code="US", province_code="NY", zip="10012", city="New York")
    hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload)
    assert container.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
    container.inbox.process(store)
    [node] = {d["node_id"] for d in store.current_decisions(SHOPIFY_SHOP, ORDER_ID)}
    day = container.clock().astimezone(ZoneInfo(container.shops.require(SHOPIFY_SHOP).timezone)).date().isoformat()
    return node, day


@pytest.fixture
def signed_in(client, container):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    sign_in(client, SHOPIFY_USER)
    return client


def _text(response) -> str:
    return response.get_data(as_text=True)


def test_the_pick_list_and_slips_of_a_node_and_day(signed_in, routed):
    node, day = routed
    page = _text(signed_in.get(f"/packing/?node={node}&day={day}"))
    assert "Pick list" in page and "CANDLE-FIG" in page and "CANDLE-CEDAR" in page
    assert "1 order to ship, 3 units to pick" in page
    assert "Order #2001" in page and "Sam Rivera" in page and "92 Chestnut Street" in page and "New York" in page
    assert 'aria-label="Mark order #2001 shipped"' in page
    assert "Nothing routed" in _text(signed_in.get(f"/packing/?node={node}&day=2020-01-01"))
    assert "1 order from " + day in _text(signed_in.get(f"/packing/?node={node}&day=2020-01-01"))


def test_the_print_view_puts_each_slip_on_its_own_page(signed_in, routed):
    node, day = routed
    page = _text(signed_in.get(f"/packing/print?node={node}&day={day}"))
    assert page.count('class="print-page') == 2  # the pick list, then one slip
    assert "data-print" in page and "print.js" in page


def test_the_pick_list_as_csv(signed_in, routed):
    node, day = routed
    response = signed_in.get(f"/packing/csv?node={node}&day={day}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f'filename="pick-list-{node}-{day}.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_text(response))))
    assert [(r["sku"], r["quantity"], r["orders"]) for r in rows] == [("CANDLE-CEDAR", "1", "#2001"),
                                                                      ("CANDLE-FIG", "2", "#2001")]


def test_mark_shipped_needs_a_carrier_and_says_so_beside_the_field(signed_in, routed, store):
    node, day = routed
    token = csrf_token(signed_in, f"/packing/?node={node}&day={day}")
    response = signed_in.post(f"/packing/ship?node={node}&day={day}",
                              data={"csrf_token": token, "order_id": ORDER_ID, "carrier": " ",
                                    "tracking_number": "9400111899223197428490", "tracking_url": "ftp://x"})
    assert response.status_code == 400
    page = _text(response)
    assert f'id="ship-{ORDER_ID}-carrier-error" class="field-error">give the carrier' in page
    assert 'value="9400111899223197428490"' in page  # what was typed stays
    assert len(store.active_reservations(SHOPIFY_SHOP, ORDER_ID)) == 2  # nothing happened
    response = signed_in.post(f"/packing/ship?node={node}&day={day}",
                              data={"csrf_token": token, "order_id": ORDER_ID, "carrier": "USPS",
                                    "tracking_number": "9400111899223197428490", "tracking_url": "ftp://x"})
    assert f'id="ship-{ORDER_ID}-tracking_url-error" class="field-error">a web address' in _text(response)


def test_mark_shipped_records_releases_queues_and_audits(signed_in, routed, store, container):
    node, day = routed
    stock_before = store.stock_level(SHOPIFY_SHOP, node, "CANDLE-FIG")
    token = csrf_token(signed_in, f"/packing/?node={node}&day={day}")
    response = signed_in.post(f"/packing/ship?node={node}&day={day}",
                              data={"csrf_token": token, "order_id": ORDER_ID, "carrier": "USPS",
                                    "tracking_number": "9400111899223197428490", "tracking_url": ""})
    assert response.status_code == 302
    page = _text(signed_in.get(response.headers["Location"]))
    assert "Order #2001 is marked shipped" in page and "Mark order #2001 shipped" not in page
    assert "Shipped from" in page and "USPS 9400111899223197428490" in page and "waiting" in page
    again = signed_in.post(f"/packing/ship?node={node}&day={day}",
                           data={"csrf_token": token, "order_id": ORDER_ID, "carrier": "USPS", "tracking_number": "1"})
    assert again.status_code == 409
    assert f"Not marked shipped: nothing of order #2001 waits to be shipped from {node}." in _text(again)
    assert store.active_reservations(SHOPIFY_SHOP, ORDER_ID) == []
    assert store.stock_level(SHOPIFY_SHOP, node, "CANDLE-FIG") == stock_before - 2
    [queued] = handoff_store.handoffs(store, SHOPIFY_SHOP, order_id=ORDER_ID, statuses=["pending"])[-1:]
    assert (queued["kind"], queued["node_id"], queued["detail"]["tracking_number"]) == (
        "shipment", node, "9400111899223197428490")
    [event] = store.events(SHOPIFY_SHOP, "packing.shipped")
    assert event["detail"]["by"] == f"web:{SHOPIFY_USER}"
    fact = store._dicts("SELECT carrier, source FROM shipment_facts WHERE order_id = ?", (ORDER_ID,))
    assert fact == [{"carrier": "USPS", "source": "manual"}]


def test_another_shops_order_or_node_is_a_404(signed_in, routed, container, store):
    node, day = routed
    woo = sandbox.woo_order(random.Random(1), 8001, container.clock())
    hook = sandbox.woo_webhook(WOO_SECRET, woo)
    assert container.inbox.ingest(store, "woocommerce", hook.body, hook.headers).status == 200
    container.inbox.process(store)
    assert signed_in.get("/packing/?node=garage").status_code == 404  # the WooCommerce shop's node
    token = csrf_token(signed_in, f"/packing/?node={node}&day={day}")
    response = signed_in.post(f"/packing/ship?node={node}&day={day}",
                              data={"csrf_token": token, "order_id": "8001", "carrier": "DHL", "tracking_number": "1"})
    assert response.status_code == 404
    assert store.events(WOO_SHOP, "packing.shipped") == []
    assert signed_in.get(f"/packing/?node={node}&day=not-a-day").status_code == 400


# ---------------------------------------------------------------- CLI


def test_cli_packing_lists_and_writes_csv(cli, routed):
    node, day = routed
    result = cli("packing", "--node", node, "--day", day, "--shop", SHOPIFY_SHOP)
    assert result.exit_code == 0, result.output
    assert "1 orders, 3 units" in result.output and "2 x CANDLE-FIG" in result.output
    assert "order #2001: Sam Rivera, 92 Chestnut Street" in result.output
    result = cli("packing", "--node", node, "--day", day, "--shop", SHOPIFY_SHOP, "--csv")
    assert result.output.splitlines()[0] == "node,day,sku,title,quantity,orders"


def test_cli_ship_then_handoff(cli, routed, store):
    node, day = routed
    result = cli("ship", "#2001", "--node", node, "--carrier", "USPS", "--tracking", "9400 1118", "--url", "nope",
                 "--shop", SHOPIFY_SHOP)
    assert result.exit_code == 1 and result.output.strip() == "--url: a web address starting with https://, or leave it empty"
    result = cli("ship", "#2001", "--node", node, "--carrier", "USPS", "--tracking", "9400 1118", "--shop", SHOPIFY_SHOP)
    assert result.exit_code == 0, result.output
    assert f"order #2001: 3 unit(s) shipped from {node} with USPS, tracking 9400 1118" in result.output
    assert store.events(SHOPIFY_SHOP, "packing.shipped")[0]["detail"]["by"] == "cli"
    result = cli("ship", "#2001", "--node", node, "--carrier", "USPS", "--tracking", "9400 1118", "--shop", SHOPIFY_SHOP)
    assert result.exit_code == 1 and f"nothing of order #2001 waits to be shipped from {node}" in result.output
    result = cli("handoff", "--shop", SHOPIFY_SHOP)  # the sandbox shop has no Admin API token
    assert result.exit_code == 0 and "skipped 2 (no API access to the store)" in result.output
    assert {r["status"] for r in handoff_store.handoffs(store, SHOPIFY_SHOP)} == {"skipped"}


def test_another_try_from_the_page_and_the_cli(signed_in, routed, cli, store):
    token = csrf_token(signed_in, "/packing/")
    response = signed_in.post(f"/packing/handoffs/{ORDER_ID}/retry",
                              data={"csrf_token": token, "next": "//elsewhere.example/actions"})
    assert response.status_code == 302 and response.headers["Location"] == "/packing/"
    response = signed_in.post(f"/packing/handoffs/{ORDER_ID}/retry", data={"csrf_token": token, "next": "/actions"})
    assert response.headers["Location"] == "/actions"
    assert [e["detail"]["by"] for e in store.events(SHOPIFY_SHOP, "handoff.retry")] == [f"web:{SHOPIFY_USER}"] * 2
    assert signed_in.post("/packing/handoffs/727/retry", data={"csrf_token": token}).status_code == 404
    result = cli("handoff", "--shop", SHOPIFY_SHOP, "--retry", "#2001")
    assert result.exit_code == 0 and "skipped 1" in result.output
    result = cli("handoff", "--shop", SHOPIFY_SHOP, "--retry", "#9999")
    assert result.exit_code == 1 and result.output.strip() == "no order #9999 in this shop"
