"""Personal data past [privacy] keep_personal_data_days is cut: order deliveries, orders'
postcodes and customer ids, data-request exports; stock accounting, deliveries that
failed to apply, and everything of an order still due at its 3PL are kept."""
from __future__ import annotations

import functools
import json
import random
from datetime import timedelta

from click.testing import CliRunner

from connector import sandbox
from connector.bootstrap import build
from tests.conftest import FIXTURES, to_toml
from tests.integration.test_sync import (  # noqa: F401 - fixtures
    SECRET,
    SHOP,
    clock,
    container,
    fake_sb,
    fakes,
    inv,
    make_config,
    make_container,
    send_order,
    store,
)


def order_row(store, order_id):
    return store._dicts("SELECT * FROM orders WHERE shop_id = ? AND id = ?", (SHOP, order_id))[0]


def bodies(store, order_id):
    return [bytes(r[0]) for r in store._all("SELECT body FROM webhook_inbox WHERE shop_id = ? AND resource_id = ?",
                                            (SHOP, order_id))]


def history(container, store, fakes, clock):
    """Orders of every kind, 91 days before the run: one handed to ShipBob, one whose
    hand-over is still due, one at a node we do not forward from, one whose delivery
    failed to apply; a customer data request; then, today, a new order."""
    fake_sb(fakes).inventory = [inv(10, "ZINE-04", 50)]
    container.sync.sync(store, SHOP)
    sent, _ = send_order(container, store, "ZINE-04", 1, order_id=101)
    clock.advance(minutes=1)
    assert container.forwarding.forward_due(store).sent == 1
    due, _ = send_order(container, store, "ZINE-04", 1, order_id=102)
    local, _ = send_order(container, store, "CANDLE-FIG", 1, order_id=103)
    failed = "104"  # a delivery that never applied: processing gave up on it
    hook = sandbox.shopify_webhook(SECRET, sandbox.shopify_order(random.Random(4), 104, 1104, clock(), lines=1))
    assert container.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
    store.conn.execute("UPDATE webhook_inbox SET status = 'failed' WHERE resource_id = ?", (failed,))
    request = json.loads((FIXTURES / "shopify" / "customers_data_request.json").read_text())
    hook = sandbox.shopify_webhook(SECRET, request, topic="customers/data_request")
    assert container.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
    container.inbox.process(store)
    assert [j["status"] for j in store.forward_jobs(SHOP)] == ["sent", "pending"]
    assert all(order_row(store, o)["ship_postcode"] for o in (sent, due, local))
    clock.advance(days=91)
    recent, _ = send_order(container, store, "CANDLE-FIG", 1, order_id=105)
    return sent, due, local, failed, recent


def test_a_run_cuts_what_is_past_retention_and_keeps_what_is_still_needed(container, store, fakes, clock):
    sent, due, local, failed, recent = history(container, store, fakes, clock)
    lines_before = {o: store.order_lines(SHOP, o) for o in (sent, local)}

    dry = container.retention.minimise(store, dry_run=True)
    assert bodies(store, sent)[0]  # a dry run changes nothing
    report = container.retention.minimise(store)

    assert report.cutoff == clock() - timedelta(days=90)
    assert report.shops[SHOP] == dry.shops[SHOP] == {"bodies": 3, "orders": 2, "exports": 1}
    for order_id in (sent, local):
        assert bodies(store, order_id) == [b""]
        row = order_row(store, order_id)
        assert row["ship_postcode"] is None and row["ship_province"] is None and row["customer_id"] is None
        assert row["ship_country"] == "US" and row["region_id"]  # the figures keep their region
        assert store.order_lines(SHOP, order_id) == lines_before[order_id]  # stock accounting is untouched
    for order_id in (due, failed, recent):
        assert all(bodies(store, order_id))
    assert order_row(store, due)["ship_postcode"] and order_row(store, recent)["ship_postcode"]
    [export] = store.events(SHOP, "privacy.data_request")
    assert export["detail"] == {"minimised": True}
    request_bodies = store._all("SELECT body FROM webhook_inbox WHERE topic = 'customers/data_request'")
    assert [bytes(b) for (b,) in request_bodies] == [b""]  # its delivery, already cut to ids, goes too
    [audit] = store.events(SHOP, "privacy.retention")
    assert audit["detail"] == {"before": report.cutoff.isoformat(), "bodies": 3, "orders": 2, "exports": 1}

    # The order still due at ShipBob keeps its address for the hand-over.
    assert container.forwarding.forward_due(store).sent == 1
    assert [o.address_lines for o in fake_sb(fakes).orders.values()][-1]

    # Once handed over, it is no longer needed: the next run cuts it, and the one after finds nothing.
    assert container.retention.minimise(store).shops[SHOP] == {"bodies": 1, "orders": 1, "exports": 0}
    assert bodies(store, due) == [b""]
    again = container.retention.minimise(store)
    assert again.shops[SHOP] == {"bodies": 0, "orders": 0, "exports": 0}
    assert len(store.events(SHOP, "privacy.retention")) == 2  # nothing cut, nothing logged


def test_the_cli_counts_on_a_dry_run_and_cuts_otherwise(container, store, fakes, clock, tmp_path, monkeypatch):
    sent, *_ = history(container, store, fakes, clock)
    config = make_config(tmp_path / "c.db")
    config["privacy"] = {"keep_personal_data_days": 30}
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config))
    import connector.cli
    from connector.cli import main

    monkeypatch.setattr(connector.cli, "build", functools.partial(build, clock=clock))

    dry = CliRunner().invoke(main, ["--config", str(path), "retention", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "(30 days)" in dry.output and f"{SHOP}: would cut 3 order deliveries, 2 orders'" in dry.output
    assert bodies(store, sent)[0]
    real = CliRunner().invoke(main, ["--config", str(path), "retention"])
    assert real.exit_code == 0 and f"{SHOP}: cut 3 order deliveries" in real.output
    assert bodies(store, sent) == [b""]


def test_batches_continue_where_the_last_one_stopped(container, store, fakes, clock):
    history(container, store, fakes, clock)
    cutoff = clock() - timedelta(days=90)
    assert store.past_retention(SHOP, cutoff) == {"bodies": 3, "orders": 2, "exports": 1}
    assert store.minimise_past_retention(SHOP, cutoff, batch=1) == {"bodies": 3, "orders": 2, "exports": 1}
    assert store.past_retention(SHOP, cutoff) == {"bodies": 0, "orders": 0, "exports": 0}
