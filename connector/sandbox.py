"""Sandbox data: an example creator network and realistic sample webhooks.

Used by ``connector demo``, the benchmarks and the tests; never by the
product's real code paths. Payload shapes follow the platforms' documented
examples (shared/reference: Shopify REST Order §3.1, WooCommerce order §2).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator

from connector.inventory_store import InventoryStore

SHOPIFY_SHOP = "aurora-candles"
SHOPIFY_DOMAIN = "aurora-candles.myshopify.com"
WOO_SHOP = "fernleaf-botanics"
WOO_URL = "https://fernleaf.example"
DEMO_API_KEY = "demo-widget-key"  # the sandbox shop's key for GET /api/availability


def demo_config(now: datetime, database_path: str, shopify_secret: str, woo_secret: str,
                garage_feed: str | None = None) -> dict:
    """Two creator stores: a Shopify candle and skincare brand shipping across North
    America from five nodes (one cold room, one pop-up), and a WooCommerce botanics
    shop in the UK and EU run from a hub, a 3PL and the creator's garage.
    ``garage_feed``: a CSV file the garage's counts are synced from (else typed in)."""
    popup_from = (now - timedelta(days=1)).replace(microsecond=0)
    popup_until = (now + timedelta(days=14)).replace(microsecond=0)
    config = {
        "database": {"path": database_path},
        # Its own session key: the demo and the tests sign their pages' cookies with it.
        "web": {"process_inbox": True, "secret_key": secrets.token_urlsafe(32)},
        "shops": {
            SHOPIFY_SHOP: {
                "platform": "shopify",
                "shop_domain": SHOPIFY_DOMAIN,
                "webhook_secret": shopify_secret,
                "timezone": "America/New_York",
                "default_region": "us-rest",
                "regions": [
                    {"id": "nyc-metro", "name": "New York City metro", "promise_days": 1,
                     "postal_prefixes": ["US:100", "US:101", "US:102", "US:104", "US:112"], "fallback": "us-northeast"},
                    {"id": "us-northeast", "name": "US Northeast", "promise_days": 2,
                     "provinces": ["US-NY", "US-NJ", "US-PA", "US-MA", "US-CT", "US-RI", "US-VT", "US-NH", "US-ME"],
                     "fallback": "us-rest"},
                    {"id": "us-west", "name": "US West Coast", "promise_days": 3,
                     "provinces": ["US-CA", "US-OR", "US-WA", "US-NV", "US-AZ"], "fallback": "us-rest"},
                    {"id": "us-rest", "name": "Rest of the US", "promise_days": 5, "countries": ["US"]},
                    {"id": "canada", "name": "Canada", "promise_days": 7, "countries": ["CA"], "fallback": "us-rest"},
                ],
                "nodes": [
                    {"id": "central", "name": "Central warehouse (Columbus, OH)", "kind": "central_warehouse",
                     "role": "evergreen", "capabilities": ["fragile"], "cutoff": "15:00", "daily_capacity": 2000,
                     "priority": 50,
                     "lanes": [{"region": "us-northeast", "transit_days": 2, "cost_per_order": 8.4},
                               {"region": "nyc-metro", "transit_days": 2, "cost_per_order": 8.9},
                               {"region": "us-west", "transit_days": 4, "cost_per_order": 11.2},
                               {"region": "us-rest", "transit_days": 3, "cost_per_order": 7.9},
                               {"region": "canada", "transit_days": 6, "cost_per_order": 16.5}]},
                    {"id": "ne-micro", "name": "Northeast micro-warehouse (Newark, NJ)", "kind": "micro_warehouse",
                     "role": "regional_replenishment", "capabilities": ["fragile"], "cutoff": "14:00",
                     "daily_capacity": 400, "backups": ["central"], "priority": 20,
                     "lanes": [{"region": "nyc-metro", "transit_days": 1, "cost_per_order": 6.1},
                               {"region": "us-northeast", "transit_days": 1, "cost_per_order": 6.8}]},
                    {"id": "west-3pl", "name": "West Coast 3PL (Reno, NV)", "kind": "3pl", "role": "evergreen",
                     "capabilities": ["fragile", "oversized"], "cutoff": "13:00", "daily_capacity": 800,
                     "backups": ["central"], "priority": 30,
                     "lanes": [{"region": "us-west", "transit_days": 2, "cost_per_order": 7.2},
                               {"region": "us-rest", "transit_days": 4, "cost_per_order": 9.6}]},
                    {"id": "cold-room", "name": "Cold storage partner (Brooklyn, NY)", "kind": "cold_storage",
                     "role": "evergreen", "capabilities": ["cold_chain"], "cutoff": "12:00", "daily_capacity": 150,
                     "priority": 40,
                     "lanes": [{"region": "nyc-metro", "transit_days": 1, "cost_per_order": 11.0},
                               {"region": "us-northeast", "transit_days": 2, "cost_per_order": 13.5}]},
                    {"id": "popup-soho", "name": "Holiday pop-up (SoHo, NYC)", "kind": "popup",
                     "role": "launch_buffer", "capabilities": ["pickup", "fragile"], "daily_capacity": 120,
                     "active_from": popup_from, "active_until": popup_until, "backups": ["ne-micro"],
                     "priority": 10,
                     "lanes": [{"region": "nyc-metro", "transit_days": 0, "cost_per_order": 4.5}]},
                ],
                "skus": [
                    {"pattern": "CANDLE-*", "handling": ["fragile"], "tier": "A"},
                    {"pattern": "SERUM-*", "handling": ["cold_chain"], "max_transit_days": 2, "tier": "B"},
                    {"pattern": "MIRROR-XL", "handling": ["oversized", "fragile"], "tier": "C"},
                ],
                "planning": {"hub": "central", "lead_time_days": 7, "supplier_lead_time_days": 28,
                             "safety_days": 2, "horizon_weeks": 2, "lost_sale_cost": 25.0},
                "rebalance": {
                    "min_transfer_units": 6, "launch_lock_at": now + timedelta(days=3), "approval_units_over": 300,
                    "emergency_cover_days": 1.5,
                    "lanes": [{"from_node": "central", "to_node": "ne-micro", "cost_per_unit": 0.45, "lead_days": 1},
                              {"from_node": "central", "to_node": "west-3pl", "cost_per_unit": 0.9, "lead_days": 3},
                              {"from_node": "central", "to_node": "popup-soho", "cost_per_unit": 0.8, "lead_days": 1},
                              {"from_node": "ne-micro", "to_node": "popup-soho", "cost_per_unit": 0.35,
                               "lead_days": 1}],
                },
                "storefront": {"api_key": DEMO_API_KEY},
                "routing": {
                    "mode": "normal",
                    "modes": {
                        "normal": {"rules": ["single_shipment", "fastest", "priority", "cheapest", "most_stock"]},
                        "peak": {"rules": ["fastest", "single_shipment", "most_stock", "cheapest"]},
                        "disruption": {"rules": ["single_shipment", "cheapest"],
                                       "restrict": [{"regions": ["us-west", "us-rest"], "nodes": ["central"]}]},
                    },
                },
            },
            WOO_SHOP: {
                "platform": "woocommerce",
                "store_url": WOO_URL,
                "webhook_secret": woo_secret,
                "timezone": "Europe/London",
                "regions": [
                    {"id": "uk", "name": "United Kingdom", "promise_days": 2, "countries": ["GB"], "fallback": "eu"},
                    {"id": "eu", "name": "European Union", "promise_days": 5,
                     "countries": ["DE", "FR", "NL", "BE", "IE", "ES", "IT", "AT", "DK", "SE"]},
                ],
                "nodes": [
                    {"id": "uk-hub", "name": "UK hub (Leeds)", "kind": "regional_hub", "role": "evergreen",
                     "capabilities": ["fragile"], "cutoff": "16:00", "daily_capacity": 300, "backups": ["garage"],
                     "lanes": [{"region": "uk", "transit_days": 1, "cost_per_order": 4.1},
                               {"region": "eu", "transit_days": 4, "cost_per_order": 12.0}]},
                    {"id": "eu-3pl", "name": "EU 3PL (Venlo, NL)", "kind": "3pl", "role": "evergreen",
                     "capabilities": ["fragile"], "daily_capacity": 500,
                     "lanes": [{"region": "eu", "transit_days": 2, "cost_per_order": 6.3}]},
                    {"id": "garage", "name": "The creator's garage (Bristol)", "kind": "garage", "role": "backup",
                     "daily_capacity": 25, "priority": 200,
                     "lanes": [{"region": "uk", "transit_days": 2, "cost_per_order": 5.5}]},
                ],
                "skus": [{"pattern": "TERRARIUM-*", "handling": ["fragile"]}],
                **({"providers": {"garage-sheet": {"type": "csv", "path": garage_feed}}} if garage_feed else {}),
            },
        },
    }
    if garage_feed:
        garage = next(n for n in config["shops"][WOO_SHOP]["nodes"] if n["id"] == "garage")
        garage["stock_source"] = "garage-sheet"
    return config


# SKU -> stock per node at the start of the demo.
DEMO_STOCK = {
    SHOPIFY_SHOP: {
        "central": {"CANDLE-FIG": 400, "CANDLE-CEDAR": 350, "TEE-LOGO-M": 500, "TEE-LOGO-L": 420, "PRINT-A3": 300,
                    "ZINE-04": 600},
        "ne-micro": {"CANDLE-FIG": 60, "CANDLE-CEDAR": 40, "TEE-LOGO-M": 80, "ZINE-04": 120},
        "west-3pl": {"CANDLE-FIG": 120, "TEE-LOGO-M": 150, "TEE-LOGO-L": 90, "PRINT-A3": 80, "MIRROR-XL": 12},
        "cold-room": {"SERUM-ROSE": 90, "SERUM-NEROLI": 25},
        "popup-soho": {"CANDLE-FIG": 30, "ZINE-04": 50},
    },
    WOO_SHOP: {
        "uk-hub": {"TERRARIUM-S": 80, "SEEDS-MIX": 400, "POT-CLAY": 150},
        "eu-3pl": {"TERRARIUM-S": 40, "SEEDS-MIX": 300},
        "garage": {"TERRARIUM-S": 10, "POT-CLAY": 30},
    },
}

SHOPIFY_CATALOG = [
    ("CANDLE-FIG", "Fig & Smoke candle", "34.00", 420),
    ("CANDLE-CEDAR", "Cedar Hour candle", "34.00", 420),
    ("TEE-LOGO-M", "Logo tee - M", "28.00", 210),
    ("TEE-LOGO-L", "Logo tee - L", "28.00", 230),
    ("PRINT-A3", "Studio print A3", "22.00", 150),
    ("ZINE-04", "Zine issue 04", "12.00", 120),
    ("SERUM-ROSE", "Rose face serum (keep cool)", "48.00", 90),
    ("SERUM-NEROLI", "Neroli serum (keep cool)", "52.00", 90),
    ("MIRROR-XL", "Floor mirror XL", "260.00", 18000),
]

# (country, province code, city, zip) weighted toward the Northeast, as creators' demand often is.
SHOPIFY_DESTINATIONS = [
    ("US", "NY", "New York", "10012", 18), ("US", "NY", "Brooklyn", "11211", 10), ("US", "NJ", "Hoboken", "07030", 8),
    ("US", "MA", "Boston", "02118", 8), ("US", "PA", "Philadelphia", "19103", 6), ("US", "CA", "Los Angeles", "90026", 12),
    ("US", "WA", "Seattle", "98122", 6), ("US", "OR", "Portland", "97214", 4), ("US", "TX", "Austin", "78704", 8),
    ("US", "IL", "Chicago", "60622", 7), ("US", "FL", "Miami", "33130", 5), ("CA", "ON", "Toronto", "M5V 2T6", 5),
    ("CA", "BC", "Vancouver", "V6B 1A1", 3),
]

WOO_CATALOG = [("TERRARIUM-S", "Small terrarium", "39.00"), ("SEEDS-MIX", "Wildflower seed mix", "6.50"),
               ("POT-CLAY", "Clay pot", "14.00"), ("", "Gift card", "25.00")]
WOO_DESTINATIONS = [("GB", "", "London", "E1 6AN", 30), ("GB", "", "Bristol", "BS1 4DJ", 10),
                    ("DE", "BE", "Berlin", "10115", 12), ("FR", "", "Paris", "75011", 10),
                    ("NL", "", "Amsterdam", "1012 AB", 8), ("US", "NY", "New York", "10001", 2)]


def seed_stock(store, now: datetime, *, shops=None, multiplier: int = 1, source: str = "sandbox") -> None:
    """Put DEMO_STOCK (times ``multiplier``) into ``store`` as counts, in one transaction.
    With ``shops`` (a ShopDirectory), nodes whose stock is synced from a provider or feed are left to it."""
    with store.write():
        for shop_id, nodes in DEMO_STOCK.items():
            sources = shops.require(shop_id).sources if shops is not None else {}
            for node_id, skus in nodes.items():
                if node_id in sources and sources[node_id].provider:
                    continue
                for sku, qty in skus.items():
                    store.set_stock(shop_id, node_id, sku, on_hand=qty * multiplier, committed=0,
                                    available=qty * multiplier, source=source, now=now)
                InventoryStore(store).stock_changed(shop_id, [node_id])


def garage_csv() -> str:
    """The creator's own count sheet for the garage, as the CSV feed reads it."""
    rows = DEMO_STOCK[WOO_SHOP]["garage"]
    return "sku,quantity\n" + "".join(f"{sku},{qty}\n" for sku, qty in rows.items())


def sign(secret: str, raw_body: bytes) -> str:
    """Base64 HMAC-SHA256 of the raw body: the scheme both Shopify and WooCommerce use."""
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class SampleWebhook:
    platform: str
    headers: dict
    body: bytes
    order_id: str

    @property
    def path(self) -> str:
        return f"/webhooks/{self.platform}"


def shopify_order(rng: random.Random, order_id: int, number: int, now: datetime, lines: int | None = None) -> dict:
    """An orders/create body in the shape of Shopify's REST Order resource."""
    country, province, city, zip_code = _pick(rng, SHOPIFY_DESTINATIONS)
    count = lines or rng.choices([1, 2, 3, 4], weights=[50, 30, 15, 5])[0]
    items = rng.sample(SHOPIFY_CATALOG, count)
    created = now.astimezone(timezone(timedelta(hours=-5))).replace(microsecond=0).isoformat()
    line_items = []
    for i, (sku, title, price, grams) in enumerate(items):
        line_id = order_id * 10 + i
        quantity = rng.choices([1, 2, 3], weights=[75, 20, 5])[0]
        line_items.append({
            "id": line_id, "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}", "variant_id": 39072856 + i,
            "product_id": 632910392 + i, "sku": sku, "title": title, "variant_title": None, "name": title,
            "quantity": quantity, "current_quantity": quantity, "fulfillable_quantity": quantity,
            "fulfillment_service": "manual", "fulfillment_status": None, "requires_shipping": True, "grams": grams,
            "price": price, "total_discount": "0.00", "taxable": True, "gift_card": False,
            "variant_inventory_management": "shopify", "vendor": "Aurora Candles", "properties": [],
            "tax_lines": [{"title": "State tax", "price": "2.72", "rate": 0.08}],
            "price_set": {"shop_money": {"amount": price, "currency_code": "USD"},
                          "presentment_money": {"amount": price, "currency_code": "USD"}},
        })
    address = {"first_name": "Sam", "last_name": "Rivera", "name": "Sam Rivera", "address1": "92 Chestnut Street",
               "address2": "", "city": city, "zip": zip_code, "province": province, "province_code": province,
               "country": "United States" if country == "US" else "Canada", "country_code": country,
               "phone": "+1 555-0100", "company": None, "latitude": 40.72, "longitude": -73.99}
    total = f"{sum(float(i['price']) * i['quantity'] for i in line_items):.2f}"
    return {
        "id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}", "name": f"#{number}",
        "order_number": number, "number": number - 1000, "email": "sam@example.com", "created_at": created,
        "updated_at": created, "processed_at": created, "cancelled_at": None, "cancel_reason": None,
        "closed_at": None, "financial_status": "paid", "fulfillment_status": None, "currency": "USD",
        "total_price": total, "subtotal_price": total, "total_tax": "2.72", "test": False, "tags": "",
        "location_id": None, "source_name": "web", "confirmed": True, "token": uuid.UUID(int=rng.getrandbits(128)).hex,
        "customer": {"id": 115310627314723954 + rng.randrange(1000), "email": "sam@example.com",
                     "first_name": "Sam", "last_name": "Rivera", "state": "enabled", "verified_email": True},
        "billing_address": address, "shipping_address": address, "line_items": line_items,
        "shipping_lines": [{"id": order_id + 7, "code": "Standard", "title": "Standard", "source": "shopify",
                            "price": "6.00", "discounted_price": "6.00"}],
        "discount_applications": [], "discount_codes": [], "note": None, "note_attributes": [],
        "tax_lines": [{"title": "State tax", "price": "2.72", "rate": 0.08}], "refunds": [], "fulfillments": [],
    }


def woo_order(rng: random.Random, order_id: int, now: datetime) -> dict:
    """An order.created body in the shape of the WooCommerce REST v3 order."""
    country, state, city, postcode = _pick(rng, WOO_DESTINATIONS)
    stamp = now.astimezone(timezone.utc).replace(microsecond=0, tzinfo=None).isoformat()
    items = rng.sample(WOO_CATALOG, rng.choice([1, 1, 2]))
    line_items = [
        {"id": order_id * 10 + i, "name": name, "product_id": 90 + i, "variation_id": 0,
         "quantity": rng.choice([1, 1, 2]), "tax_class": "", "subtotal": price, "subtotal_tax": "0.00",
         "total": price, "total_tax": "0.00", "taxes": [], "meta_data": [], "sku": sku, "price": float(price)}
        for i, (sku, name, price) in enumerate(items)
    ]
    address = {"first_name": "Alex", "last_name": "Moss", "company": "", "address_1": "12 Mill Lane", "address_2": "",
               "city": city, "state": state, "postcode": postcode, "country": country}
    return {
        "id": order_id, "parent_id": 0, "number": str(order_id), "order_key": f"wc_order_{order_id:x}",
        "created_via": "checkout", "version": "9.4.0", "status": "processing", "currency": "GBP",
        "date_created": stamp, "date_created_gmt": stamp, "date_modified": stamp, "date_modified_gmt": stamp,
        "shipping_total": "4.00", "total": "43.00", "customer_id": 0, "customer_note": "",
        "billing": {**address, "email": "alex@example.com", "phone": "07700 900123"}, "shipping": address,
        "payment_method": "stripe", "date_paid": stamp, "date_paid_gmt": stamp, "line_items": line_items,
        "shipping_lines": [{"id": order_id * 10 + 9, "method_title": "Flat Rate", "method_id": "flat_rate",
                            "total": "4.00", "total_tax": "0.00", "taxes": [], "meta_data": []}],
        "fee_lines": [], "coupon_lines": [], "refunds": [],
    }


def shopify_webhook(secret: str, payload: dict, topic: str = "orders/create", domain: str = SHOPIFY_DOMAIN,
                    webhook_id: str | None = None) -> SampleWebhook:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(secret, body),
        "X-Shopify-Shop-Domain": domain,
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": datetime.now(timezone.utc).isoformat(),
    }
    return SampleWebhook("shopify", headers, body, str(payload.get("id", "")))


def woo_webhook(secret: str, payload: dict, topic: str = "order.created", source: str = WOO_URL) -> SampleWebhook:
    # WooCommerce sends PHP's json_encode output; escaped slashes keep the bytes faithful.
    body = json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()
    resource, event = topic.split(".")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.0 Hookshot (WordPress/6.7)",
        "X-WC-Webhook-Source": source.rstrip("/") + "/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": sign(secret, body),
        "X-WC-Webhook-ID": "3",
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
    }
    return SampleWebhook("woocommerce", headers, body, str(payload.get("id", "")))


def demo_burst(count: int, now: datetime, shopify_secret: str, woo_secret: str, seed: int = 7) -> Iterator[SampleWebhook]:
    """``count`` deliveries: mostly new orders from both shops, plus the things real
    traffic has: redeliveries, a tampered body, cancellations."""
    rng = random.Random(seed)
    sent: list[SampleWebhook] = []
    shopify_orders: list[dict] = []
    for i in range(count):
        roll = rng.random()
        if sent and roll < 0.03:  # a redelivery of something already sent
            yield rng.choice(sent)
        elif roll < 0.04:  # a forged delivery: the body changed after signing
            hook = shopify_webhook(shopify_secret, shopify_order(rng, 9_000_000 + i, 90_000 + i, now))
            forged = hook.body.replace(b'"financial_status": "paid"', b'"financial_status": "voided"')
            yield SampleWebhook(hook.platform, hook.headers, forged, hook.order_id)
        elif shopify_orders and roll < 0.06:  # a customer cancels
            order = shopify_orders.pop(rng.randrange(len(shopify_orders)))
            cancelled = {**order, "cancelled_at": now.isoformat(), "cancel_reason": "customer",
                         "updated_at": (now + timedelta(minutes=5)).isoformat()}
            yield shopify_webhook(shopify_secret, cancelled, topic="orders/cancelled")
        elif roll < 0.80:
            order = shopify_order(rng, 820_982_911_946_154_508 + i, 1001 + i, now)
            shopify_orders.append(order)
            hook = shopify_webhook(shopify_secret, order)
            sent.append(hook)
            yield hook
        else:
            hook = woo_webhook(woo_secret, woo_order(rng, 700 + i, now))
            sent.append(hook)
            yield hook


def _pick(rng: random.Random, weighted: list[tuple]) -> tuple:
    choice = rng.choices(weighted, weights=[w[-1] for w in weighted])[0]
    return choice[:-1]
