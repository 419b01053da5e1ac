"""The alerts service on a real database: what needs a shop (the attention collector)
becomes alerts once, the outbox is written in the deciding transaction and sent after it,
the hourly limit holds the rest for one "and N more" message, failures wait with backoff
and keep their error, and the digest goes once a day. Channels are fakes here
(tests/integration/test_alert_channels.py runs the real ones)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

import pytest

from adapters.fakes import FakeNotifier
from connector import sandbox
from connector.alerts_store import AlertStore
from connector.bootstrap import build
from connector.config import settings_from_dict
from tests.conftest import PUBLIC_URL, SHOPIFY_SECRET, SHOPIFY_SHOP, initialised

HOOK_URL = "https://hooks.example.com/services/T1/B2/secret-tok3n"


@pytest.fixture
def channels():
    return {"email": FakeNotifier("email"), "post": FakeNotifier("post")}


@pytest.fixture
def container(config_dict, clock, channels):
    config_dict["web"]["public_url"] = PUBLIC_URL
    config_dict["shops"][SHOPIFY_SHOP]["alerts"] = {
        "emails": ["maker@candles.example"], "post_url": HOOK_URL, "signing_secret": "sign-me-0042",
        "rate_limit_per_hour": 3}
    return initialised(build(settings_from_dict(config_dict), clock=clock, notifiers=channels), clock)


@dataclass(frozen=True)
class Item:  # an attention item as the collector makes it (the fields alerts read)
    kind: str
    key: str
    title: str
    detail: str = ""
    group: str | None = None


def propose_transfer(store, clock, sku="CANDLE-FIG") -> int:
    with store.write():
        return store.add_transfer(SHOPIFY_SHOP, sku=sku, from_node="central", to_node="ne-micro", units=24,
                                  unit_cost=0.45, lead_days=2, status="proposed", emergency=False,
                                  approval_reason="over 20 units", now=clock())


def order_nobody_stocks(container, store, number: int) -> None:
    """An order for a SKU no node holds: its line becomes an exception (not enough stock)."""
    order = sandbox.shopify_order(random.Random(number), number, number, container.clock(), lines=1)
    order["line_items"][0]["sku"] = "CANDLE-GONE"
    hook = sandbox.shopify_webhook(SHOPIFY_SECRET, order)
    container.inbox.ingest(store, "shopify", hook.body, hook.headers)
    container.inbox.process(store)


def routable(container, store, number: int) -> None:
    """An order for one unit of a SKU the network holds: routed."""
    order = sandbox.shopify_order(random.Random(number), number, number, container.clock(), lines=1)
    order["line_items"][0]["sku"], order["line_items"][0]["quantity"] = "CANDLE-FIG", 1
    hook = sandbox.shopify_webhook(SHOPIFY_SECRET, order)
    container.inbox.ingest(store, "shopify", hook.body, hook.headers)
    container.inbox.process(store)


def outbox(store, **where):
    return [row for row in AlertStore(store).outbox(SHOPIFY_SHOP) if all(row[k] == v for k, v in where.items())]


def test_what_needs_the_shop_alerts_once_on_each_channel_and_again_only_after_it_came_back(
        container, store, clock, channels):
    transfer = propose_transfer(store, clock)
    order_nobody_stocks(container, store, 9001)
    order_nobody_stocks(container, store, 9002)
    looked = container.alerts.look(store)
    assert looked.alerted == 2  # one per kind of exception (two lines, one kind) + the transfer
    queued = outbox(store)
    assert {(row["channel"], row["status"]) for row in queued} == {("email", "pending"), ("post", "pending")}
    assert len(queued) == 4
    assert sorted({row["subject"] for row in queued}) == [
        "[aurora-candles.myshopify.com] Move 24 × CANDLE-FIG from Central warehouse (Columbus, OH) to Northeast "
        f"micro-warehouse (Newark, NJ)? (transfer #{transfer})",
        "[aurora-candles.myshopify.com] New kind of exception: no node that ships there has enough of it"]
    sent = container.alerts.send_due(store)
    assert sent.sent == 4 and not sent.errors
    assert len(channels["email"].delivered) == 2 and len(channels["post"].delivered) == 2
    message, to = channels["post"].delivered[0]
    assert to.url == HOOK_URL and to.signing_secret == "sign-me-0042"
    assert message.link == f"{PUBLIC_URL}/actions" and f"What to do: {PUBLIC_URL}/actions" in message.text
    assert channels["email"].delivered[0][1].addresses == ("maker@candles.example",)

    clock.advance(minutes=5)
    order_nobody_stocks(container, store, 9003)  # the same kind again: already told
    assert container.alerts.look(store).alerted == 0
    assert container.alerts.send_due(store).sent == 0

    container.transfers.approve(store, transfer, "test")  # no longer waits for approval: cleared
    container.alerts.look(store)
    assert AlertStore(store).tracked(SHOPIFY_SHOP)[f"transfer_approval:{transfer}"].present is False


def test_an_item_that_cleared_and_came_back_alerts_again(container, store, clock):
    items = [Item("sync_failing", "sync_failing:shipbob", "Stock from shipbob is failing to sync")]
    container.alerts.collect = lambda store, shop, now: list(items) if shop.id == SHOPIFY_SHOP else []
    assert container.alerts.look(store).alerted == 1
    assert container.alerts.look(store).alerted == 0
    saved = items.pop()
    clock.advance(minutes=1)
    container.alerts.look(store)  # gone
    items.append(saved)
    clock.advance(minutes=1)
    assert container.alerts.look(store).alerted == 1  # back: told again
    assert len(outbox(store, channel="email")) == 2


def test_beyond_the_hourly_limit_alerts_are_held_and_told_later_in_one_message(container, store, clock, channels):
    items = [Item("sync_failing", f"sync_failing:p{i}", f"Provider p{i} failing") for i in range(5)]
    container.alerts.collect = lambda store, shop, now: items if shop.id == SHOPIFY_SHOP else []
    looked = container.alerts.look(store)
    assert (looked.alerted, looked.held) == (3, 2)  # rate_limit_per_hour = 3
    container.alerts.send_due(store)
    clock.advance(minutes=30)
    assert container.alerts.look(store).summaries == 0  # the hour is still full
    clock.advance(minutes=31)
    assert container.alerts.look(store).summaries == 1
    container.alerts.send_due(store)
    summary = channels["email"].delivered[-1][0]
    assert summary.kind == "summary" and summary.subject == "[aurora-candles.myshopify.com] and 2 more alerts"
    assert "- Provider p3 failing\n- Provider p4 failing" in summary.text
    clock.advance(minutes=1)
    assert container.alerts.look(store).summaries == 0  # told once


def test_a_failed_message_waits_with_backoff_keeps_its_error_and_is_given_up_after_the_last_attempt(
        container, store, clock, channels):
    container.alerts.collect = lambda store, shop, now: [Item("webhook_disabled", "webhook_disabled", "Webhooks off")] \
        if shop.id == SHOPIFY_SHOP else []
    container.alerts.look(store)
    channels["post"].fail_next = ["the address for alerts (hooks.example.com) answered HTTP 503"] * 20
    report = container.alerts.send_due(store)
    assert (report.sent, report.retrying) == (1, 1)
    [row] = outbox(store, channel="post")
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"] == "the address for alerts (hooks.example.com) answered HTTP 503"
    assert container.alerts.send_due(store).sent + container.alerts.send_due(store).retrying == 0  # not due yet
    assert channels["post"].attempts == 1  # never sent twice in one run, nor before its time
    clock.advance(minutes=1)
    assert container.alerts.send_due(store).retrying == 1
    for _ in range(20):
        clock.advance(hours=1)
        container.alerts.send_due(store)
    [row] = outbox(store, channel="post")
    assert row["status"] == "failed" and row["attempts"] == container.settings.scheduler.alerts_max_attempts
    assert channels["post"].attempts == container.settings.scheduler.alerts_max_attempts
    assert "secret-tok3n" not in row["last_error"]


def test_a_channel_the_shop_stopped_using_drops_its_queued_messages(container, store, clock, channels):
    container.alerts.collect = lambda store, shop, now: [Item("webhook_disabled", "webhook_disabled", "Off")] \
        if shop.id == SHOPIFY_SHOP else []
    container.alerts.look(store)
    document, version = container.shop_config.document(store, SHOPIFY_SHOP)
    del document["alerts"]["post_url"], document["alerts"]["signing_secret"]
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    report = container.alerts.send_due(store)
    assert (report.sent, report.dropped) == (1, 1) and channels["post"].delivered == []
    [row] = outbox(store, channel="post")
    assert row["status"] == "dropped" and row["last_error"] == "not sent: the shop no longer sends alerts by JSON POST"


def test_the_digest_tells_yesterday_in_figures_and_what_needs_the_shop_once_a_day(container, store, clock, channels):
    order_nobody_stocks(container, store, 9101)  # 10:00 in New York on the 22nd
    routable(container, store, 9102)
    propose_transfer(store, clock)
    clock.advance(days=1)
    preview = container.alerts.digest(store, SHOPIFY_SHOP, preview=True)
    assert preview.subject == "[aurora-candles.myshopify.com] Your day: 2026-11-22"
    for line in ("- Orders routed: 1: orders placed that day and sent to a place that ships them",
                 "- On time: no parcel of those orders has left yet",
                 "- Exceptions: 50% of the day's orders had a line no place could take",
                 "- Open exceptions now: 1 order line waits for you in the action centre"):
        assert line in preview.text
    assert "Needs you now (2):" in preview.text and "could not be routed" in preview.text
    assert f"- Action centre: {PUBLIC_URL}/actions" in preview.text
    assert outbox(store) == []  # a preview sends nothing
    container.alerts.digest(store, SHOPIFY_SHOP)
    container.alerts.digest(store, SHOPIFY_SHOP)  # the same day again: queued once
    assert [row["status"] for row in outbox(store, kind="digest")] == ["sent", "sent"]
    assert len(channels["email"].delivered) == 1


def test_the_test_message_says_how_each_channel_went_and_is_audited(container, store, channels):
    channels["post"].fail_next = ["the address for alerts (hooks.example.com) answered HTTP 404"]
    outcomes = container.alerts.test(store, SHOPIFY_SHOP, "cli:maker")
    assert [(o.channel, o.ok, o.sentence) for o in outcomes] == [
        ("email", True, "Email: sent."),
        ("post", False, "JSON POST: not sent, the address for alerts (hooks.example.com) answered HTTP 404.")]
    [event] = store.events(SHOPIFY_SHOP, "alerts.test")
    assert event["detail"]["by"] == "cli:maker" and event["detail"]["outcomes"][1]["ok"] is False
    assert outbox(store) == []  # sent directly, not queued


def test_without_a_mail_server_email_is_not_queued_and_the_test_says_why(config_dict, clock):
    config_dict["shops"][SHOPIFY_SHOP]["alerts"] = {"emails": ["maker@candles.example"]}
    container = initialised(build(settings_from_dict(config_dict), clock=clock,
                                  notifiers={"post": FakeNotifier("post")}), clock)
    store = container.open_store()
    try:
        container.alerts.collect = lambda store, shop, now: [Item("webhook_disabled", "webhook_disabled", "Off")]
        assert container.alerts.look(store).shops == 0 and outbox(store) == []
        [outcome] = container.alerts.test(store, SHOPIFY_SHOP, "test")
        assert not outcome.ok and "no mail server set up" in outcome.sentence
    finally:
        store.close()


def test_the_scheduled_digest_respects_the_shops_switch(container, store, clock):
    document, version = container.shop_config.document(store, SHOPIFY_SHOP)
    document["alerts"]["kinds"] = ["exceptions"]
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    assert container.alerts.scheduled_digest(store, SHOPIFY_SHOP) == "off"
    document, version = container.shop_config.document(store, SHOPIFY_SHOP)
    document["alerts"]["kinds"] = ["digest"]
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    assert container.alerts.scheduled_digest(store, SHOPIFY_SHOP) == "queued"
    assert {row["kind"] for row in outbox(store)} == {"digest"}


def test_a_shop_without_channels_is_not_tracked_so_adding_one_tells_what_is_open_then(container, store, clock):
    container.alerts.collect = lambda store, shop, now: [Item("webhook_disabled", "webhook_disabled", "Off")]
    looked = container.alerts.look(store)
    assert looked.shops == 1  # the WooCommerce shop has no channel
    assert AlertStore(store).tracked("fernleaf-botanics") == {} and AlertStore(store).outbox("fernleaf-botanics") == []
    assert set(AlertStore(store).tracked(SHOPIFY_SHOP)) == {"webhook_disabled"}


def test_a_message_claimed_by_a_sender_that_died_is_sent_later_with_the_same_key(container, store, clock, channels):
    container.alerts.collect = lambda store, shop, now: [Item("webhook_disabled", "webhook_disabled", "Off")] \
        if shop.id == SHOPIFY_SHOP else []
    container.alerts.look(store)
    with store.write():  # a sender claims both rows, then dies before sending
        claimed = AlertStore(store).claim_due(clock(), 10, clock() - timedelta(minutes=10))
    assert len(claimed) == 2 and container.alerts.send_due(store).sent == 0
    clock.advance(minutes=11)
    assert container.alerts.send_due(store).sent == 2
    assert channels["email"].delivered[0][0].key == claimed[0]["message_key"]


def test_the_scheduler_job_runs_the_alerts_and_records_the_run(container, store, channels):
    from apscheduler.schedulers.background import BackgroundScheduler

    from connector.scheduler import build_scheduler

    container.alerts.collect = lambda store, shop, now: [Item("webhook_disabled", "webhook_disabled", "Off")] \
        if shop.id == SHOPIFY_SHOP else []
    job = build_scheduler(container, BackgroundScheduler).get_job("alerts")
    assert job.func(*job.args) == "ok"
    [run] = [r for r in store.job_runs() if r["job_id"] == "alerts"]
    assert run["outcome"] == "ok" and "'alerted': 1" in run["detail"] and "'sent': 2" in run["detail"]
    assert len(channels["post"].delivered) == 1
