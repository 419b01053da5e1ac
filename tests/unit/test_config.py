"""connector.config: the good sandbox config loads (as a dict and as TOML); every bad
one gives one ConfigError naming the key path and the problem; the CLI turns it into
one line on stderr and exit status 2."""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from connector.cli import main
from connector.config import ConfigError, file_shops, load_settings, secret_env_name, settings_from_dict
from connector.domain.model import Handling, Mode, NodeStatus, Rule
from connector.services.shop_config import StaticShopDirectory
from tests.conftest import SHOPIFY_SECRET, SHOPIFY_SHOP, WOO_SECRET, WOO_SHOP, WOO_URL, to_toml

S = SHOPIFY_SHOP
W = WOO_SHOP


def shop(raw: dict, shop_id: str = S) -> dict:
    return raw["shops"][shop_id]


def node(raw: dict, node_id: str, shop_id: str = S) -> dict:
    return next(n for n in shop(raw, shop_id)["nodes"] if n["id"] == node_id)


def node_index(raw: dict, node_id: str, shop_id: str = S) -> int:
    return next(i for i, n in enumerate(shop(raw, shop_id)["nodes"]) if n["id"] == node_id)


def region(raw: dict, region_id: str, shop_id: str = S) -> dict:
    return next(r for r in shop(raw, shop_id)["regions"] if r["id"] == region_id)


def config_error(raw: dict, env: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(raw, env=env)
    return str(info.value)


# ---------------------------------------------------------------- good configs


def _check_demo_settings(settings, db_path):
    assert set(settings.shop_documents) == {S, W}
    assert settings.database_path == db_path
    shops = file_shops(settings)
    aurora, fern = shops[S], shops[W]
    assert (aurora.platform, aurora.shop_domain, aurora.store_url) == ("shopify", "aurora-candles.myshopify.com", None)
    assert (fern.platform, fern.shop_domain, fern.store_url) == ("woocommerce", None, WOO_URL)
    assert aurora.secrets == (SHOPIFY_SECRET,) and fern.secrets == (WOO_SECRET,)
    directory = StaticShopDirectory(shops)
    assert directory.by_domain("aurora-candles.myshopify.com") is aurora
    assert directory.by_domain(WOO_URL) is fern
    net = aurora.network
    assert net.timezone == "America/New_York" and net.default_region == "us-rest"
    assert set(net.regions) == {"nyc-metro", "us-northeast", "us-west", "us-rest", "canada"}
    assert net.regions["nyc-metro"].fallback == "us-northeast"
    assert "US:100" in net.regions["nyc-metro"].postal_prefixes
    central = net.nodes["central"]
    assert central.cutoff.hour == 15 and central.daily_capacity == 2000 and central.priority == 50
    assert central.lanes["us-rest"].transit_days == 3 and central.lanes["us-rest"].cost_per_order == 7.9
    assert central.status is NodeStatus.ACTIVE
    assert net.nodes["ne-micro"].backups == ("central",)
    popup = net.nodes["popup-soho"]
    assert popup.active_from is not None and popup.active_from.tzinfo is not None
    assert popup.active_from < popup.active_until
    serum = next(r for r in net.sku_rules if r.pattern == "SERUM-*")
    assert serum.handling == frozenset({Handling.COLD_CHAIN}) and serum.max_transit_days == 2
    assert net.routing.mode is Mode.NORMAL
    assert net.routing.current.rules[0] is Rule.SINGLE_SHIPMENT
    disruption = net.routing.modes[Mode.DISRUPTION]
    assert disruption.restrictions[0].nodes == ("central",)
    assert disruption.restrictions[0].applies_to("us-west") and not disruption.restrictions[0].applies_to("canada")
    # a mode the file does not mention gets the default rule chain
    assert fern.network.routing.modes[Mode.PEAK].rules[0] is Rule.SINGLE_SHIPMENT


def test_demo_dict_loads(config_dict, db_path):
    _check_demo_settings(settings_from_dict(config_dict), db_path)


def test_demo_toml_file_loads(tmp_path, config_dict, db_path):
    path = tmp_path / "connector.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    settings = load_settings(path, env={})
    _check_demo_settings(settings, db_path)
    assert settings.source == str(path)


def test_config_path_from_environment(tmp_path, config_dict, db_path):
    path = tmp_path / "from-env.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    assert set(load_settings(env={"CONNECTOR_CONFIG": str(path)}).shop_documents) == {S, W}


def test_relative_database_path_is_relative_to_the_config_file(tmp_path, config_dict):
    config_dict["database"]["path"] = "data/connector.db"
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "c.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    assert load_settings(path, env={}).database_path == tmp_path / "conf" / "data" / "connector.db"


def test_hand_written_toml_with_one_shop_each(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(
        """
[database]
path = "small.db"

[shops.studio]
platform = "shopify"
shop_domain = "studio-1.myshopify.com"
webhook_secret = "abc"
regions = [{ id = "us", name = "US", promise_days = 3, countries = ["US"] }]

[[shops.studio.nodes]]
id = "home"
name = "Home"
kind = "garage"
lanes = [{ region = "us", transit_days = 2, cost_per_order = 5.0 }]

[shops.herbs]
platform = "woocommerce"
store_url = "https://Herbs.Example/shop/"
webhook_secret = "def"
regions = [{ id = "uk", name = "UK", promise_days = 2, countries = ["GB"] }]
nodes = [{ id = "shed", name = "Shed", kind = "garage", lanes = [{ region = "uk", transit_days = 1, cost_per_order = 3 }] }]
""",
        encoding="utf-8",
    )
    settings = load_settings(path, env={})
    assert file_shops(settings)["herbs"].store_url == "https://herbs.example/shop"
    assert file_shops(settings)["studio"].network.nodes["home"].lanes["us"].transit_days == 2
    assert settings.database_path == tmp_path / "small.db"


# ---------------------------------------------------------------- bad configs


def _unknown_top(raw):
    raw["colour"] = "teal"


def _unknown_nested(raw):
    shop(raw)["nodes"][0]["colour"] = "teal"


def _unknown_in_lane(raw):
    shop(raw, W)["nodes"][1]["lanes"][0]["speed"] = "fast"


def _wrong_type(raw):
    shop(raw)["nodes"][0]["lanes"][0]["transit_days"] = "two"


def _lane_to_undefined_region(raw):
    shop(raw)["nodes"][1]["lanes"][0]["region"] = "atlantis"


def _backup_undefined(raw):
    node(raw, "west-3pl")["backups"] = ["ghost-dc"]


def _backup_cycle(raw):
    node(raw, "central")["backups"] = ["ne-micro"]  # ne-micro already backs up to central


def _backup_cycle_long(raw):
    node(raw, "central")["backups"] = ["popup-soho"]  # popup -> ne-micro -> central -> popup


def _fallback_cycle(raw):
    region(raw, "us-rest")["fallback"] = "canada"  # canada already falls back to us-rest


def _fallback_undefined(raw):
    region(raw, "canada")["fallback"] = "mexico"


def _unknown_capability(raw):
    node(raw, "cold-room")["capabilities"] = ["cold_chain", "teleport"]


def _bad_cutoff(raw):
    node(raw, "central")["cutoff"] = "25:00"


def _unknown_timezone(raw):
    shop(raw)["timezone"] = "Mars/Olympus_Mons"


def _not_myshopify(raw):
    shop(raw)["shop_domain"] = "aurora-candles.com"


def _missing_secret_woo(raw):
    shop(raw, W)["webhook_secret"] = ""


def _missing_secret_shopify(raw):
    del shop(raw)["webhook_secret"]


def _restriction_undefined_node(raw):
    shop(raw)["routing"]["modes"]["disruption"]["restrict"][0]["nodes"] = ["central", "midwest-partner"]


def _duplicate_node(raw):
    shop(raw)["nodes"].append({**node(raw, "central"), "name": "Another central"})


def _bad_mode(raw):
    shop(raw)["routing"]["mode"] = "panic"


def _unknown_rule(raw):
    shop(raw)["routing"]["modes"]["peak"]["rules"] = ["fastest", "cheapest-ish"]


def _woo_shop_with_domain(raw):
    shop(raw, W)["shop_domain"] = "fernleaf.myshopify.com"


def _same_store_twice(raw):
    raw["shops"]["aurora-copy"] = {**shop(raw), "webhook_secret": "other"}


def _negative_days(raw):
    region(raw, "canada")["promise_days"] = -1


def _no_shops(raw):
    raw["shops"] = {}


def _hub_undefined(raw):
    shop(raw)["planning"] = {"hub": "atlantis-dc"}


def _launch_ends_first(raw):
    shop(raw)["planning"] = {"launches": [{"skus": "CANDLE-*", "starts": datetime(2026, 12, 5),
                                           "ends": datetime(2026, 12, 1), "uplift": 2.0}]}


def _transfer_lane_to_itself(raw):
    shop(raw)["rebalance"] = {"lanes": [{"from_node": "central", "to_node": "central", "cost_per_unit": 0.5}]}


def _transfer_lane_undefined(raw):
    shop(raw)["rebalance"] = {"lanes": [{"from_node": "central", "to_node": "ghost", "cost_per_unit": 0.5}]}


def _old_api_version(raw):
    shop(raw)["storefront"] = {"api_version": "2025-10"}


def _location_on_woo(raw):
    shop(raw, W)["nodes"][0]["shopify_location"] = "gid://shopify/Location/1"


def _woo_key_over_http(raw):
    shop(raw, W)["store_url"] = "http://fernleaf.example"
    shop(raw, W)["storefront"] = {"consumer_key": "ck_x", "consumer_secret": "cs_x"}


def _with_provider(raw, provider: dict, *, forward: bool = True):
    shop(raw)["providers"] = {"acct": provider}
    node(raw, "ne-micro").update(stock_source="acct", provider_location="10", forward_orders=forward,
                                  **({"shipping_method": "Ground"} if forward else {}))


_EXTENSIV = {"type": "extensiv", "client_id": "c", "client_secret": "s", "tpl": "{a1b2}", "user_login_id": "7",
             "customer_id": 12}


def _extensiv_without(key):
    return lambda raw: _with_provider(raw, {k: v for k, v in _EXTENSIV.items() if k != key}, forward=False)


def _shipmonk_forwarding_without_store_id(raw):
    _with_provider(raw, {"type": "shipmonk", "token": "key"})


def _shipbob_forwarding_without_channel_id(raw):
    _with_provider(raw, {"type": "shipbob", "token": "pat"})


BAD = [
    # issue 15 point 13: what a 3PL account needs fails at load, not at the first sync or forward
    ("extensiv-without-tpl", _extensiv_without("tpl"), f"shops.{S}.providers.acct.tpl", "required"),
    ("extensiv-without-user-login-id", _extensiv_without("user_login_id"),
     f"shops.{S}.providers.acct.user_login_id", "required"),
    ("shipmonk-forwarding-without-store-id", _shipmonk_forwarding_without_store_id,
     f"shops.{S}.providers.acct.store_id", "required to forward orders to shipmonk"),
    ("shipbob-forwarding-without-channel-id", _shipbob_forwarding_without_channel_id,
     f"shops.{S}.providers.acct.channel_id", "required to forward orders to shipbob"),
    ("woo-key-over-http", _woo_key_over_http, f"shops.{W}.store_url", "must be https:// when a REST API key"),
    ("hub-undefined", _hub_undefined, f"shops.{S}.planning.hub", "'atlantis-dc' is not defined"),
    ("launch-ends-first", _launch_ends_first, f"shops.{S}.planning.launches[0].ends", "after starts"),
    ("transfer-lane-to-itself", _transfer_lane_to_itself, f"shops.{S}.rebalance.lanes[0]", "two different nodes"),
    ("transfer-lane-undefined", _transfer_lane_undefined, f"shops.{S}.rebalance.lanes[0].to_node",
     "'ghost' is not defined"),
    ("old-api-version", _old_api_version, f"shops.{S}.storefront.api_version", "2026-04 or later"),
    ("location-on-woo", _location_on_woo, f"shops.{W}.nodes[0].shopify_location", "Shopify shops"),
    # (id, mutate, key path the message must name, words of the problem)
    ("unknown-top-level-key", _unknown_top, "colour", "unknown key"),
    ("unknown-nested-key", _unknown_nested, f"shops.{S}.nodes[0].colour", "unknown key"),
    ("unknown-lane-key", _unknown_in_lane, f"shops.{W}.nodes[1].lanes[0].speed", "unknown key"),
    ("wrong-type", _wrong_type, f"shops.{S}.nodes[0].lanes[0].transit_days", "'two'"),
    ("lane-to-undefined-region", _lane_to_undefined_region, f"shops.{S}.nodes[1].lanes[0].region", "atlantis"),
    ("backup-undefined", _backup_undefined, f"shops.{S}.nodes[2].backups[0]", "'ghost-dc' is not defined"),
    ("backup-cycle", _backup_cycle, f"shops.{S}.nodes", "cycle"),
    ("backup-cycle-3", _backup_cycle_long, f"shops.{S}.nodes", "cycle"),
    ("fallback-cycle", _fallback_cycle, f"shops.{S}.regions", "cycle"),
    ("fallback-undefined", _fallback_undefined, f"shops.{S}.regions[4].fallback", "'mexico' is not defined"),
    ("unknown-capability", _unknown_capability, f"shops.{S}.nodes[3].capabilities", "unknown capability teleport"),
    ("bad-cutoff", _bad_cutoff, f"shops.{S}.nodes[0].cutoff", "'25:00'"),
    ("unknown-timezone", _unknown_timezone, f"shops.{S}.timezone", "unknown time zone"),
    ("not-myshopify", _not_myshopify, f"shops.{S}.shop_domain", "myshopify.com"),
    ("missing-secret-woo", _missing_secret_woo, f"shops.{W}.webhook_secret", "missing"),
    ("missing-secret-shopify", _missing_secret_shopify, f"shops.{S}.webhook_secret", "missing"),
    ("restriction-undefined-node", _restriction_undefined_node,
     f"shops.{S}.routing.modes.disruption.restrict[0].nodes", "'midwest-partner' is not defined"),
    ("duplicate-node-id", _duplicate_node, f"shops.{S}.nodes[5].id", "'central' is defined twice"),
    ("bad-mode", _bad_mode, f"shops.{S}.routing.mode", "'panic'"),
    ("unknown-rule", _unknown_rule, f"shops.{S}.routing.modes.peak.rules[1]", "'cheapest-ish'"),
    ("woo-with-shop-domain", _woo_shop_with_domain, f"shops.{W}.shop_domain", "Shopify"),
    ("same-store-twice", _same_store_twice, "shops.aurora-copy", "same store"),
    ("negative-days", _negative_days, f"shops.{S}.regions[4].promise_days", "-1"),
    ("no-shops-table", lambda raw: raw.update(shops=[]), "shops", "dictionary"),
]


def test_a_deployment_without_shops_loads(config_dict):
    """Shops live in the database; the file's [shops.*] tables are only an import source."""
    _no_shops(config_dict)
    assert settings_from_dict(config_dict).shop_documents == {}


def test_every_problem_of_a_file_is_reported_at_once(config_dict):
    _hub_undefined(config_dict)
    _backup_cycle(config_dict)
    node(config_dict, "central")["lanes"][0]["region"] = "atlantis"
    message = config_error(config_dict)
    lines = message.splitlines()
    assert len(lines) >= 3 and all(line.startswith("<dict>: shops.") for line in lines), message
    assert any("planning.hub" in line for line in lines) and any("atlantis" in line for line in lines)
    assert any("cycle" in line for line in lines)


@pytest.mark.parametrize("provider", [
    {**_EXTENSIV, "carrier": "UPS"}, {"type": "shipmonk", "token": "key", "store_id": 48213},
    {"type": "shipbob", "token": "pat", "channel_id": "1"},
    {"type": "shiphero", "refresh_token": "r"},
], ids=lambda p: p["type"])
def test_a_complete_provider_account_forwarding_orders_loads(config_dict, provider):
    _with_provider(config_dict, provider)
    assert file_shops(settings_from_dict(config_dict))[S].sources["ne-micro"].forward_orders


@pytest.mark.parametrize("mutate,key,problem", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_names_key_and_problem(config_dict, mutate, key, problem):
    mutate(config_dict)
    message = config_error(config_dict)
    # the key path is named as a whole path, not as a substring of a longer one
    assert re.search(r"(^|[\s:])" + re.escape(key) + r"($|[:\s])", message), message
    assert problem in message, message
    assert "\n" not in message and "Traceback" not in message


def test_backup_cycle_names_the_nodes_in_it(config_dict):
    _backup_cycle(config_dict)
    message = config_error(config_dict)
    assert "central -> ne-micro -> central" in message or "ne-micro -> central -> ne-micro" in message


def test_fallback_cycle_names_the_regions_in_it(config_dict):
    _fallback_cycle(config_dict)
    message = config_error(config_dict)
    assert "us-rest -> canada -> us-rest" in message or "canada -> us-rest -> canada" in message


def test_missing_secret_message_names_the_environment_variable(config_dict):
    _missing_secret_woo(config_dict)
    assert secret_env_name(W) == "CONNECTOR_SHOP_FERNLEAF_BOTANICS_WEBHOOK_SECRET"
    assert secret_env_name(W) in config_error(config_dict)


def test_secret_from_environment_makes_it_valid(config_dict):
    _missing_secret_woo(config_dict)
    settings = settings_from_dict(config_dict, env={secret_env_name(W): "from-the-env"})
    assert file_shops(settings)[W].secrets == ("from-the-env",)


def test_secret_from_process_environment_through_load_settings(tmp_path, config_dict, monkeypatch):
    _missing_secret_shopify(config_dict)
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"shops.{S}.webhook_secret")):
        load_settings(path)
    monkeypatch.setenv(secret_env_name(S), "env-secret")
    assert file_shops(load_settings(path))[S].secrets == ("env-secret",)


def test_shopify_app_client_secret_counts_as_webhook_secret(config_dict):
    _missing_secret_shopify(config_dict)
    config_dict["shopify"] = {"client_secret": "app-secret", "previous_client_secret": "old-secret"}
    assert file_shops(settings_from_dict(config_dict))[S].secrets == ("app-secret", "old-secret")


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "broken-config.toml"
    path.write_text('[shops.x]\nplatform = "shopify\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "broken-config.toml" in str(info.value) and "TOML" in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "connector.toml"
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(path) in str(info.value) and "not found" in str(info.value)


def test_no_config_at_all():
    with pytest.raises(ConfigError, match="CONNECTOR_CONFIG"):
        load_settings(None, env={})


def test_errors_in_a_toml_file_name_the_file_and_the_key(tmp_path, config_dict):
    _unknown_nested(config_dict)
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(path) in str(info.value) and f"shops.{S}.nodes[0].colour: unknown key" in str(info.value)


# ---------------------------------------------------------------- the CLI on a bad config


def _bad_toml(tmp_path, config_dict):
    path = tmp_path / "bad.toml"
    path.write_text("this is = = not toml", encoding="utf-8")
    return path


def _bad_key(tmp_path, config_dict):
    _unknown_nested(config_dict)
    path = tmp_path / "bad.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    return path


def _bad_cycle(tmp_path, config_dict):
    _backup_cycle(config_dict)
    path = tmp_path / "bad.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    return path


def _missing(tmp_path, config_dict):
    return tmp_path / "missing.toml"


@pytest.mark.parametrize("make", [_bad_toml, _bad_key, _bad_cycle, _missing], ids=["toml", "key", "cycle", "missing"])
@pytest.mark.parametrize("command", [["init"], ["process"], ["exceptions"], ["orders", "show", "1001"], ["forward"]],
                         ids=["init", "process", "exceptions", "orders-show", "forward"])
def test_cli_bad_config_one_message_exit_2(runner, tmp_path, config_dict, make, command):
    path = make(tmp_path, config_dict)

    result = runner.invoke(main, ["--config", str(path), *command])

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error: "), result.stderr
    assert "bad.toml" in lines[0] or "missing.toml" in lines[0]
    assert isinstance(result.exception, SystemExit)


def test_cli_config_from_environment_variable(runner, tmp_path, config_dict):
    path = _bad_key(tmp_path, config_dict)
    result = runner.invoke(main, ["init"], env={"CONNECTOR_CONFIG": str(path)})
    assert result.exit_code == 2
    assert result.stderr.count("config error: ") == 1 and "colour" in result.stderr


def test_cli_without_any_config(runner):
    result = runner.invoke(main, ["init"])
    assert result.exit_code == 2
    assert result.stderr.startswith("config error: ") and "CONNECTOR_CONFIG" in result.stderr
    assert "Traceback" not in result.output


def test_storefront_secrets_come_from_the_environment(config_dict):
    env = {"CONNECTOR_SHOP_AURORA_CANDLES_ACCESS_TOKEN": "shpat_env", "CONNECTOR_SHOP_AURORA_CANDLES_API_KEY": "k-env"}
    settings = settings_from_dict(config_dict, env=env)
    assert file_shops(settings)[S].storefront.access_token == "shpat_env"
    assert file_shops(settings)[S].storefront.api_key == "k-env"
    assert file_shops(settings)[W].storefront.access_token == ""


def test_example_config_plans_and_pushes():
    settings = load_settings(Path(__file__).resolve().parents[2] / "config.example.toml", env={})
    shop_settings = file_shops(settings)["aurora-candles"]
    assert shop_settings.planning.hub == "central"
    assert shop_settings.rebalance.launch_lock_at.tzinfo is not None  # read in the shop's zone
    assert shop_settings.shopify_locations["ne-micro"] == "gid://shopify/Location/1002"
    assert {l.to_node for l in shop_settings.rebalance.lanes} == {"ne-micro", "popup-soho"}


# ---------------------------------------------------------------- forwarding: shipping methods, SKU maps


def _forwarding_node(raw: dict, **node_keys) -> dict:
    """The Shopify shop's "central" node forwarding to a ShipMonk account."""
    shop(raw)["providers"] = {"sm": {"type": "shipmonk", "token": "k", "store_id": 7}}
    central = node(raw, "central")
    central.update(stock_source="sm", provider_location="KY1", forward_orders=True, **node_keys)
    return central


def test_a_forwarding_node_needs_a_shipping_method(config_dict):
    _forwarding_node(config_dict)
    i = node_index(config_dict, "central")
    assert f"nodes[{i}].shipping_method: required to forward orders" in config_error(config_dict)


def test_shipping_methods_per_region_resolve_with_the_default_for_the_rest(config_dict):
    _forwarding_node(config_dict, shipping_method="Ground", shipping_methods={"nyc-metro": "Next Day"})
    source = file_shops(settings_from_dict(config_dict))[S].sources["central"]
    assert source.shipping_method_for("nyc-metro") == "Next Day"
    assert source.shipping_method_for("us-west") == "Ground"


def test_shipping_methods_alone_must_cover_every_region(config_dict):
    _forwarding_node(config_dict, shipping_methods={"nyc-metro": "Next Day"})
    i = node_index(config_dict, "central")
    message = config_error(config_dict)
    assert f"nodes[{i}].shipping_methods: no method for region" in message and "us-west" in message


@pytest.mark.parametrize("methods, problem", [
    ({"mars": "Rocket"}, "region 'mars' is not defined"),
    ({"nyc-metro": " "}, "must not be empty"),
])
def test_bad_shipping_methods_are_config_errors(config_dict, methods, problem):
    _forwarding_node(config_dict, shipping_method="Ground", shipping_methods=methods)
    assert problem in config_error(config_dict)


def test_a_shipping_method_on_a_node_that_does_not_forward_is_an_error(config_dict):
    node(config_dict, "central")["shipping_method"] = "Ground"
    i = node_index(config_dict, "central")
    assert f"nodes[{i}].shipping_method: only used with forward_orders = true" in config_error(config_dict)


def test_a_sku_map_that_cannot_be_inverted_is_a_config_error(config_dict):
    _forwarding_node(config_dict, shipping_method="Ground")
    shop(config_dict)["providers"]["sm"]["sku_map"] = {"SM-1": "CANDLE-01", "SM-1B": "CANDLE-01"}
    message = config_error(config_dict)
    assert "providers.sm.sku_map" in message and "CANDLE-01" in message and "SM-1" in message


def test_provider_sku_inverts_the_map_and_refuses_a_colliding_sku(config_dict):
    _forwarding_node(config_dict, shipping_method="Ground")
    shop(config_dict)["providers"]["sm"]["sku_map"] = {"SM-CANDLE": "CANDLE-01", "CANDLE-02": "CANDLE-XL"}
    provider = file_shops(settings_from_dict(config_dict))[S].providers["sm"]
    assert provider.provider_sku("CANDLE-01") == "SM-CANDLE"
    assert provider.provider_sku("SOAP-07") == "SOAP-07"  # not mapped: the same SKU at the 3PL
    with pytest.raises(ValueError, match="CANDLE-02"):  # the 3PL's CANDLE-02 is our CANDLE-XL
        provider.provider_sku("CANDLE-02")


def test_extensiv_forwarding_needs_a_carrier(config_dict):
    shop(config_dict)["providers"] = {"ex": {"type": "extensiv", "client_id": "c", "client_secret": "s",
                                             "customer_id": 12, "tpl": "{guid}", "user_login_id": "7"}}
    node(config_dict, "central").update(stock_source="ex", provider_location="3", forward_orders=True,
                                        shipping_method="Ground")
    assert "providers.ex.carrier: required to forward orders to extensiv" in config_error(config_dict)
    shop(config_dict)["providers"]["ex"]["carrier"] = "UPS"
    provider = file_shops(settings_from_dict(config_dict))[S].providers["ex"]
    assert (provider.carrier, provider.billing_code) == ("UPS", "Prepaid")


# ---------------------------------------------------------------- secrets never echoed (issue 15, point 22)

SECRET_LOOKALIKE = "s3cr3t-Value-91827"


def _provider(raw: dict, spec: dict) -> dict:
    shop(raw)["providers"] = {"acct": spec}
    return shop(raw)["providers"]["acct"]


# Where each secret key lives in a config file: (dict to put it in, the key's dotted path in errors).
SECRET_KEY_PLACES = {
    "webhook_secret": lambda raw: shop(raw),
    "client_secret": lambda raw: raw.setdefault("shopify", {}),
    "previous_client_secret": lambda raw: raw.setdefault("shopify", {}),
    "access_token": lambda raw: shop(raw).setdefault("storefront", {}),
    "consumer_key": lambda raw: shop(raw, W).setdefault("storefront", {}),
    "consumer_secret": lambda raw: shop(raw, W).setdefault("storefront", {}),
    "api_key": lambda raw: shop(raw).setdefault("storefront", {}),
    "token": lambda raw: _provider(raw, {"type": "shipbob"}),
    "refresh_token": lambda raw: _provider(raw, {"type": "shiphero"}),
    "client_id": lambda raw: _provider(raw, {"type": "extensiv", "customer_id": 1}),
    "tpl": lambda raw: _provider(raw, {"type": "extensiv", "customer_id": 1}),
    "secret_key": lambda raw: raw.setdefault("web", {}),
    "url": lambda raw: _provider(raw, {"type": "csv"}),
    "password": lambda raw: raw.setdefault("email", {}),
    "post_url": lambda raw: shop(raw).setdefault("alerts", {}),
    "signing_secret": lambda raw: shop(raw).setdefault("alerts", {}),
}


def test_every_key_named_like_a_credential_is_a_secret_key():
    from connector import config

    names = {name for model in config._Strict.__subclasses__() for name in model.model_fields}
    credential_like = {n for n in names if re.search(r"secret|token|password|api_key|consumer_key", n)}
    assert credential_like <= config.secret_keys()
    assert set(SECRET_KEY_PLACES) == config.secret_keys()  # a new secret key needs a place in this test


WRONG_VALUES = [98127634, 981276.34, True, [SECRET_LOOKALIKE], {"value": SECRET_LOOKALIKE}]


@pytest.mark.parametrize("wrong", WRONG_VALUES, ids=["int", "float", "bool", "list", "table"])
@pytest.mark.parametrize("key", sorted(SECRET_KEY_PLACES))
def test_a_secret_key_of_the_wrong_type_is_named_but_its_value_never_shown(config_dict, key, wrong):
    SECRET_KEY_PLACES[key](config_dict)[key] = wrong
    message = config_error(config_dict)
    assert f".{key}:" in message or message.split(": ", 2)[1].endswith(key), message
    for shown in {str(wrong), repr(wrong), SECRET_LOOKALIKE, "98127634", "981276"}:
        assert shown not in message, message


@pytest.mark.parametrize("key", sorted(SECRET_KEY_PLACES))
def test_cli_prints_a_bad_secret_key_without_its_value(runner, tmp_path, config_dict, key):
    SECRET_KEY_PLACES[key](config_dict)[key] = [SECRET_LOOKALIKE]
    path = tmp_path / "bad.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    result = runner.invoke(main, ["--config", str(path), "init"])
    assert result.exit_code == 2
    assert result.stderr.startswith("config error: ") and key in result.stderr
    assert SECRET_LOOKALIKE not in result.output


def test_an_error_about_a_whole_table_does_not_show_the_secrets_in_it(config_dict):
    shop(config_dict)["providers"] = {"acct": {"type": "fedex", "token": SECRET_LOOKALIKE}}
    config_dict["shops"][S]["storefront"] = [{"access_token": SECRET_LOOKALIKE}]
    message = config_error(config_dict)
    assert "providers.acct.type" in message and "storefront" in message
    assert SECRET_LOOKALIKE not in message


def test_other_keys_still_show_the_wrong_value(config_dict):
    shop(config_dict)["timezone"] = 12345
    assert "12345" in config_error(config_dict)


def test_the_domain_check_returns_every_problem_on_plain_data(config_dict):
    """connector.domain.shop_rules works on a plain document (no pydantic, no I/O) and
    reports each problem with its path, never stopping at the first."""
    from zoneinfo import ZoneInfo

    from connector.domain.shop_rules import check_shop
    from connector.config import ShopConfig

    raw = shop(config_dict)
    raw["nodes"][node_index(config_dict, "popup-soho")]["backups"] = ["nowhere", "popup-soho"]
    raw["planning"] = {"hub": "ghost"}
    raw["default_region"] = "atlantis"
    problems = check_shop(S, ShopConfig.model_validate(raw).model_dump(), ZoneInfo("America/New_York"))
    popup = node_index(config_dict, "popup-soho")
    assert {(p.path, p.message) for p in problems} >= {
        (f"nodes[{popup}].backups[0]", "backup node 'nowhere' is not defined"),
        (f"nodes[{popup}].backups[1]", "a node cannot be its own backup"),
        ("planning.hub", "node 'ghost' is not defined"),
        ("default_region", "region 'atlantis' is not defined"),
    }


_ACCOUNTS = {"shipbob": {"type": "shipbob", "token": "pat", "channel_id": "1"},
             "shipmonk": {"type": "shipmonk", "token": "key", "store_id": 48213},
             "shiphero": {"type": "shiphero", "refresh_token": "r"},
             "extensiv": {**_EXTENSIV, "carrier": "UPS"}}


@pytest.mark.parametrize("kind", sorted(_ACCOUNTS))
@pytest.mark.parametrize("base_url, allowed", [
    ("https://sandbox-api.example.com", True), ("http://127.0.0.1:8080", True), ("http://localhost:9", True),
    ("http://sandbox-api.example.com", False), ("http://127.0.0.1.evil.example", False),
    ("ftp://api.example.com", False), ("sandbox-api.example.com", False),
])
def test_a_provider_base_url_must_be_https_outside_a_local_test_3pl(config_dict, kind, base_url, allowed):
    """Credentials go with every request: plain http only to a 3PL simulated on this machine."""
    _with_provider(config_dict, {**_ACCOUNTS[kind], "base_url": base_url})
    if allowed:
        assert file_shops(settings_from_dict(config_dict))[S].providers["acct"].base_url == base_url
    else:
        message = config_error(config_dict)
        assert f"shops.{S}.providers.acct.base_url: must be an https:// address" in message, message


def test_a_csv_feed_url_over_plain_http_is_refused_without_showing_it(config_dict):
    feed = "http://sheets.example/feed.csv?token=s3cr3t-feed-token"
    _with_provider(config_dict, {"type": "csv", "url": feed}, forward=False)
    message = config_error(config_dict)
    assert f"shops.{S}.providers.acct.url: must be an https:// address" in message and "s3cr3t" not in message


def test_a_just_connected_store_without_nodes_and_with_a_catch_all_region_is_valid():
    """What connecting a WooCommerce store saves (store_connections.starter_document):
    no nodes yet, one default region matching every address."""
    from connector.config import validate_shop
    from connector.services.store_connections import starter_document

    document = starter_document("https://shop.example.com", "s" * 43, "ck_" + "a" * 40, "cs_" + "b" * 40)
    assert validate_shop("new", document) == []
    # a region matching nothing is still a mistake unless it is the default region...
    stray = {**document, "regions": [*document["regions"], {"id": "eu", "name": "EU", "promise_days": 3}]}
    assert [str(p) for p in validate_shop("new", stray)] == [
        "regions[1]: region 'eu' matches nothing: give countries, provinces or postal_prefixes"]
    # ...and once there are nodes, a region none serves is one again
    node = {"id": "hub", "name": "Hub", "kind": "central_warehouse",
            "lanes": [{"region": "us", "transit_days": 2, "cost_per_order": 5}]}
    served = {**document, "regions": [*document["regions"], {"id": "us", "name": "US", "promise_days": 3,
                                                               "countries": ["US"]}], "nodes": [node]}
    assert [str(p) for p in validate_shop("new", served)] == [
        "regions[0]: no node serves region 'everywhere' and it has no fallback"]


# ---------------------------------------------------------------- alerts: the mail server and a shop's channels


def test_the_mail_server_is_optional_and_its_password_may_come_from_the_environment(config_dict):
    assert settings_from_dict(config_dict).email.host == ""
    config_dict["email"] = {"host": "smtp.example.com", "port": 465, "security": "ssl", "username": "alerts",
                            "from_address": "alerts@connector.example.com"}
    settings = settings_from_dict(config_dict, env={"CONNECTOR_SMTP_PASSWORD": "smtp-pass-from-env"})
    assert settings.email.password == "smtp-pass-from-env" and settings.email.port == 465
    assert "smtp-pass-from-env" not in repr(settings) + repr(settings.email)


@pytest.mark.parametrize("email, expected", [
    ({"host": "smtp.example.com"}, "email: from_address is required when host is set"),
    ({"host": "smtp.example.com", "from_address": "a@b.example", "security": "none", "password": "pw-9876"},
     "only for a mail server on this machine"),
    ({"host": "smtp.example.com", "from_address": "not an address"}, "email.from_address: must be an email address"),
    ({"host": "smtp.example.com", "from_address": "a@b.example", "security": "tls"}, "email.security"),
    ({"username": "me"}, "username is set but host is not"),
])
def test_a_bad_mail_server_setting_is_a_config_error_naming_the_key(config_dict, email, expected):
    config_dict["email"] = email
    message = config_error(config_dict)
    assert expected in message
    assert "pw-9876" not in message


def test_a_shops_alert_channels_are_checked_and_the_post_address_is_never_shown(config_dict):
    shop(config_dict)["alerts"] = {"emails": ["maker@candles.example", "nope", "MAKER@candles.example"],
                                   "post_url": "http://hooks.example.com/services/T0/B0/tok3n-secret",
                                   "kinds": ["exceptions", "exceptions"], "digest_at": "7:00"}
    message = config_error(config_dict)
    assert f"shops.{S}.alerts.digest_at: digest_at must be HH:MM" in message
    shop(config_dict)["alerts"]["digest_at"] = "07:00"
    message = config_error(config_dict)
    for expected in (f"shops.{S}.alerts.emails[1]: 'nope' is not an email address",
                     f"shops.{S}.alerts.emails[2]: MAKER@candles.example is listed twice",
                     f"shops.{S}.alerts.post_url: must be an https:// address", f"shops.{S}.alerts.kinds: "):
        assert expected in message
    assert "tok3n-secret" not in message and "hooks.example.com" not in message


def test_a_signing_secret_needs_a_post_address_and_loopback_may_use_http(config_dict):
    shop(config_dict)["alerts"] = {"signing_secret": "sign-me-please"}
    message = config_error(config_dict)
    assert f"shops.{S}.alerts.signing_secret: only used with post_url" in message
    assert "sign-me-please" not in message
    shop(config_dict)["alerts"]["post_url"] = "http://127.0.0.1:9999/hook"
    alerts = file_shops(settings_from_dict(config_dict))[S].alerts
    assert alerts.post_url == "http://127.0.0.1:9999/hook" and alerts.kinds[0] == "exceptions"
