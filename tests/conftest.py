"""Shared fixtures (flaskr style): a fixed clock, the sandbox network in a fresh
SQLite database under tmp_path, the Flask app and test client, a CLI runner with
a TOML config file, and helpers to sign and post webhook deliveries."""
from __future__ import annotations

import json
import os
import re
import uuid
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

import pytest
import responses
from click.testing import CliRunner

from connector import sandbox
from connector.bootstrap import build
from connector.config import settings_from_dict
from connector.secrets import KEYS_ENV, new_key
from connector.web import create_app

FIXTURES = Path(__file__).resolve().parent / "fixtures"

SHOPIFY_SECRET = "shpss_test_0123456789abcdef"
WOO_SECRET = "wc_test_secret_fedcba9876543210"
# The Shopify app (session tokens, token exchange, installs): tests/integration/test_shopify_app.py.
APP_CLIENT_ID = "a61950a2cbd5f32876b0b55587ec7a27"
APP_SECRET = "shpss_app_0123456789abcdef0123456789"
PUBLIC_URL = "https://connector.example.com"
SHOPIFY_SHOP = sandbox.SHOPIFY_SHOP
SHOPIFY_DOMAIN = sandbox.SHOPIFY_DOMAIN
WOO_SHOP = sandbox.WOO_SHOP
WOO_URL = sandbox.WOO_URL

START = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)  # 10:00 in New York, before every cutoff


def fixture_bytes(platform: str, name: str) -> bytes:
    return (FIXTURES / platform / name).read_bytes()


def fixture_json(platform: str, name: str) -> Any:
    return json.loads(fixture_bytes(platform, name))


# ---------------------------------------------------------------- clock


class FixedClock:
    """A callable returning a fixed aware UTC datetime; ``advance`` moves it on."""

    def __init__(self, now: datetime):
        assert now.tzinfo is not None
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch):
    """No CONNECTOR_* variable from the developer's shell may change a test."""
    import os

    for name in list(os.environ):
        if name.startswith("CONNECTOR_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


# ---------------------------------------------------------------- settings, container, store


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "t.db"


@pytest.fixture
def config_dict(clock, db_path) -> dict:
    return sandbox.demo_config(clock(), str(db_path), SHOPIFY_SECRET, WOO_SECRET)


def with_shopify_app(config: dict) -> dict:
    """``config`` set up as the Shopify app (client id and secret, public URL)."""
    config["shopify"] = {"client_id": APP_CLIENT_ID, "client_secret": APP_SECRET}
    config["web"]["public_url"] = PUBLIC_URL
    return config


@pytest.fixture
def settings(config_dict):
    return settings_from_dict(config_dict)


def initialised(container, clock):
    """``container`` with its database created and the sandbox stock seeded."""
    container.init_database()
    store = container.open_store()
    try:
        sandbox.seed_stock(store, clock(), source="test")
    finally:
        store.close()
    return container


@pytest.fixture
def container(settings, clock):
    return initialised(build(settings, clock=clock), clock)


@pytest.fixture
def store(container):
    store = container.open_store()
    yield store
    store.close()


@pytest.fixture
def app(container):
    app = create_app(container, start_worker=False)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


# ---------------------------------------------------------------- CLI


def to_toml(data: Mapping[str, Any]) -> str:
    """A minimal TOML writer for the config dicts used here: nested dicts become
    tables, lists of dicts arrays of inline tables."""
    out: list[str] = []

    def key(k: str) -> str:
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, (date, time)):
            return v.isoformat()
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(i) for i in v) + "]"
        if isinstance(v, Mapping):
            return "{" + ", ".join(f"{key(str(k))} = {value(i)}" for k, i in v.items() if i is not None) + "}"
        raise TypeError(f"cannot write {type(v).__name__} as TOML")

    def table(path: list[str], d: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, Mapping) and v is not None}
        tables = {k: v for k, v in d.items() if isinstance(v, Mapping)}
        if path and (scalars or not tables):
            out.append("[" + ".".join(key(p) for p in path) + "]")
        for k, v in scalars.items():
            out.append(f"{key(str(k))} = {value(v)}")
        if scalars:
            out.append("")
        for k, v in tables.items():
            table(path + [str(k)], v)

    table([], data)
    return "\n".join(out) + "\n"


@pytest.fixture
def config_file(tmp_path, config_dict) -> Path:
    path = tmp_path / "connector.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner, config_file, container):
    """Invoke ``connector --config <tmp config> ...`` against the test database
    (initialised and stocked by ``container``)."""
    from connector.cli import main

    def invoke(*args: str, **kwargs):
        return runner.invoke(main, ["--config", str(config_file), *args], catch_exceptions=False, **kwargs)

    return invoke


# ---------------------------------------------------------------- deliveries


def shopify_headers(body: bytes, topic: str = "orders/create", *, secret: str = SHOPIFY_SECRET,
                    domain: str = SHOPIFY_DOMAIN, webhook_id: str | None = None) -> dict:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sandbox.sign(secret, body),
        "X-Shopify-Shop-Domain": domain,
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": START.isoformat(),
    }


def woo_body(payload: Mapping) -> bytes:
    """As WooCommerce sends it: PHP json_encode, slashes escaped."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def woo_headers(body: bytes, topic: str = "order.created", *, secret: str = WOO_SECRET, source: str = WOO_URL + "/",
                delivery_id: str | None = None) -> dict:
    resource, event = topic.split(".")
    return {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.0 Hookshot (WordPress/6.7)",
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": sandbox.sign(secret, body),
        "X-WC-Webhook-ID": "3",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
    }


@pytest.fixture
def post_shopify(client):
    """post_shopify(payload_or_bytes, topic=..., **header options) -> response."""

    def post(payload, topic: str = "orders/create", *, headers: Mapping | None = None, **options):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        all_headers = {**shopify_headers(body, topic, **options), **(headers or {})}
        return client.post("/webhooks/shopify", data=body, headers=all_headers)

    return post


@pytest.fixture
def post_woo(client):
    def post(payload, topic: str = "order.created", *, headers: Mapping | None = None, **options):
        body = payload if isinstance(payload, bytes) else woo_body(payload)
        all_headers = {**woo_headers(body, topic, **options), **(headers or {})}
        return client.post("/webhooks/woocommerce", data=body, headers=all_headers)

    return post


@pytest.fixture
def rsps():
    """`responses` for one test; requests nobody registered fail the call, unused ones are fine."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock



# Every command needs a key for the secrets stored in the database: one generated for the
# session, in the environment from the start (module-scoped fixtures build containers too,
# and subprocesses inherit it), and again in each test after _hermetic_env.
TEST_ENCRYPTION_KEY = new_key()
os.environ[KEYS_ENV] = TEST_ENCRYPTION_KEY


@pytest.fixture(autouse=True)
def _encryption_key(_hermetic_env, monkeypatch):
    monkeypatch.setenv(KEYS_ENV, TEST_ENCRYPTION_KEY)
