"""The action centre through the Flask test client: the page (groups, reasons, how long
each item waited, its actions beside it, all is well when nothing waits) and every
action route: done (a notice, back to the page, audited as the signed-in person),
refused once it no longer applies (409, the reason in red beside that action), and
another shop's job, transfer, node or order a 404."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import responses

from connector.services.reconcile import ORDER_TOPICS
from tests.conftest import SHOPIFY_SHOP, WOO_SHOP, WOO_URL, fixture_json
from tests.web import SHOPIFY_USER, WOO_USER, add_user, csrf_token, sign_in

BY = f"web:{SHOPIFY_USER}"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def signed_in(client, container):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    add_user(container, WOO_USER, WOO_SHOP)
    sign_in(client, SHOPIFY_USER)
    return client


def page(client) -> str:
    response = client.get("/actions")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def post(client, url: str, **data):
    return client.post(url, data={"csrf_token": csrf_token(client, "/actions"), "next": "/actions", **data})


def item_html(text: str, key: str) -> str:
    """The <li> of the item with ``key``."""
    item_id = "item-" + key.replace(":", "-")
    match = re.search(rf'<li class="attention" id="{re.escape(item_id)}">.*?</li>', text, re.S)
    assert match, f"no item {key}"
    return match.group(0)


def feed_the_popup(container, store, tmp_path, rows="sku,quantity\nCANDLE-FIG,7\n") -> str:
    """The pop-up's stock from a CSV feed ("popup-sheet"); returns the feed's path."""
    feed = tmp_path / "popup.csv"
    feed.write_text(rows)
    document, version = container.shop_config.document(store, SHOPIFY_SHOP)
    document.setdefault("providers", {})["popup-sheet"] = {"type": "csv", "path": str(feed)}
    next(n for n in document["nodes"] if n["id"] == "popup-soho")["stock_source"] = "popup-sheet"
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    return feed


def add_transfer(store, clock, shop=SHOPIFY_SHOP, status="proposed", units=6):
    with store.write():
        return store.add_transfer(shop, sku="CANDLE-CEDAR", from_node="central", to_node="ne-micro", units=units,
                                  unit_cost=0.45, lead_days=1, status=status, emergency=False,
                                  approval_reason="a launch is near", now=clock())


# ---------------------------------------------------------------- the page


def test_all_is_well_when_nothing_needs_you(signed_in):
    text = page(signed_in)
    assert "All is well" in text and "Nothing needs you." in text
    assert 'class="attention"' not in text


def test_the_page_groups_items_with_reason_wait_and_actions_beside_them(signed_in, store, clock, tmp_path,
                                                                        container):
    tid = add_transfer(store, clock)
    feed_the_popup(container, store, tmp_path)  # never synced: stale
    clock.advance(hours=3)
    text = page(signed_in)
    assert [h for h in re.findall(r'<h2 id="group-\d+-title">([^<]+)', text)] == ["Stock syncs ", "Transfers "]
    transfer = item_html(text, f"transfer_approval:{tid}")
    assert "Move 6 × CANDLE-CEDAR from Central warehouse (Columbus, OH)" in transfer
    assert "It waits for your approval: A launch is near." in transfer and "Waiting 3 h." in transfer
    assert f'action="/actions/transfers/{tid}/approve"' in transfer and f'action="/actions/transfers/{tid}/reject"' \
        in transfer
    assert 'name="csrf_token"' in transfer and 'name="next" value="/actions"' in transfer
    assert f"connector transfers approve {tid}" in transfer  # the same step on the command line
    stale = item_html(text, "sync_stale:popup-sheet")
    assert "Holiday pop-up (SoHo, NYC)" in stale and 'action="/actions/sync/popup-sheet"' in stale


# ---------------------------------------------------------------- transfers


def test_approve_ship_receive_and_a_refusal_beside_the_button(signed_in, store, clock):
    store.set_stock(SHOPIFY_SHOP, "central", "CANDLE-CEDAR", on_hand=4, committed=0, available=4, source="manual",
                    now=clock())
    tid = add_transfer(store, clock)
    done = post(signed_in, f"/actions/transfers/{tid}/approve")
    assert done.status_code == 302 and done.headers["Location"] == "/actions"
    text = page(signed_in)
    assert f"Transfer #{tid} (6 × CANDLE-CEDAR, central → ne-micro) is now approved." in text
    assert store.transfer(tid)["decided_by"] == BY

    again = post(signed_in, f"/actions/transfers/{tid}/approve")
    assert again.status_code == 409
    assert f"Transfer #{tid} is already approved by {BY}: nothing changed." in again.get_data(as_text=True)

    refused = post(signed_in, f"/actions/transfers/{tid}/ship", units="6")
    assert refused.status_code == 409
    shown = item_html(refused.get_data(as_text=True), f"transfer_to_ship:{tid}")
    assert 'class="form-error" role="alert"' in shown and "central can spare 4 of the 6 × CANDLE-CEDAR" in shown
    assert post(signed_in, f"/actions/transfers/{tid}/ship", units="four").status_code == 409
    assert post(signed_in, f"/actions/transfers/{tid}/ship", units="4").status_code == 302
    clock.advance(days=1)
    assert f"transfer_to_receive-{tid}" in page(signed_in).replace(":", "-")
    assert post(signed_in, f"/actions/transfers/{tid}/receive").status_code == 302
    assert store.transfer(tid)["status"] == "received"
    assert [e["detail"]["by"] for e in store.events(SHOPIFY_SHOP) if e["kind"].startswith("transfer.")] == [BY] * 3


def test_reject_with_a_note(signed_in, store, clock):
    tid = add_transfer(store, clock)
    assert post(signed_in, f"/actions/transfers/{tid}/reject", note="not before the launch").status_code == 302
    assert store.transfer(tid)["note"] == "not before the launch"


# ---------------------------------------------------------------- hand-offs


def test_retry_a_failed_hand_off_and_mark_a_change_done(signed_in, store, clock):
    with store.write():
        store.add_forward_job(SHOPIFY_SHOP, "5001", "ne-micro", "sb", clock())
    [job] = store.forward_jobs(SHOPIFY_SHOP)
    store.finish_forward_job(job["id"], status="failed", now=clock(), error="ProviderRejected: no address")
    assert "ProviderRejected: no address" in item_html(page(signed_in), f"forward_failed:{job['id']}")
    assert post(signed_in, f"/actions/forward/{job['id']}/retry").status_code == 302
    assert store.forward_job(job["id"])["status"] == "pending"
    assert "will be tried again within a minute" in page(signed_in)
    refused = post(signed_in, f"/actions/forward/{job['id']}/retry")
    assert refused.status_code == 409 and "already queued for sb" in refused.get_data(as_text=True)

    store.finish_forward_job(job["id"], status="sent", now=clock(), provider_order_id="SB-1",
                             sent_lines=[("1", "ZINE-04", 2)])
    with store.write():
        store.note_amendment(SHOPIFY_SHOP, "5001", job["id"], "1", "ZINE-04", 2, 0, clock())
    assert "the order no longer wants it" in item_html(page(signed_in), f"amendment:{job['id']}")
    assert post(signed_in, f"/actions/forward/{job['id']}/amended", confirmed="yes").status_code == 302
    assert store.open_amendments(SHOPIFY_SHOP) == []
    assert post(signed_in, f"/actions/forward/{job['id']}/amended").status_code == 409


# ---------------------------------------------------------------- stock


def test_sync_now_shows_the_result(signed_in, store, container, tmp_path):
    feed = feed_the_popup(container, store, tmp_path)
    done = post(signed_in, "/actions/sync/popup-sheet")
    assert done.status_code == 302
    assert "Synced popup-sheet — Holiday pop-up (SoHo, NYC): 1 SKU." in page(signed_in)
    assert store.stock_level(SHOPIFY_SHOP, "popup-soho", "CANDLE-FIG") == 7
    assert store.events(SHOPIFY_SHOP, "sync.requested")[0]["detail"]["by"] == BY

    feed.unlink()
    failed = post(signed_in, "/actions/sync/popup-sheet")
    assert failed.status_code == 409
    shown = item_html(failed.get_data(as_text=True), "sync_failing:popup-sheet")
    assert "The sync failed:" in shown and "popup.csv: file not found" in shown


def test_move_over_reserved_orders_and_count(signed_in, store, clock, container):
    from tests.e2e.test_cli import ingest_shopify
    from connector.sandbox import shopify_order
    import random

    for node in ("ne-micro", "west-3pl", "popup-soho"):
        store.set_stock(SHOPIFY_SHOP, node, "CANDLE-FIG", on_hand=0, committed=0, available=0, source="test",
                        now=clock())
    store.set_stock(SHOPIFY_SHOP, "central", "CANDLE-FIG", on_hand=6, committed=0, available=6, source="manual",
                    now=clock())
    for n in (1, 2):
        payload = shopify_order(random.Random(n), 8_000_000 + n, 8000 + n, clock(), lines=1)
        payload["line_items"][0].update(sku="CANDLE-FIG", quantity=3, current_quantity=3)
        payload["shipping_address"].update(country_code="US", province_code="OH", zip="43004")
        ingest_shopify(container, store, payload)
    container.inbox.process(store)
    with store.write():
        store.adjust_stock(SHOPIFY_SHOP, "central", "CANDLE-FIG", -4, "test", clock())
    shown = item_html(page(signed_in), "over_reserved:central:CANDLE-FIG")
    assert 'action="/actions/nodes/central/count?sku=CANDLE-FIG"' in shown and "Move the newest orders" in shown

    refused = post(signed_in, "/actions/nodes/central/count?sku=CANDLE-FIG", quantity="-2")
    assert refused.status_code == 409 and "a whole number, 0 or more" in refused.get_data(as_text=True)
    assert post(signed_in, "/actions/nodes/central/count?sku=CANDLE-FIG", quantity="3").status_code == 302
    assert "Count saved: Central warehouse (Columbus, OH) holds 3 of CANDLE-FIG (was 2)" in page(signed_in)
    assert store.over_reserved(SHOPIFY_SHOP) == []  # the count routed the newest order elsewhere (or to you)

    with store.write():
        store.adjust_stock(SHOPIFY_SHOP, "central", "CANDLE-FIG", -3, "test", clock())
    assert post(signed_in, "/actions/nodes/central/over-reserved").status_code == 302
    assert store.over_reserved(SHOPIFY_SHOP) == []
    assert "order line moved off Central warehouse (Columbus, OH): 0 to another node, 1 to Orders to decide." in page(signed_in)
    assert post(signed_in, "/actions/nodes/central/over-reserved").status_code == 409


# ---------------------------------------------------------------- the store's deliveries


def test_retry_failed_deliveries(signed_in, store, container, clock):
    from tests.conftest import shopify_headers

    body = json.dumps({"id": 1}).encode()
    container.inbox.ingest(store, "shopify", body, shopify_headers(body))
    with store.write():
        store.conn.execute("UPDATE webhook_inbox SET status = 'failed', attempts = 5, last_error = 'boom'")
    assert post(signed_in, "/actions/webhooks/retry").status_code == 302
    assert "1 delivery queued again" in page(signed_in)
    assert post(signed_in, "/actions/webhooks/retry").status_code == 409


def test_retry_a_refund_lookup(client, container, store, clock):
    from connector.domain.model import Order

    add_user(container, WOO_USER, WOO_SHOP)
    sign_in(client, WOO_USER)
    with store.write():
        store.upsert_order(Order(WOO_SHOP, "727", "727", "woocommerce", clock(), clock(), None, ()), "uk", clock())
        store.track_refund_lookups(WOO_SHOP, "727", ["900"], clock(), look_up=True)
        store.finish_refund_lookups(WOO_SHOP, "727", ["900"], status="failed", now=clock(), error="HTTP 401")
    assert 'action="/actions/refunds/727/retry"' in page(client)
    assert post(client, "/actions/refunds/727/retry").status_code == 302
    assert store.due_refund_lookups(clock(), 5)[0]["order_id"] == "727"


@pytest.fixture
def woo_with_keys(config_dict):
    """The WooCommerce shop with its REST API key and this service's public address."""
    config_dict["shops"][WOO_SHOP]["storefront"] = {"consumer_key": "ck_test", "consumer_secret": "cs_test"}
    config_dict["web"]["public_url"] = "https://connector.example.com"
    return config_dict


def _webhook(webhook_id, topic, status="active"):
    hook = {**fixture_json("woocommerce", "webhooks_list.json")[1], "id": webhook_id, "topic": topic,
            "status": status, "delivery_url": "https://connector.example.com/webhooks/woocommerce"}
    hook["resource"], hook["event"] = topic.split(".")
    return hook


@responses.activate
def test_repair_woocommerce_webhooks_reactivates_ours_with_the_shops_secret(woo_with_keys, client, container,
                                                                            store, clock):
    from tests.conftest import WOO_SECRET

    add_user(container, WOO_USER, WOO_SHOP)
    sign_in(client, WOO_USER)
    hooks = {200 + i: _webhook(200 + i, topic, "disabled" if topic == "order.created" else "active")
             for i, topic in enumerate(ORDER_TOPICS)}
    api = f"{WOO_URL}/wp-json/wc/v3/webhooks"
    sent = []

    def put(request):
        webhook_id = int(request.url.rsplit("/", 1)[1])
        change = json.loads(request.body)
        sent.append((webhook_id, change))
        hooks[webhook_id].update(status=change["status"])
        return 200, JSON, json.dumps(hooks[webhook_id])

    responses.get(api, json=list(hooks.values()))
    for webhook_id in hooks:
        responses.add_callback(responses.PUT, f"{api}/{webhook_id}", callback=put)
        responses.add_callback(responses.GET, f"{api}/{webhook_id}",
                               callback=lambda r: (200, JSON, json.dumps(hooks[int(r.url.rsplit("/", 1)[1])])))
    with store.write():
        store.set_webhook_problems(WOO_SHOP, ["webhook #200 (order.created to ...) does not deliver"])
    assert 'action="/actions/webhooks/repair"' in page(client)

    done = post(client, "/actions/webhooks/repair")

    assert done.status_code == 302, done.get_data(as_text=True)
    assert "The store sends its 4 order webhooks to this service again." in page(client)
    assert {webhook_id for webhook_id, _ in sent} == set(hooks)
    assert all(change == {"status": "active", "secret": WOO_SECRET} for _, change in sent)  # signed as before
    assert json.loads(store.order_poll(WOO_SHOP)["webhook_problems"]) == []
    assert store.events(WOO_SHOP, "webhooks.repaired")[0]["detail"] == {"by": f"web:{WOO_USER}", "webhooks": 4}


def test_repair_and_reconcile_are_refused_in_words_without_what_they_need(signed_in):
    refused = post(signed_in, "/actions/webhooks/repair")
    assert refused.status_code == 409 and "public address ([web] public_url) is not set" in refused.get_data(
        as_text=True)
    refused = post(signed_in, "/actions/reconcile")
    assert refused.status_code == 409 and "Only WooCommerce stores are read back" in refused.get_data(as_text=True)


@responses.activate
def test_check_now_reads_the_store_back(woo_with_keys, client, container, store, clock):
    add_user(container, WOO_USER, WOO_SHOP)
    sign_in(client, WOO_USER)
    api = f"{WOO_URL}/wp-json/wc/v3"
    responses.get(f"{api}/orders", json=[], headers={"X-WP-TotalPages": "1"})
    responses.get(f"{api}/webhooks", json=[_webhook(200 + i, t) for i, t in enumerate(ORDER_TOPICS)])
    with store.write():
        store.finish_order_poll(WOO_SHOP, clock() - timedelta(minutes=5), "ProviderUnavailable: HTTP 502")
    assert "HTTP 502" in item_html(page(client), "reconcile_failing")
    assert post(client, "/actions/reconcile").status_code == 302
    text = page(client)
    assert "Store read back: 0 orders read, 0 that no webhook had brought; its order webhooks are fine." in text
    assert "All is well" in text


# ---------------------------------------------------------------- another shop's things


def test_another_shops_job_transfer_node_or_order_is_not_found(signed_in, store, clock):
    foreign_transfer = add_transfer(store, clock, shop=WOO_SHOP)
    with store.write():
        store.add_forward_job(WOO_SHOP, "727", "uk-hub", "garage-sheet", clock())
    [job] = store.forward_jobs(WOO_SHOP)
    for url, data in ((f"/actions/forward/{job['id']}/retry", {}), (f"/actions/forward/{job['id']}/amended", {}),
                      (f"/actions/transfers/{foreign_transfer}/approve", {}), ("/actions/sync/garage-sheet", {}),
                      ("/actions/nodes/uk-hub/over-reserved", {}),
                      ("/actions/nodes/uk-hub/count?sku=TERRARIUM-S", {"quantity": "1"}),
                      ("/actions/refunds/727/retry", {}), ("/actions/transfers/999/approve", {})):
        assert post(signed_in, url, **data).status_code == 404, url
    assert store.transfer(foreign_transfer)["status"] == "proposed"


def test_try_a_refused_move_again(signed_in, store, container, clock):
    from connector import handoff_store
    from connector.domain.model import Order

    with store.write():
        store.upsert_order(Order(SHOPIFY_SHOP, "9001", "#9001", "shopify", clock(), clock(), None, ()), "nyc-metro",
                           clock())
        handoff_store.refuse(store, SHOPIFY_SHOP, "9001", "ne-micro", "ne-micro has no Shopify location: choose "
                             "its Shopify location in Settings › Nodes", clock())
    shown = item_html(page(signed_in), "move_refused:9001")
    assert "Order #9001: your store did not move it to Northeast micro-warehouse (Newark, NJ)" in shown
    assert "Ne-micro has no Shopify location" not in shown and "ne-micro has no Shopify location" in shown
    assert 'action="/packing/handoffs/9001/retry"' in shown  # the hand-off's own retry, back to /actions
    done = post(signed_in, "/packing/handoffs/9001/retry")
    assert done.status_code == 302 and done.headers["Location"] == "/actions"
    assert [r["order_id"] for r in handoff_store.handoffs(store, SHOPIFY_SHOP, statuses=["pending"])] == ["9001"]
