"""The "needs you" collector and the action centre's steps, one kind at a time: make the
condition, see the item (its words and its actions), take the action, see it gone —
and the step refused with a sentence once it no longer applies."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector.domain.model import ProviderRejected, ProviderUnavailable
from connector.services.actions import ActionRefused, NotFound
from connector.services.attention import needs_you
from tests.integration.test_forward_amendments import sent_order
from tests.integration.test_sync import (  # noqa: F401 - fixtures
    SHOP,
    clock,
    container,
    fake_sb,
    fakes,
    inv,
    make_container,
    send_order,
    store,
)

WOO = "fernleaf-botanics"


def items(container, store, kind=None, shop=SHOP):
    found = needs_you(store, container.shops.require(shop), container.settings, container.clock())
    return [i for i in found if kind is None or i.kind == kind]


def one(container, store, kind, shop=SHOP):
    [item] = items(container, store, kind, shop)
    return item


def synced(container, store, fakes, *records):
    fake_sb(fakes).inventory = list(records) or [inv(10, "ZINE-04", 10), inv(156, "TEE-LOGO-M", 3)]
    [outcome] = container.sync.sync(store, SHOP)
    assert outcome.ok, outcome.error


# ---------------------------------------------------------------- orders


def test_an_unroutable_line_is_an_order_to_decide_with_the_exception_steps(container, store, fakes):
    synced(container, store, fakes)
    order_id, payload = send_order(container, store, "NO-SUCH-SKU", 2, order_id=501)
    item = one(container, store, "exception")
    line_id = str(payload["line_items"][0]["id"])
    assert item.key == f"exception:{order_id}:{line_id}" and item.group == "partial_stock" and item.urgency == 0
    assert item.title == (f"Order {payload['name']} to New York City metro: 2 × {payload['line_items'][0]['title']} "
                          "could not be routed — no node that ships there has enough of it")
    assert item.detail.startswith("Needs 2 × NO-SUCH-SKU") and item.section == "Orders to decide"
    assert [(a.endpoint, dict(a.args), a.method) for a in item.actions] == [
        ("exceptions.choose", {"order_id": order_id, "line_id": line_id}, "get"),
        ("exceptions.reevaluate", {"order_id": order_id}, "post"),
        ("exceptions.dismiss", {"order_id": order_id, "line_id": line_id}, "post")]
    assert item.actions[1].cli == f"connector exceptions reevaluate {order_id} --shop {SHOP}"


# ---------------------------------------------------------------- hand-offs


def test_a_failed_hand_off_is_retried_and_looked_up_before_it_is_sent(container, store, fakes, clock):
    synced(container, store, fakes)
    order_id, payload = send_order(container, store, "ZINE-04", 1, order_id=601)
    fake_sb(fakes).fail_next = [ProviderRejected("shipbob: 422 address incomplete")]
    assert container.forwarding.forward_due(store).failed == 1
    [job] = store.forward_jobs(SHOP)
    item = one(container, store, "forward_failed")
    assert item.title == f"Order {payload['name']} was not handed to sb (Northeast micro-warehouse (Newark, NJ))"
    assert "It failed after 1 attempt: ProviderRejected: shipbob: 422 address incomplete." in item.detail
    assert [(a.endpoint, dict(a.args), a.cli) for a in item.actions] == [
        ("actions.retry_forward", {"job_id": str(job["id"])}, f"connector forward retry {job['id']} --shop {SHOP}")]

    clock.advance(minutes=5)
    container.actions.retry_forward(store, SHOP, job["id"], "web:maker@candles.example")
    assert items(container, store, "forward_failed") == []
    again = store.forward_job(job["id"])
    assert again["status"] == "pending" and again["next_attempt_at"] == clock().isoformat(timespec="seconds") \
        or again["next_attempt_at"].startswith(clock().strftime("%Y-%m-%dT%H:%M"))
    [event] = store.events(SHOP, "forward.retry")
    assert event["detail"] == {"job_id": job["id"], "node_id": "ne-micro", "was": "failed",
                               "by": "web:maker@candles.example"}
    lookups = fake_sb(fakes).lookups
    assert container.forwarding.forward_due(store).sent == 1
    assert fake_sb(fakes).lookups > lookups  # asked whether it has the order before creating it
    assert store.forward_job(job["id"])["status"] == "sent"

    with pytest.raises(ActionRefused, match=f"Order {payload['name']} was already handed to sb: nothing to try"):
        container.actions.retry_forward(store, SHOP, job["id"], "someone")


def test_a_hand_off_whose_outcome_is_unknown_is_looked_up_now(container, store, fakes, clock):
    synced(container, store, fakes)
    send_order(container, store, "ZINE-04", 1, order_id=602)
    [job] = store.forward_jobs(SHOP)
    later = clock() + timedelta(hours=1)
    for _ in range(container.settings.scheduler.forward_max_attempts):  # attempts used up, the 3PL unreachable
        store.finish_forward_job(job["id"], status="pending", now=clock(), next_attempt_at=later,
                                 error="outcome unknown: sb may hold it (lookup failed: HTTP 503)")
    item = one(container, store, "forward_unknown")
    assert item.title.startswith("Nobody knows yet whether sb (Northeast micro-warehouse (Newark, NJ)) has order")
    assert "It is asked again at Nov 22, 11:00" in item.detail
    assert item.actions[0].label == "Look up now" and item.urgency == 1
    assert container.forwarding.forward_due(store).sent == 0  # not due for an hour

    container.actions.retry_forward(store, SHOP, job["id"], "cli")
    lookups = fake_sb(fakes).lookups
    assert container.forwarding.forward_due(store).sent == 1  # due at once: looked up, absent, created
    assert fake_sb(fakes).lookups == lookups + 1
    assert items(container, store, "forward_unknown") == []


def test_a_change_the_3pl_was_not_told_is_marked_done(container, store, fakes, clock):
    order_id, payload, job = sent_order(container, store, fakes, clock)
    line_id = str(payload["line_items"][0]["id"])
    with store.write():
        store.note_amendment(SHOP, order_id, job["id"], line_id, "ZINE-04", 3, 1, clock())
    item = one(container, store, "amendment")
    assert item.key == f"amendment:{job['id']}" and item.title == f"sb still has the old order {payload['name']}"
    assert "ZINE-04: it has 3, the order now wants 1. Change it at sb, then mark it done." in item.detail
    assert item.actions[0].endpoint == "actions.amendment_done" and item.actions[0].confirm

    assert container.actions.amendment_done(store, SHOP, job["id"], "web:maker@candles.example") == 1
    assert items(container, store, "amendment") == []
    assert store.events(SHOP, "forward.amended")[0]["detail"]["by"] == "web:maker@candles.example"
    with pytest.raises(ActionRefused, match="Nothing waits to be changed at the 3PL"):
        container.actions.amendment_done(store, SHOP, job["id"], "again")


def test_another_shops_job_is_not_found(container, store, fakes, clock):
    _, _, job = sent_order(container, store, fakes, clock)
    with pytest.raises(NotFound):
        container.actions.retry_forward(store, WOO, job["id"], "x")
    with pytest.raises(NotFound):
        container.actions.amendment_done(store, WOO, job["id"], "x")


# ---------------------------------------------------------------- syncs


def test_stock_never_synced_is_stale_and_sync_now_fetches_it(container, store, fakes, clock):
    item = one(container, store, "sync_stale")
    assert item.key == "sync_stale:sb" and item.since is None
    assert item.title == "Stock at Northeast micro-warehouse (Newark, NJ), West Coast 3PL (Reno, NV) is out of date"
    assert "has never been synced" in item.detail and "routing counts only 50% of it" in item.detail
    assert [(a.endpoint, dict(a.args), a.cli) for a in item.actions] == [
        ("actions.sync", {"provider_id": "sb"}, f"connector sync --provider sb --shop {SHOP}")]
    fake_sb(fakes).inventory = [inv(10, "ZINE-04", 4)]
    fake_sb(fakes).inventory.append(inv(156, "TEE-LOGO-M", 3))

    outcome = container.actions.sync_now(store, SHOP, "sb", "web:maker@candles.example")

    assert outcome.ok and outcome.rows == {"ne-micro": 1, "west-3pl": 1}
    assert items(container, store) == [] or all(i.kind != "sync_stale" for i in items(container, store))
    assert store.events(SHOP, "sync.requested")[0]["detail"]["by"] == "web:maker@candles.example"
    clock.advance(minutes=121)  # older than [sync] stale_after_minutes again
    assert one(container, store, "sync_stale").detail.startswith("Its stock from sb was last synced Nov 22, 10:00")


def test_a_failing_sync_says_why_and_goes_once_a_sync_works(container, store, fakes, clock):
    synced(container, store, fakes)
    clock.advance(minutes=30)
    fake_sb(fakes).fail_next = [ProviderUnavailable("shipbob: HTTP 503")]
    assert not container.sync.sync(store, SHOP)[0].ok
    item = one(container, store, "sync_failing")
    assert item.title == ("Stock from sb is failing to sync (Northeast micro-warehouse (Newark, NJ), "
                          "West Coast 3PL (Reno, NV))")
    assert "failed: ProviderUnavailable: shipbob: HTTP 503. The stock from the last good sync (Nov 22, 10:00)" \
        in item.detail
    assert items(container, store, "sync_stale") == []  # one item per connection, not two

    fake_sb(fakes).fail_next = [ProviderUnavailable("still down")]
    assert not container.actions.sync_now(store, SHOP, "sb", "cli").ok  # the outcome is the caller's to show
    assert "still down" in one(container, store, "sync_failing").detail
    assert container.actions.sync_now(store, SHOP, "sb", "cli").ok
    assert items(container, store, "sync_failing") == []


def test_sync_now_of_an_unknown_connection_is_not_found(container, store):
    with pytest.raises(NotFound, match="no 3PL connection or feed 'nope'"):
        container.actions.sync_now(store, SHOP, "nope", "cli")


# ---------------------------------------------------------------- transfers


def add_transfer(store, clock, *, units=10, status="proposed", lead_days=1):
    with store.write():
        return store.add_transfer(SHOP, sku="CANDLE-CEDAR", from_node="central", to_node="ne-micro", units=units,
                                  unit_cost=0.45, lead_days=lead_days, status=status, emergency=False,
                                  approval_reason="over 5 units needs approval", now=clock())


def test_a_transfer_is_approved_shipped_and_received_from_its_items(container, store, clock):
    store.set_stock(SHOP, "central", "CANDLE-CEDAR", on_hand=50, committed=0, available=50, source="manual",
                    now=clock())
    tid = add_transfer(store, clock)
    item = one(container, store, "transfer_approval")
    assert item.title == (f"Move 10 × CANDLE-CEDAR from Central warehouse (Columbus, OH) to Northeast "
                          f"micro-warehouse (Newark, NJ)? (transfer #{tid})")
    assert item.detail == "It waits for your approval: Over 5 units needs approval."
    assert [a.label for a in item.actions] == ["Approve", "Reject"]

    container.actions.transfer(store, SHOP, tid, "approve", "web:maker@candles.example")
    assert items(container, store, "transfer_approval") == []
    ship = one(container, store, "transfer_to_ship")
    assert ship.actions[0].inputs[0].value == "10" and "Approved by maker@candles.example" in ship.detail
    with pytest.raises(ActionRefused, match=f"Transfer #{tid} is already approved by web:maker@candles.example"):
        container.actions.transfer(store, SHOP, tid, "approve", "someone else")

    container.actions.transfer(store, SHOP, tid, "ship", "cli", units=8)
    assert items(container, store, "transfer_to_ship") == []
    assert items(container, store, "transfer_to_receive") == []  # on its way: not due yet
    clock.advance(days=1)
    receive = one(container, store, "transfer_to_receive")
    assert receive.title == f"Has 8 × CANDLE-CEDAR reached Northeast micro-warehouse (Newark, NJ)? (transfer #{tid})"
    container.actions.transfer(store, SHOP, tid, "receive", "cli")
    assert items(container, store) == [] or not [i for i in items(container, store) if "transfer" in i.kind]
    assert store.transfer(tid)["status"] == "received"


def test_shipping_more_than_the_source_can_spare_is_refused_with_the_reason(container, store, clock):
    store.set_stock(SHOP, "central", "CANDLE-CEDAR", on_hand=3, committed=0, available=3, source="manual", now=clock())
    tid = add_transfer(store, clock, status="approved")
    with pytest.raises(ActionRefused, match="central can spare 3 of the 10 × CANDLE-CEDAR"):
        container.actions.transfer(store, SHOP, tid, "ship", "cli")
    assert store.transfer(tid)["status"] == "approved"
    with pytest.raises(NotFound):
        container.actions.transfer(store, WOO, tid, "reject", "cli")
    with pytest.raises(ActionRefused, match="Pick one of approve, reject, ship, receive"):
        container.actions.transfer(store, SHOP, tid, "teleport", "cli")


# ---------------------------------------------------------------- stock


def test_over_reserved_stock_offers_moving_the_newest_orders_and_a_count(container, store, clock):
    store.set_stock(SHOP, "central", "CANDLE-FIG", on_hand=10, committed=0, available=10, source="manual", now=clock())
    for node in ("ne-micro", "west-3pl", "popup-soho"):
        store.set_stock(SHOP, node, "CANDLE-FIG", on_hand=0, committed=0, available=0, source="manual", now=clock())
    older, _ = send_order(container, store, "CANDLE-FIG", 4, order_id=701)
    newer, _ = send_order(container, store, "CANDLE-FIG", 4, order_id=702)
    assert {r.node_id for o in (older, newer) for r in store.active_reservations(SHOP, o)} == {"central"}
    with store.write():  # the count fell without the reservations being looked at (e.g. an import)
        store.adjust_stock(SHOP, "central", "CANDLE-FIG", -5, "test", clock())

    item = one(container, store, "over_reserved")
    assert item.key == "over_reserved:central:CANDLE-FIG"
    assert item.title == "Central warehouse (Columbus, OH) holds 5 of CANDLE-FIG but 8 are reserved"
    assert [a.label for a in item.actions] == ["Move the newest orders elsewhere", "Save count"]
    assert item.actions[1].cli == f"connector stock set central CANDLE-FIG QUANTITY --shop {SHOP}"

    rerouted = container.actions.resolve_over_reserved(store, SHOP, "central", "web:maker@candles.example")
    assert [(r.from_node, r.to_node) for r in rerouted] == [("central", None)]  # no other node has any
    assert items(container, store, "over_reserved") == []
    stuck = one(container, store, "exception")
    assert stuck.key.startswith(f"exception:{newer}:") and "move asked for by web:maker@candles.example" in stuck.detail
    with pytest.raises(ActionRefused, match="holds enough for every order reserved there now"):
        container.actions.resolve_over_reserved(store, SHOP, "central", "cli")


def test_a_hand_count_settles_over_reserved_stock_at_a_hand_counted_node(container, store, clock):
    store.set_stock(SHOP, "central", "CANDLE-FIG", on_hand=4, committed=0, available=4, source="manual", now=clock())
    send_order(container, store, "CANDLE-FIG", 4, order_id=703)
    with store.write():
        store.adjust_stock(SHOP, "central", "CANDLE-FIG", -4, "test", clock())
    assert one(container, store, "over_reserved")
    previous, rerouted = container.actions.count(store, SHOP, "central", "CANDLE-FIG", 6, "web:maker@candles.example")
    assert (previous, rerouted) == (0, [])
    assert items(container, store, "over_reserved") == []
    assert store.events(SHOP, "stock.manual_count")[0]["detail"]["by"] == "web:maker@candles.example"
    with pytest.raises(ActionRefused, match="takes its stock from sb"):
        container.actions.count(store, SHOP, "ne-micro", "CANDLE-FIG", 1, "cli")
    with pytest.raises(NotFound):
        container.actions.count(store, SHOP, "garage", "CANDLE-FIG", 1, "cli")


# ---------------------------------------------------------------- the store's deliveries


def test_failed_deliveries_are_tried_again_and_unreadable_ones_are_explained(container, store, clock):
    import random

    from connector import sandbox
    from tests.conftest import shopify_headers
    from tests.integration.test_sync import SECRET

    body = b"{not json"
    container.inbox.ingest(store, "shopify", body, shopify_headers(body, secret=SECRET))
    item = one(container, store, "webhooks_failed")
    assert item.title == "1 delivery from your store could not be processed" and item.actions == ()
    assert "(could not be read: unparseable body" in item.detail and "Trying again would not help" in item.detail
    with pytest.raises(ActionRefused):
        container.actions.retry_webhooks(store, SHOP, "cli")

    hook = sandbox.shopify_webhook(SECRET, sandbox.shopify_order(random.Random(9), 902, 1902, clock()))
    container.inbox.ingest(store, "shopify", hook.body, hook.headers)
    with store.write():  # as the inbox leaves a delivery whose processing crashed max_attempts times
        store.conn.execute("UPDATE webhook_inbox SET status = 'failed', attempts = 5, last_error = 'RuntimeError: "
                           "boom' WHERE status = 'pending'")
    item = one(container, store, "webhooks_failed")
    assert item.title == "2 deliveries from your store could not be processed"
    assert "orders/create (failed after 5 attempts: RuntimeError: boom)" in item.detail
    assert [a.label for a in item.actions] == ["Try again"]
    ids = container.actions.retry_webhooks(store, SHOP, "cli")
    assert len(ids) == 1 and store.webhook(ids[0])["status"] == "pending"
    assert one(container, store, "webhooks_failed").actions == ()  # the unreadable one stays, explained
    assert store.events(SHOP, "webhook.retry")[0]["detail"] == {"ids": ids, "by": "cli"}
    with pytest.raises(ActionRefused, match="No delivery from the store waits to be tried again"):
        container.actions.retry_webhooks(store, SHOP, "cli")


def test_a_failed_refund_lookup_is_asked_again(container, store, clock):
    from connector.domain.model import Order

    with store.write():
        store.upsert_order(Order(WOO, "727", "727", "woocommerce", clock(), clock(), None, ()), "uk", clock())
        store.track_refund_lookups(WOO, "727", ["900"], clock(), look_up=True)
        store.finish_refund_lookups(WOO, "727", ["900"], status="failed", now=clock(), error="HTTP 403: no key")
    item = one(container, store, "refund_lookup_failed", WOO)
    assert item.title == "A refund on order 727 is not applied" and "HTTP 403: no key" in item.detail
    assert container.actions.retry_refund_lookup(store, WOO, "727", "cli") == 1
    assert items(container, store, "refund_lookup_failed", WOO) == []
    assert store.due_refund_lookups(clock(), 10)[0]["refund_ids"] == ["900"]
    with pytest.raises(ActionRefused, match="No refund of order 727 waits"):
        container.actions.retry_refund_lookup(store, WOO, "727", "cli")
    with pytest.raises(NotFound):
        container.actions.retry_refund_lookup(store, SHOP, "727", "cli")


def test_reading_the_store_back_failing_is_listed_and_refused_without_a_key(container, store, clock):
    with store.write():
        store.finish_order_poll(WOO, clock(), "ProviderUnavailable: HTTP 502")
    item = one(container, store, "reconcile_failing", WOO)
    assert item.title == "Orders have not been read back from your store yet"
    assert item.detail.startswith("1 run in a row failed: ProviderUnavailable: HTTP 502.")
    with pytest.raises(ActionRefused, match="without its REST API key"):
        container.actions.reconcile_now(store, WOO, "cli")
    with pytest.raises(ActionRefused, match="Only WooCommerce stores are read back"):
        container.actions.reconcile_now(store, SHOP, "cli")


def test_webhook_problems_are_one_item_repaired_through_the_store(container, store, clock):
    problems = ["webhook #200 (order.created to https://x/webhooks/woocommerce) does not deliver: WooCommerce "
                "disabled it after deliveries failed; set it Active again in WooCommerce > Settings > Advanced > "
                "Webhooks"]
    with store.write():
        store.set_webhook_problems(WOO, problems)
        store.event(WOO, "webhooks.unhealthy", WOO, {"problems": problems}, clock())
    item = one(container, store, "webhook_disabled", WOO)
    assert item.since == clock() and item.title == "Your store is not sending an order change by webhook"
    assert item.detail.startswith("Webhook #200 (order.created") and [a.label for a in item.actions] == [
        "Repair webhooks", "Check again"]

    with pytest.raises(ActionRefused, match=r"public address \(\[web\] public_url\) is not set"):
        container.actions.repair_webhooks(store, WOO, "cli")
    container.actions.settings = _with_public_url(container.settings)
    with pytest.raises(ActionRefused, match="without its REST API key"):
        container.actions.repair_webhooks(store, WOO, "cli")

    class Setup:
        def ensure_order_webhooks(self, delivery_url):
            self.url = delivery_url
            return type("Done", (), {"webhooks": (1, 2, 3, 4)})()

    setup = Setup()
    container.actions.webhook_setup = lambda shop: setup
    outcome = container.actions.repair_webhooks(store, WOO, "web:grower@botanics.example")
    assert setup.url == "https://connector.example.com/webhooks/woocommerce"
    assert outcome.detail == "The store sends its 4 order webhooks to this service again."
    assert items(container, store, "webhook_disabled", WOO) == []
    assert store.events(WOO, "webhooks.repaired")[0]["detail"] == {"by": "web:grower@botanics.example",
                                                                   "webhooks": 4}


def _with_public_url(settings):
    from dataclasses import replace

    return replace(settings, web=settings.web.model_copy(update={"public_url": "https://connector.example.com"}))


# ---------------------------------------------------------------- everything at once


def test_items_come_most_urgent_first_and_nothing_when_all_is_well(container, store, fakes, clock):
    synced(container, store, fakes)
    assert items(container, store) == []
    add_transfer(store, clock)
    send_order(container, store, "NO-SUCH-SKU", 1, order_id=801)
    assert [i.kind for i in items(container, store)] == ["exception", "transfer_approval"]


def test_the_collectors_over_reserved_rows_are_the_stores(container, store, fakes, clock):
    """ActionsStore.over_reserved (one pass over the active reservations) lists what
    Store.over_reserved lists, at_3pl included."""
    from connector.actions_store import ActionsStore

    synced(container, store, fakes, inv(10, "ZINE-04", 10), inv(156, "TEE-LOGO-M", 3))
    for order_id in (951, 952):
        send_order(container, store, "ZINE-04", 3, order_id=order_id)
    assert container.forwarding.forward_due(store).sent == 2  # at the 3PL now
    store.set_stock(SHOP, "central", "CANDLE-FIG", on_hand=4, committed=0, available=4, source="manual", now=clock())
    send_order(container, store, "CANDLE-FIG", 4, zip_code="43004", province="OH", order_id=953)
    with store.write():
        store.adjust_stock(SHOP, "ne-micro", "ZINE-04", -8, "test", clock())
        store.adjust_stock(SHOP, "central", "CANDLE-FIG", -3, "test", clock())
    expected = store.over_reserved(SHOP)
    assert {(r["node_id"], r["at_3pl"]) for r in expected} == {("ne-micro", 6), ("central", 0)}
    assert ActionsStore(store).over_reserved(SHOP) == expected
