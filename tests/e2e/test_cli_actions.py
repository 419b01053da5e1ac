"""The action centre's steps on the command line (the commands each item names): done,
audited with --by, and refused in one line with a non-zero exit code once they no
longer apply, never a traceback."""
from __future__ import annotations

import functools
import json

import pytest

import connector.cli
from connector import handoff_store
from connector.bootstrap import build
from connector.domain.model import Order
from tests.conftest import SHOPIFY_SHOP, WOO_SHOP, shopify_headers


@pytest.fixture(autouse=True)
def _cli_uses_the_fixed_clock(monkeypatch, clock):
    monkeypatch.setattr(connector.cli, "build", functools.partial(build, clock=clock))


def an_order(store, clock, shop=SHOPIFY_SHOP, order_id="9100", number="#9100"):
    with store.write():
        store.upsert_order(Order(shop, order_id, number, "shopify", clock(), clock(), None, ()), None, clock())
    return order_id


def test_forward_retry(cli, store, clock):
    order_id = an_order(store, clock)
    with store.write():
        store.add_forward_job(SHOPIFY_SHOP, order_id, "ne-micro", "sb", clock())
    [job] = store.forward_jobs(SHOPIFY_SHOP)
    store.finish_forward_job(job["id"], status="failed", now=clock(), error="ProviderRejected: no address")
    assert f"[connector forward retry {job['id']} --shop {SHOPIFY_SHOP}]" in cli("exceptions").stdout

    done = cli("forward", "retry", str(job["id"]), "--by", "maya")
    assert done.exit_code == 0 and "due again now" in done.stdout
    assert store.forward_job(job["id"])["status"] == "pending"
    assert store.events(SHOPIFY_SHOP, "forward.retry")[0]["detail"]["by"] == "maya"

    again = cli("forward", "retry", str(job["id"]))
    assert again.exit_code == 1 and "Traceback" not in again.output
    assert again.stderr.strip() == "Order #9100 is already queued for sb; it is tried again by itself."
    assert cli("forward", "retry", "999").exit_code == 2


def test_stock_resolve_and_the_over_reserved_line(cli, container, store, clock):
    from tests.e2e.test_cli import ingest_shopify, shopify_order

    for node in ("ne-micro", "west-3pl", "popup-soho"):
        store.set_stock(SHOPIFY_SHOP, node, "CANDLE-FIG", on_hand=0, committed=0, available=0, source="test",
                        now=clock())
    store.set_stock(SHOPIFY_SHOP, "central", "CANDLE-FIG", on_hand=3, committed=0, available=3, source="manual",
                    now=clock())
    ingest_shopify(container, store, shopify_order(9_200_001, 9201, lines=[("CANDLE-FIG", 3)], province="OH",
                                                   zip_code="43004", now=clock()))
    container.inbox.process(store)
    with store.write():
        store.adjust_stock(SHOPIFY_SHOP, "central", "CANDLE-FIG", -2, "test", clock())
    listed = cli("exceptions").stdout
    assert f"[connector stock resolve central --shop {SHOPIFY_SHOP} | connector stock set central CANDLE-FIG " \
           f"QUANTITY --shop {SHOPIFY_SHOP}]" in listed

    done = cli("stock", "resolve", "central", "--shop", SHOPIFY_SHOP, "--by", "maya")
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[0] == f"{SHOPIFY_SHOP}/central: 1 order line(s) routed again"
    assert "order #9201" in done.stdout and "no node can take it" in done.stdout
    refused = cli("stock", "resolve", "central", "--shop", SHOPIFY_SHOP)
    assert refused.exit_code == 1 and "holds enough for every order reserved there now" in refused.stderr
    assert cli("stock", "resolve", "uk-hub", "--shop", SHOPIFY_SHOP).exit_code == 2


def test_webhooks_retry(cli, container, store):
    body = json.dumps({"id": 1}).encode()
    container.inbox.ingest(store, "shopify", body, shopify_headers(body))
    with store.write():
        store.conn.execute("UPDATE webhook_inbox SET status = 'failed', attempts = 5, last_error = 'boom'")
    done = cli("webhooks", "retry", "--shop", SHOPIFY_SHOP, "--by", "maya")
    assert done.exit_code == 0 and "1 delivery queued again (#1)" in done.stdout
    assert store.webhook(1)["status"] == "pending"
    refused = cli("webhooks", "retry", "--shop", SHOPIFY_SHOP)
    assert refused.exit_code == 1 and refused.stderr.strip() == "No delivery from the store waits to be tried again."


def test_webhooks_repair_says_what_it_needs(cli):
    refused = cli("webhooks", "repair", "--shop", WOO_SHOP)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "public address ([web] public_url) is not set" in refused.stderr


@pytest.mark.parametrize("command", [("webhooks", "retry"), ("webhooks", "repair"), ("stock", "resolve", "central")])
def test_a_shop_that_is_not_configured_is_one_line(cli, command):
    refused = cli(*command, "--shop", "no-such-shop")
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert refused.stderr.strip().startswith("unknown shop 'no-such-shop' (configured: ")


def test_refunds_retry(cli, store, clock):
    an_order(store, clock, WOO_SHOP, "727", "727")
    with store.write():
        store.track_refund_lookups(WOO_SHOP, "727", ["900"], clock(), look_up=True)
        store.finish_refund_lookups(WOO_SHOP, "727", ["900"], status="failed", now=clock(), error="HTTP 401")
    done = cli("refunds", "retry", "727", "--shop", WOO_SHOP, "--by", "maya")
    assert done.exit_code == 0 and "1 refund lookup(s) due again" in done.stdout
    assert store.events(WOO_SHOP, "refund.retry")[0]["detail"] == {"refunds": 1, "by": "maya"}
    assert cli("refunds", "retry", "727", "--shop", WOO_SHOP).exit_code == 1
    assert cli("refunds", "retry", "727", "--shop", SHOPIFY_SHOP).exit_code == 2
    assert cli("refunds").exit_code == 0  # still the lookup run without a subcommand


def test_the_refused_move_names_the_handoffs_retry(cli, store, clock):
    order_id = an_order(store, clock)
    with store.write():
        handoff_store.refuse(store, SHOPIFY_SHOP, order_id, "ne-micro", "ne-micro has no Shopify location", clock())
    command = f"connector handoff --shop {SHOPIFY_SHOP} --retry {order_id}"
    assert f"[{command}]" in cli("exceptions").stdout
    assert cli(*command.split()[1:]).exit_code in (0, 1)  # runs the hand-off (no Shopify token here: skipped)
    assert store.events(SHOPIFY_SHOP, "handoff.retry")[0]["detail"]["by"] == "cli"


def test_sync_one_provider(cli, container, store, tmp_path):
    feed = tmp_path / "popup.csv"
    feed.write_text("sku,quantity\nCANDLE-FIG,7\n")
    document, version = container.shop_config.document(store, SHOPIFY_SHOP)
    document["providers"] = {"popup-sheet": {"type": "csv", "path": str(feed)}}
    next(n for n in document["nodes"] if n["id"] == "popup-soho")["stock_source"] = "popup-sheet"
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    assert f"[connector sync --provider popup-sheet --shop {SHOPIFY_SHOP}]" in cli("exceptions").stdout

    done = cli("sync", "--shop", SHOPIFY_SHOP, "--provider", "popup-sheet")
    assert done.exit_code == 0 and f"{SHOPIFY_SHOP}/popup-sheet: ok — popup-soho 1 rows" in done.stdout
    nothing = cli("sync", "--shop", SHOPIFY_SHOP, "--provider", "nope")
    assert nothing.stdout.strip() == "nothing to sync: no node takes its stock from a provider (nope)"
