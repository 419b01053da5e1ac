"""Stock sync, stale nodes, order forwarding, hand-over and shipments: services
over a real SQLite file, with FakeWarehouse doubles and real adapters on
`responses` fixtures."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import responses

from adapters import shipbob
from adapters.fakes import FakeWarehouse
from adapters.http import HttpClient, StaticToken
from connector import sandbox
from connector.bootstrap import build, build_warehouse
from connector.config import settings_from_dict
from connector.domain.model import (
    InventoryRecord,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
    Shipment,
)
from tests.loopback import Fake3pl
from tests.loopback import warehouse as loopback_warehouse

FIXTURES = Path(__file__).parent.parent / "fixtures"
NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
SHOP = sandbox.SHOPIFY_SHOP
SECRET = "shp-secret"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


def make_config(db_path: Path, *, stale_policy: str = "discount", csv_path: Path | None = None,
                forward_max_attempts: int | None = None) -> dict:
    config = sandbox.demo_config(NOW, str(db_path), SECRET, "woo-secret")
    shop = config["shops"][SHOP]
    shop["providers"] = {"sb": {"type": "shipbob", "token": "pat-123", "channel_id": "100102",
                                "sku_map": {"SB-FIG": "CANDLE-FIG"}}}
    nodes = {n["id"]: n for n in shop["nodes"]}
    nodes["ne-micro"].update(stock_source="sb", provider_location="10", forward_orders=True,
                             shipping_method="Ground", shipping_methods={"nyc-metro": "Next Day"})
    nodes["west-3pl"].update(stock_source="sb", provider_location="156")
    if csv_path is not None:
        shop["providers"]["partner"] = {"type": "csv", "path": str(csv_path)}
        nodes["popup-soho"].update(stock_source="partner")
    config["sync"] = {"stale_after_minutes": 120, "stale_policy": stale_policy, "stale_discount": 0.5}
    if forward_max_attempts is not None:
        config.setdefault("scheduler", {})["forward_max_attempts"] = forward_max_attempts
    return config


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def fakes():
    return {}


@pytest.fixture
def make_container(tmp_path, clock, fakes):
    def make(**kw):
        settings = settings_from_dict(make_config(tmp_path / "c.db", **kw))

        def factory(provider_config):
            if provider_config.type == "csv":
                return build_warehouse(provider_config)
            return fakes.setdefault(provider_config.type, FakeWarehouse())

        container = build(settings, clock=clock, warehouse_factory=factory)
        container.init_database()
        return container

    return make


@pytest.fixture
def container(make_container):
    return make_container()


@pytest.fixture
def store(container):
    store = container.open_store()
    yield store
    store.close()


def fake_sb(fakes) -> FakeWarehouse:
    return fakes.setdefault("shipbob", FakeWarehouse())


def inv(location, sku, available, committed=0):
    return InventoryRecord(str(location), sku, available + committed, committed, available,
                           {"fulfillable_quantity": available})


def stock_of(store, node_id):
    return {r["sku"]: r["available"] for r in store.stock_rows(SHOP) if r["node_id"] == node_id}


def send_order(container, store, sku, quantity, zip_code="10012", province="NY", order_id=None):
    rng = random.Random(order_id or 1)
    oid = order_id or rng.randrange(10**9)
    payload = sandbox.shopify_order(rng, oid, 1000 + oid % 1000, container.clock(), lines=1)
    payload["line_items"][0].update(sku=sku, quantity=quantity, current_quantity=quantity)
    payload["shipping_address"].update(country_code="US", province_code=province, zip=zip_code)
    hook = sandbox.shopify_webhook(SECRET, payload)
    assert container.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
    container.inbox.process(store)
    return str(oid), payload


# ---------------------------------------------------------------- sync


def test_sync_replaces_each_nodes_stock_and_records_runs(container, store, fakes):
    store.set_stock(SHOP, "ne-micro", "OLD-SKU", on_hand=9, committed=0, available=9, source="sb", now=NOW)
    fake_sb(fakes).inventory = [inv(10, "CANDLE-FIG", 40, committed=2), inv(156, "CANDLE-FIG", 7),
                                inv(10, "ZINE-04", 5), inv(999, "ZINE-04", 3)]
    outcomes = container.sync.sync(store, SHOP)
    assert [(o.provider, o.ok) for o in outcomes] == [("sb", True)]
    assert outcomes[0].rows == {"ne-micro": 2, "west-3pl": 1}
    assert outcomes[0].unmapped_locations == ["999"]
    assert stock_of(store, "ne-micro") == {"CANDLE-FIG": 40, "ZINE-04": 5}  # OLD-SKU gone
    assert stock_of(store, "west-3pl") == {"CANDLE-FIG": 7}
    runs = store.sync_runs(SHOP)
    assert {(r["node_id"], r["outcome"], r["rows"]) for r in runs} == {("ne-micro", "ok", 2), ("west-3pl", "ok", 1)}


def test_a_node_missing_from_the_answer_keeps_its_stock(container, store, fakes):
    store.set_stock(SHOP, "west-3pl", "TEE-LOGO-M", on_hand=9, committed=0, available=9, source="sb", now=NOW)
    fake_sb(fakes).inventory = [inv(10, "CANDLE-FIG", 4), inv(157, "TEE-LOGO-M", 1)]  # 156 mistyped as 157?
    outcome = container.sync.sync(store, SHOP)[0]
    assert not outcome.ok and outcome.rows == {"ne-micro": 1}
    assert stock_of(store, "ne-micro") == {"CANDLE-FIG": 4}
    assert stock_of(store, "west-3pl") == {"TEE-LOGO-M": 9}
    latest = store.sync_runs(SHOP, "west-3pl", limit=1)[0]
    assert latest["outcome"] == "failed" and "location '156'" in latest["error"] and "157" in latest["error"]


def test_sku_map_translates_provider_skus(make_container, fakes, tmp_path):
    config = make_config(tmp_path / "m.db")
    config["shops"][SHOP]["providers"]["sb"]["sku_map"] = {"SB-CANDLE-FIG": "CANDLE-FIG"}
    container = build(settings_from_dict(config), clock=lambda: NOW,
                      warehouse_factory=lambda c: fakes.setdefault(c.type, FakeWarehouse()))
    container.init_database()
    fake_sb(fakes).inventory = [inv(10, "SB-CANDLE-FIG", 4)]
    store = container.open_store()
    container.sync.sync(store, SHOP)
    assert stock_of(store, "ne-micro") == {"CANDLE-FIG": 4}
    store.close()


@pytest.mark.parametrize("failure", ["error", "partial"])
def test_failed_or_partial_fetch_keeps_previous_stock_and_records_the_error(container, store, fakes, failure):
    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "CANDLE-FIG", 40), inv(10, "ZINE-04", 5), inv(156, "CANDLE-FIG", 7)]
    container.sync.sync(store, SHOP)
    fake.inventory = [inv(10, "CANDLE-FIG", 1), inv(10, "ZINE-04", 1), inv(156, "CANDLE-FIG", 1)]
    if failure == "error":
        fake.fail_next = [ProviderUnavailable("shipbob: GET /2026-01/inventory-level/locations: 503")]
    else:
        fake.fail_after_records = 2  # two records arrive, then the connection drops
    outcome = container.sync.sync(store, SHOP)[0]
    assert outcome.ok is False and "ProviderUnavailable" in outcome.error
    assert stock_of(store, "ne-micro") == {"CANDLE-FIG": 40, "ZINE-04": 5}
    assert stock_of(store, "west-3pl") == {"CANDLE-FIG": 7}
    latest = store.sync_runs(SHOP, "ne-micro", limit=1)[0]
    assert latest["outcome"] == "failed" and "ProviderUnavailable" in latest["error"]
    assert store.sync_state(SHOP)["ne-micro"]["last_error"].startswith("ProviderUnavailable")


def test_csv_feed_with_a_bad_line_changes_nothing(make_container, tmp_path):
    feed = tmp_path / "popup.csv"
    feed.write_text("sku,quantity\nCANDLE-FIG,30\nZINE-04,12\n")
    container = make_container(csv_path=feed)
    store = container.open_store()
    try:
        ok = container.sync.sync(store, SHOP, node_id="popup-soho")
        assert ok[0].ok and stock_of(store, "popup-soho") == {"CANDLE-FIG": 30, "ZINE-04": 12}
        feed.write_text("sku,quantity\nCANDLE-FIG,31\nZINE-04,twelve\n")
        bad = container.sync.sync(store, SHOP, node_id="popup-soho")[0]
        assert not bad.ok and "line 3" in bad.error
        assert stock_of(store, "popup-soho") == {"CANDLE-FIG": 30, "ZINE-04": 12}
        assert store.sync_runs(SHOP, "popup-soho", limit=1)[0]["outcome"] == "failed"
    finally:
        store.close()


@responses.activate
def test_sync_through_the_real_shipbob_adapter_survives_429_and_500(tmp_path, clock):
    sleeps = []
    client = HttpClient(base_url=shipbob.PRODUCTION_URL, auth=StaticToken(token="pat-123"), provider="shipbob",
                        sleep=sleeps.append)
    settings = settings_from_dict(make_config(tmp_path / "r.db"))
    container = build(settings, clock=clock,
                      warehouse_factory=lambda c: shipbob.ShipBobWarehouse(client=client, channel_id=c.channel_id))
    container.init_database()
    url = f"{shipbob.PRODUCTION_URL}/2026-01/inventory-level/locations"
    page1 = json.loads((FIXTURES / "shipbob/inventory_locations_page1.json").read_text())
    page2 = json.loads((FIXTURES / "shipbob/inventory_locations_page2.json").read_text())
    responses.get(url, status=429, headers={"x-retry-after": "2"})
    responses.get(url, json=page1)
    responses.get(url, status=500)
    responses.get(url, json=page2)
    store = container.open_store()
    try:
        outcome = container.sync.sync(store, SHOP)[0]
        assert outcome.ok, outcome.error
        assert 2.0 in sleeps
        ne = stock_of(store, "ne-micro")  # ShipBob location 10
        assert ne["TEE-BLK-M"] == 128 and ne["TEE-BLK-L"] == 0
        assert stock_of(store, "west-3pl")["TEE-BLK-M"] == 70  # location 156
        assert all(call.request.headers["Authorization"] == "Bearer pat-123" for call in responses.calls)
    finally:
        store.close()


@responses.activate
def test_real_adapter_malformed_json_keeps_stock(tmp_path, clock):
    client = HttpClient(base_url=shipbob.PRODUCTION_URL, auth=StaticToken(token="t"), provider="shipbob",
                        sleep=lambda s: None)
    settings = settings_from_dict(make_config(tmp_path / "j.db"))
    container = build(settings, clock=clock,
                      warehouse_factory=lambda c: shipbob.ShipBobWarehouse(client=client, channel_id="1"))
    container.init_database()
    store = container.open_store()
    try:
        store.set_stock(SHOP, "ne-micro", "CANDLE-FIG", on_hand=5, committed=0, available=5, source="sb", now=NOW)
        responses.get(f"{shipbob.PRODUCTION_URL}/2026-01/inventory-level/locations", body="{not json",
                      content_type="application/json")
        outcome = container.sync.sync(store, SHOP)[0]
        assert not outcome.ok and "ProviderResponseError" in outcome.error
        assert stock_of(store, "ne-micro") == {"CANDLE-FIG": 5}
    finally:
        store.close()


# ---------------------------------------------------------------- stale nodes and routing


def test_stale_stock_degrades_the_node_and_discounts_it(container, store, fakes, clock):
    fake_sb(fakes).inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    clock.advance(hours=3)  # older than stale_after_minutes = 120
    routing = container.inbox.routing(store, SHOP, clock())
    node = routing.network.nodes["ne-micro"]
    assert node.status.value == "degraded" and "stock data 3 h old; stock counted at 50%" in node.status_note
    assert routing.factors == {"ne-micro": 0.5, "west-3pl": 0.5}
    # 10 units, counted at 50% -> at most 5 can be promised from ne-micro.
    order_id, _ = send_order(container, store, "ZINE-04", 6, order_id=41)
    decision = store.current_decisions(SHOP, order_id)[0]
    assert decision["node_id"] != "ne-micro"
    order_id, _ = send_order(container, store, "ZINE-04", 5, order_id=42)
    decision = store.current_decisions(SHOP, order_id)[0]
    assert decision["node_id"] == "ne-micro"
    assert "node degraded (stock data 3 h old" in decision["explanation"]


def test_stale_exclude_policy_keeps_routing_away(make_container, fakes, clock):
    container = make_container(stale_policy="exclude")
    store = container.open_store()
    try:
        fake_sb(fakes).inventory = [inv(10, "ZINE-04", 10)]
        container.sync.sync(store, SHOP)
        assert container.inbox.routing(store, SHOP, clock()).network.nodes["ne-micro"].status.value == "active"
        clock.advance(hours=3)
        fake_sb(fakes).fail_next = [ProviderUnavailable("down")]
        container.sync.sync(store, SHOP)
        node = container.inbox.routing(store, SHOP, clock()).network.nodes["ne-micro"]
        assert node.status.value == "offline"
        assert "last sync failed: ProviderUnavailable: down" in node.status_note
        order_id, _ = send_order(container, store, "ZINE-04", 1, order_id=43)
        assert store.current_decisions(SHOP, order_id)[0]["node_id"] != "ne-micro"
    finally:
        store.close()


# ---------------------------------------------------------------- forwarding


def test_routed_order_is_forwarded_exactly_once(container, store, fakes, clock):
    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    order_id, payload = send_order(container, store, "ZINE-04", 2, order_id=51)
    assert store.current_decisions(SHOP, order_id)[0]["node_id"] == "ne-micro"
    jobs = store.forward_jobs(SHOP)
    assert [(j["order_id"], j["node_id"], j["status"]) for j in jobs] == [(order_id, "ne-micro", "pending")]

    report = container.forwarding.forward_due(store)
    assert report.sent == 1 and fake.create_calls == 1
    sent = fake.orders[jobs[0]["reference"]]
    assert sent.address_lines == ("92 Chestnut Street",) and sent.ship_to.postcode == "10012"
    assert [(l.sku, l.quantity) for l in sent.lines] == [("ZINE-04", 2)]
    assert sent.location_id == "10"

    # Running again, or the same order arriving updated, forwards nothing more.
    assert container.forwarding.forward_due(store).sent == 0
    updated = {**payload, "updated_at": (NOW + timedelta(minutes=1)).isoformat(), "note": "gift"}
    hook = sandbox.shopify_webhook(SECRET, updated, topic="orders/updated")
    container.inbox.ingest(store, "shopify", hook.body, hook.headers)
    container.inbox.process(store)
    assert len(store.forward_jobs(SHOP)) == 1 and fake.create_calls == 1


def test_forwarding_retries_with_backoff_then_fails_visibly(container, store, fakes, clock):
    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    send_order(container, store, "ZINE-04", 1, order_id=61)
    max_attempts = container.settings.scheduler.forward_max_attempts
    for attempt in range(1, max_attempts + 1):
        fake.fail_next = [ProviderUnavailable("503")]
        report = container.forwarding.forward_due(store)
        job = store.forward_jobs(SHOP)[0]
        assert job["attempts"] == attempt
        if attempt < max_attempts:
            assert report.retrying == 1 and job["status"] == "pending"
            assert container.forwarding.forward_due(store).sent == 0  # not due yet: backing off
            clock.advance(hours=2)
    assert job["status"] == "failed" and "503" in job["last_error"]
    assert fake.create_calls == 0
    assert store.events(SHOP, "forward.failed")


def test_a_rejected_forward_fails_at_once(container, store, fakes):
    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    send_order(container, store, "ZINE-04", 1, order_id=62)
    fake.fail_next = [ProviderRejected("422 invalid address")]
    assert container.forwarding.forward_due(store).failed == 1
    assert store.forward_jobs(SHOP)[0]["status"] == "failed"


def test_crashed_send_is_retried_without_a_duplicate(container, store, fakes, clock):
    """A claim left 'sending' by a dead process is taken again; the lookup finds the order."""
    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    send_order(container, store, "ZINE-04", 1, order_id=63)
    job = store.claim_forward_jobs(clock(), 10)[0]  # claimed...
    placed = store.active_reservations(SHOP, job["order_id"])
    fake.create_order(container.forwarding._outbound(store, job, store.order(SHOP, job["order_id"]), placed))  # ...sent, then the process died
    assert container.forwarding.forward_due(store).sent == 0  # claim still fresh
    clock.advance(minutes=11)
    assert container.forwarding.forward_due(store).sent == 1
    assert fake.create_calls == 1 and store.forward_jobs(SHOP)[0]["status"] == "sent"


class _OrdersElsewhere:
    """Stock from a FakeWarehouse, orders from a real adapter (on a loopback 3PL)."""

    def __init__(self, stock: FakeWarehouse, orders):
        self.provider, self._stock, self._orders = orders.provider, stock, orders

    def list_inventory(self):
        return self._stock.list_inventory()

    def find_order(self, reference):
        return self._orders.find_order(reference)

    def create_order(self, order):
        return self._orders.create_order(order)


@pytest.mark.parametrize("cut", ["chunk-cut", "reset", "close-delimited-json"])
@pytest.mark.parametrize("vendor", Fake3pl.VENDORS)
def test_a_create_whose_answer_is_cut_is_looked_up_and_sent_on_the_next_try(container, store, fakes, clock,
                                                                           vendor, cut):
    """Issue 15 point 12: the 3PL created the order, its answer was cut: an unknown
    outcome, retried; the retry's lookup finds the order, so it is sent, once."""
    stock = FakeWarehouse([inv(10, "ZINE-04", 10)])
    with Fake3pl(vendor, cut=cut) as tpl:
        fakes["shipbob"] = _OrdersElsewhere(stock, loopback_warehouse(vendor, tpl.url))
        container.sync.sync(store, SHOP)
        send_order(container, store, "ZINE-04", 1, order_id=71)

        first = container.forwarding.forward_due(store)
        job = store.forward_jobs(SHOP)[0]
        assert (first.retrying, first.failed, job["status"]) == (1, 0, "pending")
        assert "ProviderOutcomeUnknown" in job["last_error"] and tpl.creates == 1

        clock.advance(minutes=2)
        second = container.forwarding.forward_due(store)
    job = store.forward_jobs(SHOP)[0]
    assert second.sent == 1 and job["status"] == "sent" and tpl.creates == 1
    assert job["provider_order_id"] is not None
    assert store.events(SHOP, "forward.sent")[-1]["detail"]["created"] is False


class _CreateCutThenLookup(FakeWarehouse):
    """Creates the order, then its answer is lost; lookups answer ``lookup`` (a value or an exception)."""

    def __init__(self, lookup):
        super().__init__([inv(10, "ZINE-04", 10)])
        self.lookup = lookup

    def create_order(self, order):
        self.orders[order.reference] = order
        raise ProviderOutcomeUnknown("shipbob: POST /2026-01/order outcome unknown (ChunkedEncodingError)")

    def find_order(self, reference):
        if isinstance(self.lookup, Exception):
            raise self.lookup
        return super().find_order(reference) if self.lookup == "answers" else None


@pytest.mark.parametrize("lookup, status, counted", [
    ("answers", "sent", "sent"),
    ("absent", "failed", "failed"),
    (ProviderUnavailable("shipbob: GET /2026-01/order gave up after 5 attempts; last: HTTP 503"), "pending",
     "retrying"),
    (ProviderRejected("shipbob: GET /2026-01/order rejected with HTTP 400"), "failed", "failed"),
], ids=["found", "absent", "lookup-unavailable", "lookup-rejected"])
def test_with_its_attempts_used_up_a_job_fails_for_good_only_when_the_3pl_lacks_the_order(
        make_container, fakes, lookup, status, counted):
    fakes["shipbob"] = _CreateCutThenLookup(lookup)
    container = make_container(forward_max_attempts=1)
    store = container.open_store()
    try:
        container.sync.sync(store, SHOP)
        send_order(container, store, "ZINE-04", 1, order_id=72)
        report = container.forwarding.forward_due(store)
        job = store.forward_jobs(SHOP)[0]
    finally:
        store.close()
    assert job["status"] == status and getattr(report, counted) == 1
    if status == "pending":
        assert job["last_error"].startswith("outcome unknown") and job["reference"] in job["last_error"]


class _CreateRaisesFor(FakeWarehouse):
    def __init__(self, order_id: str, error: Exception):
        super().__init__([inv(10, "ZINE-04", 10)])
        self.order_id, self.error = order_id, error

    def create_order(self, order):
        if f":{self.order_id}:" in order.reference:
            raise self.error
        return super().create_order(order)


@pytest.mark.parametrize("error", [
    RuntimeError("adapter bug"), KeyError("id"), ValueError("shipbob: unusable order reference"),
    ProviderResponseError("shipbob: POST /2026-01/order did not return a JSON object"),
    ProviderOutcomeUnknown("shipbob: POST /2026-01/order outcome unknown"),
], ids=lambda e: type(e).__name__)
def test_one_failing_job_never_stops_its_batch_nor_stays_sending(make_container, fakes, clock, error):
    fakes["shipbob"] = _CreateRaisesFor("81", error)
    container = make_container()
    store = container.open_store()
    try:
        container.sync.sync(store, SHOP)
        for order_id in (81, 82):
            send_order(container, store, "ZINE-04", 1, order_id=order_id)
        report = container.forwarding.forward_due(store)
        jobs = {j["order_id"]: j for j in store.forward_jobs(SHOP)}
    finally:
        store.close()
    assert (report.sent, report.retrying) == (1, 1)
    assert jobs["82"]["status"] == "sent"
    assert jobs["81"]["status"] == "pending" and jobs["81"]["attempts"] == 1
    assert jobs["81"]["next_attempt_at"] > clock().isoformat()  # backing off
    assert type(error).__name__ in jobs["81"]["last_error"]
    assert report.errors == [f"{jobs['81']['reference']}: {jobs['81']['last_error']}"]


def test_cancelled_before_forwarding_cancels_the_job(container, store, fakes):
    fake_sb(fakes).inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    order_id, payload = send_order(container, store, "ZINE-04", 1, order_id=64)
    cancelled = {**payload, "cancelled_at": NOW.isoformat(), "updated_at": (NOW + timedelta(minutes=2)).isoformat()}
    hook = sandbox.shopify_webhook(SECRET, cancelled, topic="orders/cancelled")
    container.inbox.ingest(store, "shopify", hook.body, hook.headers)
    container.inbox.process(store)
    assert store.forward_jobs(SHOP)[0]["status"] == "cancelled"
    assert container.forwarding.forward_due(store).sent == 0


@pytest.mark.parametrize("zip_code, province, method", [("10012", "NY", "Next Day"), ("02139", "MA", "Ground")])
def test_forwarded_order_carries_the_nodes_method_for_its_region_and_the_providers_skus(
        container, store, fakes, zip_code, province, method):
    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "SB-FIG", 10), inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    assert stock_of(store, "ne-micro") == {"CANDLE-FIG": 10, "ZINE-04": 10}  # provider -> ours
    order_id, _ = send_order(container, store, "CANDLE-FIG", 2, zip_code=zip_code, province=province, order_id=61)
    assert store.current_decisions(SHOP, order_id)[0]["node_id"] == "ne-micro"
    assert container.forwarding.forward_due(store).sent == 1
    sent = fake.orders[store.forward_jobs(SHOP)[0]["reference"]]
    assert [(l.sku, l.quantity) for l in sent.lines] == [("SB-FIG", 2)]  # ours -> the provider's
    assert sent.shipping_method == method
    # what the job records as sent stays in our SKUs (amendments, hand-over compare with ours)
    assert [(line.sku, line.quantity) for line in store.lines_with_3pl(SHOP, order_id).values()] == [("CANDLE-FIG", 2)]


def test_sync_after_forwarding_hands_reservations_over(container, store, fakes, clock):
    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    order_id, _ = send_order(container, store, "ZINE-04", 3, order_id=71)
    assert store.sellable(SHOP, ["ZINE-04"])[("ne-micro", "ZINE-04")] == 7
    clock.advance(minutes=1)
    container.forwarding.forward_due(store)
    assert store.reserved_by_node_sku(SHOP, forwarded_only=True) == {("ne-micro", "ZINE-04"): 3}
    # The 3PL now counts the order as committed: available 7, committed 3.
    fake.inventory = [inv(10, "ZINE-04", 7, committed=3)]
    clock.advance(minutes=1)
    outcome = container.sync.sync(store, SHOP)[0]
    assert outcome.handed_over == 1
    assert store.active_reservations(SHOP, order_id) == []
    assert store.sellable(SHOP, ["ZINE-04"])[("ne-micro", "ZINE-04")] == 7  # not 4: no double count
    assert store.reservation_totals_drift() == []


def test_shipments_release_what_was_still_held(container, store, fakes, clock):
    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    order_id, _ = send_order(container, store, "ZINE-04", 2, order_id=81)
    container.forwarding.forward_due(store)
    job = store.forward_jobs(SHOP)[0]
    fake.shipments = [Shipment(job["provider_order_id"], job["reference"], "Completed", "1Z999", "UPS",
                               shipped_at=clock() + timedelta(hours=1))]
    report = container.forwarding.poll_shipments(store)
    assert report.shipments == 1 and report.released == 1
    assert store.forward_jobs(SHOP)[0]["status"] == "shipped"
    assert store.active_reservations(SHOP, order_id) == []


def test_shipment_polls_record_the_parts_fact_once_however_often_they_overlap(container, store, fakes, clock):
    from connector.shipment_store import ShipmentStore

    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "ZINE-04", 10)]
    container.sync.sync(store, SHOP)
    order_id, _ = send_order(container, store, "ZINE-04", 2, order_id=83)
    container.forwarding.forward_due(store)
    job = store.forward_jobs(SHOP)[0]
    shipped = Shipment(job["provider_order_id"], job["reference"], "Completed", "1Z999", "UPS",
                       shipped_at=clock() + timedelta(hours=1))
    fake.shipments = [shipped]
    for _ in range(2):  # the next poll's window overlaps the last: the same shipment again
        container.forwarding.poll_shipments(store)
    fact, counted = ShipmentStore(store).fact(SHOP, order_id, "ne-micro")
    assert (fact.source, fact.carrier, fact.tracking_number, fact.in_full) == ("3pl:sb", "UPS", "1Z999", True)
    assert (counted.shipped, counted.on_time) == (1, 1)
    fake.shipments = [Shipment(job["provider_order_id"], job["reference"], "Returned to sender", "1Z999", "UPS",
                               shipped_at=shipped.shipped_at, delivered_at=clock() + timedelta(days=2))]
    container.forwarding.poll_shipments(store)
    totals = store._dicts("SELECT SUM(shipped) s, SUM(delivered) d, SUM(returned) r, SUM(problems) p "
                          "FROM metric_days WHERE shop_id = ? AND node_id = 'ne-micro'", (SHOP,))[0]
    assert totals == {"s": 1, "d": 1, "r": 1, "p": 1}


def test_drift_report_compares_reservations_with_3pl_committed(container, store, fakes, clock):
    from connector.services.forwarding import drift_report

    fake = fake_sb(fakes)
    fake.inventory = [inv(10, "ZINE-04", 10, committed=1)]
    container.sync.sync(store, SHOP)
    send_order(container, store, "ZINE-04", 2, order_id=91)
    container.forwarding.forward_due(store)
    rows = {(r["node_id"], r["sku"]): r for r in drift_report(store, SHOP)}
    row = rows[("ne-micro", "ZINE-04")]
    assert (row["reserved"], row["forwarded"], row["provider_committed"], row["drift"]) == (2, 2, 1, -1)


# ---------------------------------------------------------------- faults through real adapters


def shipbob_container(tmp_path, clock, sleeps):
    client = HttpClient(base_url=shipbob.PRODUCTION_URL, auth=StaticToken(token="pat-123"), provider="shipbob",
                        sleep=sleeps.append, max_attempts=3)
    settings = settings_from_dict(make_config(tmp_path / "f.db"))
    container = build(settings, clock=clock,
                      warehouse_factory=lambda c: shipbob.ShipBobWarehouse(client=client, channel_id="1"))
    container.init_database()
    return container


@pytest.mark.parametrize("fault, error", [
    ("timeouts", "ProviderUnavailable"),
    ("same_page_forever", "ProviderResponseError"),
    ("token_refused", "ProviderAuthError"),
    ("server_errors", "ProviderUnavailable"),
])
@responses.activate
def test_sync_faults_keep_previous_stock_and_record_the_run(tmp_path, clock, fault, error):
    import requests

    sleeps: list[float] = []
    container = shipbob_container(tmp_path, clock, sleeps)
    url = f"{shipbob.PRODUCTION_URL}/2026-01/inventory-level/locations"
    page1 = json.loads((FIXTURES / "shipbob/inventory_locations_page1.json").read_text())
    if fault == "timeouts":
        for _ in range(3):
            responses.get(url, body=requests.exceptions.ReadTimeout("read timed out"))
    elif fault == "same_page_forever":
        looping = {**page1, "next": f"{url}?PageSize=250&Cursor=c1"}
        responses.get(url, json=looping)  # the first page, then the "next" page is itself again and again
    elif fault == "token_refused":
        responses.get(url, status=401, json={"message": "invalid token"})
    else:
        for _ in range(3):
            responses.get(url, status=503)
    store = container.open_store()
    try:
        store.set_stock(SHOP, "ne-micro", "CANDLE-FIG", on_hand=5, committed=0, available=5, source="sb", now=NOW)
        store.set_stock(SHOP, "west-3pl", "TEE-LOGO-M", on_hand=9, committed=0, available=9, source="sb", now=NOW)
        outcome = container.sync.sync(store, SHOP)[0]
        assert not outcome.ok and error in outcome.error
        assert stock_of(store, "ne-micro") == {"CANDLE-FIG": 5}
        assert stock_of(store, "west-3pl") == {"TEE-LOGO-M": 9}
        runs = store.sync_runs(SHOP)
        assert {(r["node_id"], r["outcome"]) for r in runs} == {("ne-micro", "failed"), ("west-3pl", "failed")}
        assert all(error in r["error"] for r in runs)
        assert len(responses.calls) <= 12  # bounded: no endless retry or pagination
    finally:
        store.close()


@responses.activate
def test_expired_shiphero_token_is_refreshed_during_a_sync(tmp_path, clock):
    from adapters.shiphero import ShipHeroWarehouse

    base = "https://public-api.shiphero.com"
    fixtures = FIXTURES / "shiphero"
    config = make_config(tmp_path / "h.db")
    shop = config["shops"][SHOP]
    shop["providers"]["hero"] = {"type": "shiphero", "refresh_token": "rt-1"}
    for node in shop["nodes"]:
        if node["id"] == "west-3pl":
            node.update(stock_source="hero", provider_location="V2FyZWhvdXNlOjExNzk=")
    settings = settings_from_dict(config)
    container = build(settings, clock=clock, warehouse_factory=lambda c: (
        ShipHeroWarehouse(c.refresh_token, sleep=lambda s: None) if c.type == "shiphero" else FakeWarehouse()))
    container.init_database()
    responses.post(f"{base}/auth/refresh", json=json.loads((fixtures / "auth_refresh.json").read_text()))
    responses.post(f"{base}/auth/refresh", json=json.loads((fixtures / "auth_refresh_second.json").read_text()))
    responses.post(f"{base}/graphql", status=401, json={"code": 401, "message": "Token expired"})
    responses.post(f"{base}/graphql", json=json.loads((fixtures / "warehouse_products_page2.json").read_text()))
    store = container.open_store()
    try:
        outcome = next(o for o in container.sync.sync(store, SHOP) if o.provider == "hero")
        assert outcome.ok, outcome.error
        assert outcome.rows["west-3pl"] >= 1
        assert store.sync_runs(SHOP, "west-3pl", limit=1)[0]["outcome"] == "ok"
        assert sum(1 for c in responses.calls if c.request.url.endswith("/auth/refresh")) == 2
    finally:
        store.close()
