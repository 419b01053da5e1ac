"""shopify.app.toml (Shopify CLI's app configuration) stays in step with the code: the
scopes the app asks for, the topics our webhook endpoint handles, the compliance topics
only the TOML can subscribe, an API version the adapters support."""
from __future__ import annotations

import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound

from adapters.shopify import TOPICS
from adapters.shopify_auth import REQUIRED_SCOPES
from adapters.shopify_install import API_TOPICS, COMPLIANCE_TOPICS
from connector.web.webhooks import bp as webhooks_blueprint

APP_TOML = Path(__file__).resolve().parents[2] / "shopify.app.toml"


@pytest.fixture(scope="module")
def app_config() -> dict:
    return tomllib.loads(APP_TOML.read_text(encoding="utf-8"))


def test_an_embedded_app_with_the_top_level_keys_shopify_cli_requires(app_config):
    for key in ("client_id", "name", "application_url", "embedded"):
        assert app_config.get(key) not in (None, ""), key
    assert app_config["embedded"] is True
    assert urlsplit(app_config["application_url"]).scheme == "https"
    assert all(urlsplit(url).scheme == "https" for url in app_config["auth"]["redirect_urls"])


def test_scopes_are_the_ones_the_code_asks_for(app_config):
    scopes = app_config["access_scopes"]["scopes"].split(",")
    assert scopes == list(REQUIRED_SCOPES)
    assert app_config["access_scopes"].get("use_legacy_install_flow") is False  # managed installation


def test_webhook_api_version_is_2026_04_or_later(app_config):
    version = app_config["webhooks"]["api_version"]
    assert len(version) == 7 and version[4] == "-" and version >= "2026-04"


def test_topics_are_exactly_what_the_webhook_endpoint_handles(app_config):
    subscriptions = app_config["webhooks"]["subscriptions"]
    topics = [t for s in subscriptions for t in s.get("topics", [])]
    compliance = [t for s in subscriptions for t in s.get("compliance_topics", [])]
    assert len(topics) == len(set(topics)) and len(compliance) == len(set(compliance))
    assert set(compliance) == COMPLIANCE_TOPICS == {"customers/data_request", "customers/redact", "shop/redact"}
    assert set(topics) == set(API_TOPICS)
    assert set(topics) | set(compliance) == TOPICS
    assert {"orders/create", "orders/updated", "orders/cancelled", "refunds/create", "app/uninstalled"} <= set(topics)


def test_every_subscription_points_to_the_shopify_webhook_route(app_config):
    app = Flask(__name__)
    app.register_blueprint(webhooks_blueprint)
    routes = app.url_map.bind("connector.example.com")
    application_host = urlsplit(app_config["application_url"]).netloc
    for subscription in app_config["webhooks"]["subscriptions"]:
        uri = urlsplit(subscription["uri"])
        assert (uri.scheme, uri.netloc) == ("https", application_host)
        endpoint, _ = routes.match(uri.path, method="POST")
        assert endpoint == "webhooks.shopify"


def test_the_route_check_can_fail():
    app = Flask(__name__)
    app.register_blueprint(webhooks_blueprint)
    routes = app.url_map.bind("connector.example.com")
    with pytest.raises(NotFound):
        routes.match("/webhooks", method="POST")
    with pytest.raises(MethodNotAllowed):
        routes.match("/webhooks/shopify", method="GET")


def test_subscribed_order_topics_have_their_scope(app_config):
    scopes = set(app_config["access_scopes"]["scopes"].split(","))
    topics = {t for s in app_config["webhooks"]["subscriptions"] for t in s.get("topics", [])}
    if any(t.startswith(("orders/", "refunds/", "fulfillments/")) for t in topics):
        assert "read_orders" in scopes or "write_orders" in scopes
