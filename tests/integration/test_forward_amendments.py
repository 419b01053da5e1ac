"""Orders that change after a 3PL has them: the lines stay where they were sent (never
routed a second time, even once their stock was handed over to the 3PL's committed),
and each change is noted for a human to make at the 3PL, listed by `connector
exceptions` until `connector forward amended JOB`."""
from __future__ import annotations


from click.testing import CliRunner

from connector import sandbox
from connector.domain.model import ProviderRejected, Shipment
from connector.store import LineAt3pl
from tests.conftest import to_toml
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


def deliver(container, store, clock, payload, topic="orders/updated", **changes):
    clock.advance(minutes=1)
    body = {**payload, **changes, "updated_at": clock().isoformat()}
    hook = sandbox.shopify_webhook(SECRET, body, topic=topic)
    assert container.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
    assert container.inbox.process(store).failed == 0
    return body


def sent_order(container, store, fakes, clock, quantity=3, order_id=71):
    """An order of ``quantity`` ZINE-04 routed to ne-micro and handed to ShipBob."""
    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    order_id, payload = send_order(container, store, "ZINE-04", quantity, order_id=order_id)
    clock.advance(minutes=1)
    assert container.forwarding.forward_due(store).sent == 1
    return order_id, payload, store.forward_jobs(SHOP)[0]


def test_the_job_records_the_lines_the_3pl_got(container, store, fakes, clock):
    order_id, payload, job = sent_order(container, store, fakes, clock)
    line_id = str(payload["line_items"][0]["id"])
    assert store.lines_with_3pl(SHOP, order_id) == {line_id: LineAt3pl(job["id"], "ne-micro", "ZINE-04", 3, False)}


def test_a_job_sent_before_its_lines_were_recorded_counts_the_lines_routed_to_its_node(container, store, fakes,
                                                                                     clock):
    order_id, payload, job = sent_order(container, store, fakes, clock)
    recorded = store.lines_with_3pl(SHOP, order_id)
    store.conn.execute("UPDATE forward_jobs SET sent_lines = NULL WHERE id = ?", (job["id"],))
    assert store.lines_with_3pl(SHOP, order_id) == recorded


def test_an_update_after_the_handover_does_not_route_the_line_again(container, store, fakes, clock):
    order_id, payload, _ = sent_order(container, store, fakes, clock)
    fake_sb(fakes).inventory = [inv(10, "ZINE-04", 7, committed=3)]
    clock.advance(minutes=1)
    assert container.sync.sync(store, SHOP)[0].handed_over == 1
    # Shopify sends orders/updated for tags, notes, payment captures...
    deliver(container, store, clock, payload, tags="vip")
    assert store.active_reservations(SHOP, order_id) == []  # the 3PL's committed holds the units
    assert store.sellable(SHOP, ["ZINE-04"])[("ne-micro", "ZINE-04")] == 7  # not 4
    assert len(store.forward_jobs(SHOP)) == 1 and store.open_amendments() == []
    assert [d["node_id"] for d in store.current_decisions(SHOP, order_id)] == ["ne-micro"]


def test_a_line_reduced_after_sending_is_noted_once_and_cleared_when_it_changes_back(container, store, fakes, clock):
    order_id, payload, job = sent_order(container, store, fakes, clock)
    line = payload["line_items"][0]
    reduced = [{**line, "current_quantity": 1}]
    deliver(container, store, clock, payload, line_items=reduced)
    deliver(container, store, clock, payload, line_items=reduced)  # the same change again: one note
    [note] = store.open_amendments(SHOP)
    assert (note["job_id"], note["line_id"], note["sku"], note["sent"], note["wanted"]) == (
        job["id"], str(line["id"]), "ZINE-04", 3, 1)
    assert len(store.events(SHOP, "forward.amend_needed")) == 1
    # Our reservation stays at what the 3PL will ship until someone changes it there.
    assert [r.quantity for r in store.active_reservations(SHOP, order_id)] == [3]

    deliver(container, store, clock, payload, line_items=[{**line, "current_quantity": 2}])
    assert [(a["sent"], a["wanted"]) for a in store.open_amendments(SHOP)] == [(3, 2)]  # superseded
    deliver(container, store, clock, payload, line_items=[line])
    assert store.open_amendments(SHOP) == []


def test_a_cancellation_after_sending_asks_for_the_3pl_order_to_be_cancelled(container, store, fakes, clock):
    order_id, payload, job = sent_order(container, store, fakes, clock)
    deliver(container, store, clock, payload, topic="orders/cancelled", cancelled_at=clock().isoformat())
    [note] = store.open_amendments(SHOP)
    assert (note["job_id"], note["wanted"], note["job_status"], note["provider"]) == (job["id"], 0, "sent", "sb")
    assert store.active_reservations(SHOP, order_id) == []


def test_the_cli_lists_the_change_and_records_who_made_it_at_the_3pl(tmp_path, container, store, fakes, clock):
    order_id, payload, job = sent_order(container, store, fakes, clock)
    deliver(container, store, clock, payload, line_items=[{**payload["line_items"][0], "current_quantity": 1}])
    config = tmp_path / "connector.toml"
    config.write_text(to_toml(make_config(tmp_path / "c.db")), encoding="utf-8")
    from connector.cli import main

    runner = CliRunner()
    listed = runner.invoke(main, ["--config", str(config), "exceptions"], catch_exceptions=False).output
    assert (f"{SHOP} sb still has the old order {payload['name']}. sb order {job['provider_order_id']} "
            "(Northeast micro-warehouse (Newark, NJ)) was sent before the order changed — ZINE-04: it has 3, the "
            f"order now wants 1. Change it at sb, then mark it done. [connector forward amended {job['id']}]") in listed
    done = runner.invoke(main, ["--config", str(config), "forward", "amended", str(job["id"]), "--by", "maya"])
    assert done.exit_code == 0 and "1 line change(s)" in done.output
    assert store.open_amendments() == []
    [event] = store.events(SHOP, "forward.amended")
    assert event["detail"]["by"] == "maya"
    again = runner.invoke(main, ["--config", str(config), "forward", "amended", str(job["id"])])
    assert again.exit_code == 1
    # `connector forward` alone still hands due orders over.
    assert runner.invoke(main, ["--config", str(config), "forward"]).output.startswith("sent 0")


def test_once_amended_the_job_holds_what_the_3pl_now_has(container, store, fakes, clock):
    order_id, payload, job = sent_order(container, store, fakes, clock)
    line = payload["line_items"][0]
    reduced = deliver(container, store, clock, payload, line_items=[{**line, "current_quantity": 1}])
    assert container.forwarding.amended(store, job["id"], "maya") == 1
    assert store.lines_with_3pl(SHOP, order_id) == {str(line["id"]): LineAt3pl(job["id"], "ne-micro", "ZINE-04", 1,
                                                                              False)}
    assert [r.quantity for r in store.active_reservations(SHOP, order_id)] == [1]
    assert store.sellable(SHOP, ["ZINE-04"])[("ne-micro", "ZINE-04")] == 9
    deliver(container, store, clock, reduced, tags="vip")
    assert store.open_amendments() == [] and container.forwarding.amended(store, job["id"], "maya") == 0
    assert store.reservation_totals_drift() == []


def test_a_line_removed_and_amended_releases_what_we_held_for_it(container, store, fakes, clock):
    order_id, payload, job = sent_order(container, store, fakes, clock)
    line = payload["line_items"][0]
    deliver(container, store, clock, payload, line_items=[{**line, "current_quantity": 0}])
    assert [a["wanted"] for a in store.open_amendments()] == [0]
    container.forwarding.amended(store, job["id"], "maya")
    assert store.active_reservations(SHOP, order_id) == [] and store.lines_with_3pl(SHOP, order_id) == {}
    assert store.sellable(SHOP, ["ZINE-04"])[("ne-micro", "ZINE-04")] == 10


def test_a_change_after_the_shipment_is_a_return_not_an_amendment(container, store, fakes, clock):
    order_id, payload, job = sent_order(container, store, fakes, clock)
    line = payload["line_items"][0]
    deliver(container, store, clock, payload, line_items=[{**line, "current_quantity": 2}])
    assert len(store.open_amendments()) == 1
    fake_sb(fakes).shipments = [Shipment(job["provider_order_id"], job["reference"], "Completed", "1Z999", "UPS",
                                         shipped_at=clock())]
    container.forwarding.poll_shipments(store)
    assert store.open_amendments() == []  # it left with 3: too late to change
    deliver(container, store, clock, payload, line_items=[{**line, "current_quantity": 1}])  # a refund: a return
    assert store.open_amendments() == [] and len(store.forward_jobs(SHOP)) == 1
    assert store.active_reservations(SHOP, order_id) == []


def test_a_cancellation_while_the_job_is_being_sent_is_noted(container, store, fakes, clock):
    fake_sb(fakes).inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    order_id, payload = send_order(container, store, "ZINE-04", 3, order_id=91)
    clock.advance(minutes=1)
    [job] = store.claim_forward_jobs(clock(), 10)  # another process is sending it now...
    deliver(container, store, clock, payload, topic="orders/cancelled", cancelled_at=clock().isoformat())
    [note] = store.open_amendments(SHOP)
    assert (note["job_id"], note["sent"], note["wanted"], note["job_status"]) == (job["id"], 3, 0, "sending")
    # ...and it reached the 3PL: the note stands. Had it failed for good, the note would go.
    store.finish_forward_job(job["id"], status="sent", now=clock(), provider_order_id="SB-1",
                             sent_lines=[(str(payload["line_items"][0]["id"]), "ZINE-04", 3)])
    assert [a["job_status"] for a in store.open_amendments(SHOP)] == ["sent"]


def test_a_note_for_a_job_that_then_fails_for_good_is_closed(container, store, fakes, clock):
    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    order_id, payload = send_order(container, store, "ZINE-04", 3, order_id=92)
    clock.advance(minutes=1)
    store.claim_forward_jobs(clock(), 10)  # a process claimed it and died mid-send
    deliver(container, store, clock, payload, line_items=[{**payload["line_items"][0], "current_quantity": 1}])
    assert [a["wanted"] for a in store.open_amendments()] == [1]
    clock.advance(minutes=11)
    fake.fail_next = [ProviderRejected("422 invalid address")]
    assert container.forwarding.forward_due(store).failed == 1
    assert store.open_amendments() == []
