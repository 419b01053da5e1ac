"""No credential an adapter holds ever leaves it in an error (issue 15, point 21).

Every adapter that takes a credential is pointed at a server that echoes the whole
request (method, URL with its query, every header, the body) into its answer: as an
HTTP error body (400, 401, 403, 503), as a 200 that is not what the adapter expects,
and, for GraphQL APIs, as a 200 whose ``errors[].message`` carries the echo. For
adapters that first trade their credential for an access token the echo comes once
from the token endpoint and once from the data endpoint (with the access token, a
credential too, in the echoed headers). The secrets contain ``+ / =`` so that their
raw, URL-encoded and JSON-escaped forms differ.
"""
from __future__ import annotations

import base64
import functools
import json
import logging
import re
import sqlite3
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote, quote_plus

import pytest
import responses
from click.testing import CliRunner

import connector.cli
from adapters.csv_feed import CsvFeedWarehouse
from adapters.extensiv import ExtensivWarehouse
from adapters.shipbob import ShipBobWarehouse
from adapters.shiphero import ShipHeroWarehouse
from adapters.shipmonk import ShipMonkWarehouse
from adapters.shopify_auth import ShopifyOAuth
from adapters.shopify_install import ShopifyInstall
from adapters.shopify_inventory import ShopifyInventory
from adapters.woocommerce_orders import WooCommerceOrders
from adapters.woocommerce_stock import WooCommerceStock
from connector import sandbox
from connector.bootstrap import build
from connector.cli import main
from connector.domain.model import ProviderError
from tests.conftest import to_toml

ACCESS_TOKEN = "at_Acc3ss+T0ken/issued=="  # what a token endpoint hands out


def secret(name: str) -> str:
    return f"{name}_S3cr+t/v4lue=="


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def forms(value: str) -> set[str]:
    """The ways a credential can appear in an echoed request (or a message quoting it lower-cased)."""
    found = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    return found | {form.lower() for form in found}


@dataclass
class Case:
    name: str
    build: Callable[[], object]
    call: Callable[[object], object]
    secrets: tuple[str, ...]
    host: str
    token_path: str | None = None  # the request that trades the credential for an access token
    graphql: bool = False


def _no_sleep(_seconds: float) -> None:
    return None


CASES = [
    Case("shipbob", lambda: ShipBobWarehouse(secret("shipbob-pat"), "100102", base_url="https://api.shipbob.test"),
         lambda w: list(w.list_inventory()), (secret("shipbob-pat"),), "api.shipbob.test"),
    Case("shipmonk", lambda: ShipMonkWarehouse(secret("shipmonk-key"), 1, base_url="https://api.shipmonk.test"),
         lambda w: list(w.list_inventory()), (secret("shipmonk-key"),), "api.shipmonk.test"),
    Case("shiphero", lambda: ShipHeroWarehouse(secret("shiphero-refresh"), base_url="https://api.shiphero.test",
                                               sleep=_no_sleep),
         lambda w: w.list_inventory(), (secret("shiphero-refresh"), ACCESS_TOKEN), "api.shiphero.test",
         token_path="/auth/refresh", graphql=True),
    Case("extensiv", lambda: ExtensivWarehouse(secret("ext-id"), secret("ext-secret"), tpl=secret("ext-tpl"),
                                               user_login_id="7", customer_id=12, base_url="https://wms.extensiv.test",
                                               sleep=_no_sleep),
         lambda w: w.list_inventory(),
         (secret("ext-id"), secret("ext-secret"), secret("ext-tpl"), basic(secret("ext-id"), secret("ext-secret")),
          ACCESS_TOKEN),
         "wms.extensiv.test", token_path="/AuthServer/api/Token"),
    Case("csv", lambda: CsvFeedWarehouse(f"https://feeds.csv.test/stock.csv?sig={quote(secret('csv-sig'), safe='')}"
                                         "&expires=1893456000",
                                         headers={"Authorization": f"Bearer {secret('csv-bearer')}"}, sleep=_no_sleep),
         lambda w: w.list_inventory(), (secret("csv-sig"), secret("csv-bearer")), "feeds.csv.test"),
    Case("shopify_inventory", lambda: ShopifyInventory("aurora.myshopify.com", secret("shpat"), sleep=_no_sleep),
         lambda w: w.inventory_items(["CANDLE-FIG"]), (secret("shpat"),), "aurora.myshopify.com", graphql=True),
    Case("shopify_token_exchange", lambda: ShopifyOAuth("client-id", secret("shpss"), sleep=_no_sleep),
         lambda o: o.exchange_session_token("aurora.myshopify.com", secret("session-jwt")),
         (secret("shpss"), secret("session-jwt")), "aurora.myshopify.com"),
    Case("shopify_token_refresh", lambda: ShopifyOAuth("client-id", secret("shpss"), sleep=_no_sleep),
         lambda o: o.refresh("aurora.myshopify.com", secret("shprt")),
         (secret("shpss"), secret("shprt")), "aurora.myshopify.com"),
    Case("shopify_code_exchange", lambda: ShopifyOAuth("client-id", secret("shpss"), sleep=_no_sleep),
         lambda o: o.exchange_code("aurora.myshopify.com", secret("code")),
         (secret("shpss"), secret("code")), "aurora.myshopify.com"),
    Case("shopify_install", lambda: ShopifyInstall("aurora.myshopify.com", secret("shpat"), sleep=_no_sleep),
         lambda w: w.locations(), (secret("shpat"),), "aurora.myshopify.com", graphql=True),
    Case("woocommerce_stock", lambda: WooCommerceStock("https://shop.woo.test", secret("ck"), secret("cs"),
                                                       sleep=_no_sleep),
         lambda w: w.find_by_sku(["SEEDS-MIX"]), (secret("ck"), secret("cs"), basic(secret("ck"), secret("cs"))),
         "shop.woo.test"),
    Case("woocommerce_orders", lambda: WooCommerceOrders("https://shop.woo.test", secret("ck"), secret("cs"),
                                                         sleep=_no_sleep),
         lambda w: w.order_refunds("727"), (secret("ck"), secret("cs"), basic(secret("ck"), secret("cs"))),
         "shop.woo.test"),
]

MODES = ("400", "401", "403", "503", "200-unexpected", "200-graphql-errors")


def _echo_text(request) -> str:
    body = request.body or b""
    body = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    headers = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
    return f"{request.method} {request.url}\n{headers}\n\n{body}"


def echo_server(rsps: responses.RequestsMock, case: Case, mode: str, stage: str) -> None:
    """Answer every request to ``case.host`` with the echo (the token endpoint hands
    out ``ACCESS_TOKEN`` when the echo is to come from the data endpoint)."""

    def answer(request):
        is_token_request = case.token_path is not None and request.path_url.startswith(case.token_path)
        if stage == "data" and is_token_request:
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        text = _echo_text(request)
        if mode == "200-graphql-errors":
            return 200, {"Content-Type": "application/json"}, json.dumps({"errors": [{"message": text}]})
        if mode == "200-unexpected":
            return 200, {"Content-Type": "text/html"}, f"<html><body><pre>{text}</pre></body></html>"
        # Retry-After: 0 lets the clients retry a 503 without really sleeping
        return int(mode), {"Content-Type": "text/plain", "Retry-After": "0"}, text

    pattern = re.compile(rf"https?://{re.escape(case.host)}/.*")
    for method in (responses.GET, responses.POST, responses.PUT):
        rsps.add_callback(method, pattern, callback=answer)


def _runs() -> list[tuple[Case, str, str]]:
    runs = []
    for case in CASES:
        for mode in MODES:
            if mode == "200-graphql-errors" and not case.graphql:
                continue
            for stage in (("token", "data") if case.token_path else ("data",)):
                runs.append(pytest.param(case, mode, stage, id=f"{case.name}-{mode}-{stage}"))
    return runs


def assert_no_secret(text: str, secrets: tuple[str, ...], where: str) -> None:
    for value in secrets:
        for form in forms(value):
            assert form not in text, f"{where} carries a credential ({form!r})"


@pytest.mark.parametrize("case, mode, stage", _runs())
def test_no_credential_in_any_error_from_an_echoing_server(case, mode, stage, caplog):
    caplog.set_level(logging.DEBUG)
    adapter = case.build()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        echo_server(rsps, case, mode, stage)
        with pytest.raises(ProviderError) as info:
            case.call(adapter)
        assert rsps.calls, "the adapter sent nothing"
        # the echo really carried the credential: the test can fail
        echoed = "".join(_echo_text(call.request) for call in rsps.calls)
        assert any(form in echoed for value in case.secrets for form in forms(value))
    err = info.value
    seen = [str(err), repr(err), str(getattr(err, "body_excerpt", "") or ""), caplog.text]
    cause = err.__cause__ or err.__context__
    while cause is not None:
        seen.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    assert_no_secret("\n".join(seen), case.secrets, f"{case.name} {mode} ({stage})")


# ---------------------------------------------------------------- through the sync service and the CLI

SHOP = sandbox.SHOPIFY_SHOP
PROVIDER_CASES = {
    "sb": ({"type": "shipbob", "token": secret("shipbob-pat"), "base_url": "https://api.shipbob.test"},
           "api.shipbob.test", None),
    "sm": ({"type": "shipmonk", "token": secret("shipmonk-key"), "base_url": "https://api.shipmonk.test"},
           "api.shipmonk.test", None),
    "hero": ({"type": "shiphero", "refresh_token": secret("shiphero-refresh"), "base_url": "https://api.shiphero.test"},
             "api.shiphero.test", "/auth/refresh"),
    "ext": ({"type": "extensiv", "client_id": secret("ext-id"), "client_secret": secret("ext-secret"),
             "tpl": secret("ext-tpl"), "user_login_id": "7", "customer_id": 12,
             "base_url": "https://wms.extensiv.test"}, "wms.extensiv.test", "/AuthServer/api/Token"),
    "feed": ({"type": "csv", "url": f"https://feeds.csv.test/stock.csv?sig={quote(secret('csv-sig'), safe='')}"},
             "feeds.csv.test", None),
}
ALL_SECRETS = (secret("shipbob-pat"), secret("shipmonk-key"), secret("shiphero-refresh"), secret("ext-id"),
               secret("ext-secret"), secret("ext-tpl"), basic(secret("ext-id"), secret("ext-secret")),
               secret("csv-sig"), ACCESS_TOKEN)


@pytest.mark.parametrize("stage", ["token", "data"])
@pytest.mark.parametrize("mode", ["400", "401", "503", "200-unexpected"])
def test_connector_sync_records_and_prints_no_credential(tmp_path, monkeypatch, clock, mode, stage):
    monkeypatch.setattr(connector.cli, "build", functools.partial(build, clock=clock))
    db = tmp_path / "c.db"
    config = sandbox.demo_config(clock(), str(db), "shp-webhook-secret", "woo-webhook-secret")
    shop = config["shops"][SHOP]
    shop["providers"] = {pid: spec for pid, (spec, _, _) in PROVIDER_CASES.items()}
    feeding = dict(zip(PROVIDER_CASES, [n["id"] for n in shop["nodes"]]))
    for node in shop["nodes"]:
        for provider_id, node_id in feeding.items():
            if node["id"] == node_id:
                node.update(stock_source=provider_id, forward_orders=False)
                if provider_id != "feed":
                    node["provider_location"] = "1"
    path = tmp_path / "connector.toml"
    path.write_text(to_toml(config), encoding="utf-8")

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for spec, host, token_path in PROVIDER_CASES.values():
            echo_server(rsps, Case(spec["type"], None, None, (), host, token_path), mode, stage)
        result = CliRunner().invoke(main, ["--config", str(path), "sync"], catch_exceptions=False)
        assert {call.request.url.split("/")[2] for call in rsps.calls} >= {h for _, h, _ in PROVIDER_CASES.values()}

    assert result.exit_code == 1, result.output
    assert "FAILED" in result.stderr
    assert_no_secret(result.stdout + result.stderr, ALL_SECRETS, "connector sync output")
    connection = sqlite3.connect(db)
    try:
        dump = "\n".join(connection.iterdump())
        errors = [row[0] for row in connection.execute("SELECT error FROM sync_runs WHERE error IS NOT NULL")]
    finally:
        connection.close()
    assert len(errors) >= len(PROVIDER_CASES)
    assert_no_secret(dump, ALL_SECRETS, "the database")

