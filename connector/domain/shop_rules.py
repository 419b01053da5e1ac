"""The meaning checks of one shop's configuration document, on plain data.

A document is the dict of one ``[shops.<id>]`` table whose shape (keys, types,
ranges) is already known good, with secrets the environment supplies filled in.
``check_shop`` returns every problem it finds, each with its path inside the shop
(``nodes[2].backups[0]``), so a form, the CLI and a TOML import can show all of them
at once. Time zones are passed in (looking one up reads the system's database).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

MODES = ("normal", "peak", "disruption")
PROVIDER_SECRET_KEYS = ("token", "refresh_token", "client_secret")
# What each provider needs before it can be built (secrets may come from the environment).
PROVIDER_REQUIRED = {
    "shipbob": ("token",),
    "shipmonk": ("token",),
    "shiphero": ("refresh_token",),
    "extensiv": ("client_id", "client_secret", "tpl", "user_login_id", "customer_id"),
    "csv": (),
}
# What a provider account needs on top to receive orders (a node with forward_orders).
FORWARD_REQUIRED = {"shipbob": ("channel_id",), "shipmonk": ("store_id",), "extensiv": ("carrier",)}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (a key path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def under(self, prefix: str) -> "Problem":
        return Problem(f"{prefix}.{self.path}" if self.path else prefix, self.message)


def _env_id(value: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", value.upper())


def secret_env_name(shop_id: str) -> str:
    return f"CONNECTOR_SHOP_{_env_id(shop_id)}_WEBHOOK_SECRET"


def provider_secret_env_name(shop_id: str, provider_id: str, key: str) -> str:
    return f"CONNECTOR_SHOP_{_env_id(shop_id)}_{_env_id(provider_id)}_{key.upper()}"


def check_shop(shop_id: str, doc: Mapping[str, Any], tz: tzinfo | None) -> list[Problem]:
    """Every meaning problem of ``doc`` (``tz``: the shop's zone, None when unknown)."""
    problems: list[Problem] = []

    def fail(path: str, message: str) -> None:
        problems.append(Problem(path, message))

    platform = doc["platform"]
    if platform == "shopify":
        domain = doc.get("shop_domain")
        if not domain or not re.fullmatch(r"[a-z0-9][a-z0-9-]*\.myshopify\.com", domain):
            fail("shop_domain", f"must be {{shop}}.myshopify.com for a Shopify shop, got {domain!r}")
        if doc.get("store_url"):
            fail("store_url", "is for WooCommerce shops; a Shopify shop has shop_domain")
    else:
        url = doc.get("store_url")
        if not url or not re.match(r"^https?://[^/\s]+", url):
            fail("store_url", f"must be the store's http(s) home URL for a WooCommerce shop, got {url!r}")
        if doc.get("shop_domain"):
            fail("shop_domain", "is for Shopify shops; a WooCommerce shop has store_url")

    regions_list, nodes_list = doc["regions"], doc["nodes"]
    regions = _unique(regions_list, "regions", fail)
    nodes = _unique(nodes_list, "nodes", fail)
    for i, region in enumerate(regions_list):
        fallback = region.get("fallback")
        if fallback is not None and fallback not in regions:
            fail(f"regions[{i}].fallback", f"region {fallback!r} is not defined")
        if fallback == region["id"]:
            fail(f"regions[{i}].fallback", "a region cannot fall back to itself")
        # The default region takes every address no other region matches; any other needs a rule.
        if not (region.get("countries") or region.get("provinces") or region.get("postal_prefixes")) \
                and region["id"] != doc.get("default_region"):
            fail(f"regions[{i}]", f"region {region['id']!r} matches nothing: give countries, provinces or "
                                  "postal_prefixes")
    _check_cycle({r["id"]: [r["fallback"]] if r.get("fallback") else [] for r in regions_list}, "regions",
                 "fallbacks", fail)
    default_region = doc.get("default_region")
    if default_region is not None and default_region not in regions:
        fail("default_region", f"region {default_region!r} is not defined")

    served: set[str] = set()
    for i, node in enumerate(nodes_list):
        lane_regions: set[str] = set()
        for j, lane in enumerate(node["lanes"]):
            if lane["region"] not in regions:
                fail(f"nodes[{i}].lanes[{j}].region", f"node {node['id']!r} serves undefined region {lane['region']!r}")
            if lane["region"] in lane_regions:
                fail(f"nodes[{i}].lanes[{j}].region", f"node {node['id']!r} lists region {lane['region']!r} twice")
            lane_regions.add(lane["region"])
        served |= lane_regions
        for j, backup in enumerate(node.get("backups") or ()):
            if backup not in nodes:
                fail(f"nodes[{i}].backups[{j}]", f"backup node {backup!r} is not defined")
            if backup == node["id"]:
                fail(f"nodes[{i}].backups[{j}]", "a node cannot be its own backup")
        if tz is not None and node.get("active_from") and node.get("active_until"):
            if aware(node["active_from"], tz) >= aware(node["active_until"], tz):
                fail(f"nodes[{i}].active_until", "must be after active_from")
    _check_cycle({n["id"]: list(n.get("backups") or ()) for n in nodes_list}, "nodes", "backups", fail)
    for i, region in enumerate(regions_list):
        # A shop without nodes (a new install) routes nothing yet: every order waits for a human.
        if nodes_list and region["id"] not in served and region.get("fallback") is None:
            fail(f"regions[{i}]", f"no node serves region {region['id']!r} and it has no fallback")

    for mode in MODES:
        mode_doc = (doc.get("routing") or {}).get("modes", {}).get(mode)
        if not mode_doc:
            continue
        for k, restriction in enumerate(mode_doc.get("restrict") or ()):
            key = f"routing.modes.{mode}.restrict[{k}]"
            for region_id in restriction["regions"]:
                if region_id != "*" and region_id not in regions:
                    fail(f"{key}.regions", f"region {region_id!r} is not defined")
            for node_id in restriction["nodes"]:
                if node_id not in nodes:
                    fail(f"{key}.nodes", f"node {node_id!r} is not defined")
        rules = list(mode_doc.get("rules") or ())
        if len(set(rules)) != len(rules):
            fail(f"routing.modes.{mode}.rules", "a rule is listed twice")

    providers = doc.get("providers") or {}
    for provider_id, provider in providers.items():
        _check_provider(shop_id, provider_id, provider, fail)
    _check_node_sources(doc, providers, regions, fail)
    _check_planning(doc, nodes, tz, fail)
    _check_alerts(doc.get("alerts") or {}, fail)
    storefront = doc.get("storefront") or {}
    if storefront.get("consumer_key") and not (doc.get("store_url") or "").lower().startswith("https://"):
        # The REST API key goes as HTTP Basic auth: over http:// anyone on the path reads it.
        fail("store_url", f"must be https:// when a REST API key (storefront consumer_key) is set, "
                          f"got {doc.get('store_url')!r}")
    return problems


def aware(value: datetime | None, tz: tzinfo) -> datetime | None:
    """A local date-time (as TOML writes them) is read in the shop's time zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=tz)


def _check_provider(shop_id: str, provider_id: str, provider: Mapping[str, Any], fail) -> None:
    kind = provider["type"]
    for key in PROVIDER_REQUIRED[kind]:
        if not provider.get(key):
            hint = (f" (or the environment variable {provider_secret_env_name(shop_id, provider_id, key)})"
                    if key in PROVIDER_SECRET_KEYS else "")
            fail(f"providers.{provider_id}.{key}", f"required for a {kind} provider{hint}")
    if kind == "csv" and bool(provider.get("url")) == bool(provider.get("path")):
        fail(f"providers.{provider_id}", "a csv provider needs exactly one of url or path")
    by_ours: dict[str, str] = {}
    for provider_sku, ours in (provider.get("sku_map") or {}).items():
        if ours in by_ours:
            # forwarded lines map ours -> theirs: two of theirs for one of ours is ambiguous
            fail(f"providers.{provider_id}.sku_map", f"provider SKUs {by_ours[ours]!r} and {provider_sku!r} "
                                                     f"both map to our {ours!r}; a forwarded {ours!r} could be "
                                                     "either (map each to its own SKU)")
            continue
        by_ours[ours] = provider_sku
    # Credentials travel with every request: over plain http anyone on the path reads them.
    # A 3PL simulated on this machine (tests, the sandbox) may use http on a loopback host.
    for key in ("base_url", "url"):
        url = provider.get(key)
        if url and not _https_or_loopback(url):
            shown = f", got {url!r}" if key == "base_url" else ""  # a feed URL may carry a token: never shown
            fail(f"providers.{provider_id}.{key}", f"must be an https:// address (http:// only for "
                                                   f"127.0.0.1 or localhost){shown}")


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# An address an alert can be mailed to (one mailbox, no display name, nothing that could add a header).
ALERT_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def _check_alerts(alerts: Mapping[str, Any], fail) -> None:
    """Where a shop's alerts go. The POST address is a secret (a chat webhook's address
    carries its token), so a problem with it never shows it."""
    seen: set[str] = set()
    for i, address in enumerate(alerts.get("emails") or ()):
        if not ALERT_EMAIL.fullmatch(address):
            fail(f"alerts.emails[{i}]", f"{address!r} is not an email address (like maker@example.com)")
        elif address.lower() in seen:
            fail(f"alerts.emails[{i}]", f"{address} is listed twice")
        seen.add(address.lower())
    url = alerts.get("post_url")
    if url and not _https_or_loopback(url):
        fail("alerts.post_url", "must be an https:// address (http:// only for 127.0.0.1 or localhost)")
    if alerts.get("signing_secret") and not url:
        fail("alerts.signing_secret", "only used with post_url: it signs what is posted there")
    kinds = list(alerts.get("kinds") or ())
    if len(set(kinds)) != len(kinds):
        fail("alerts.kinds", "a kind is listed twice")


def _https_or_loopback(url: str) -> bool:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:  # e.g. a broken [IPv6] host
        return False
    if not host:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS)


def _check_node_sources(doc: Mapping[str, Any], providers: Mapping[str, Mapping], regions: set[str], fail) -> None:
    claimed: dict[tuple[str, str | None], str] = {}
    for i, node in enumerate(doc["nodes"]):
        methods = node.get("shipping_methods") or {}
        forward = node.get("forward_orders")
        if (node.get("shipping_method") or methods) and not forward:
            key = "shipping_method" if node.get("shipping_method") else "shipping_methods"
            fail(f"nodes[{i}].{key}", "only used with forward_orders = true")
        for region_id in methods:
            if region_id not in regions:
                fail(f"nodes[{i}].shipping_methods", f"region {region_id!r} is not defined")
        if forward and not node.get("shipping_method"):
            if not methods:
                fail(f"nodes[{i}].shipping_method", "required to forward orders: the 3PL's name for the "
                                                    "service (or shipping_methods per region)")
            else:
                missing = sorted(regions - set(methods))
                if missing:
                    fail(f"nodes[{i}].shipping_methods", f"no method for region {', '.join(missing)} "
                                                         "(add them or a default shipping_method)")
        source = node.get("stock_source", "manual")
        if source == "manual":
            if forward:
                fail(f"nodes[{i}].forward_orders", "needs a stock_source provider to forward orders to")
            continue
        provider = providers.get(source)
        if provider is None:
            fail(f"nodes[{i}].stock_source", f"provider {source!r} is not defined "
                                             "(use \"manual\" or an id from providers)")
            continue
        location = node.get("provider_location")
        if provider["type"] != "csv" and not location:
            fail(f"nodes[{i}].provider_location", f"required: which {provider['type']} location is node "
                                                  f"{node['id']!r}")
        if forward and provider["type"] == "csv":
            fail(f"nodes[{i}].forward_orders", "a csv feed cannot receive orders")
        for key in FORWARD_REQUIRED.get(provider["type"], ()) if forward else ():
            if provider.get(key) in (None, ""):
                fail(f"providers.{source}.{key}",
                     f"required to forward orders to {provider['type']} (nodes[{i}].forward_orders)")
        key = (source, location)
        if key in claimed:
            fail(f"nodes[{i}].provider_location", f"{source} location {location!r} already feeds node {claimed[key]!r}")
        else:
            claimed[key] = node["id"]


def _check_planning(doc: Mapping[str, Any], nodes: set[str], tz: tzinfo | None, fail) -> None:
    planning, rebalance = doc.get("planning") or {}, doc.get("rebalance") or {}
    hub = planning.get("hub")
    if hub is not None and hub not in nodes:
        fail("planning.hub", f"node {hub!r} is not defined")
    for i, launch in enumerate(planning.get("launches") or ()):
        if tz is not None and aware(launch["ends"], tz) <= aware(launch["starts"], tz):
            fail(f"planning.launches[{i}].ends", "must be after starts")
    seen: set[tuple[str, str]] = set()
    for i, lane in enumerate(rebalance.get("lanes") or ()):
        for key in ("from_node", "to_node"):
            if lane[key] not in nodes:
                fail(f"rebalance.lanes[{i}].{key}", f"node {lane[key]!r} is not defined")
        if lane["from_node"] == lane["to_node"]:
            fail(f"rebalance.lanes[{i}]", "a transfer lane needs two different nodes")
        elif (lane["from_node"], lane["to_node"]) in seen:
            fail(f"rebalance.lanes[{i}]", f"lane {lane['from_node']} -> {lane['to_node']} is listed twice")
        seen.add((lane["from_node"], lane["to_node"]))
    for i, node in enumerate(doc["nodes"]):
        if node.get("shopify_location") and doc["platform"] != "shopify":
            fail(f"nodes[{i}].shopify_location", "is for Shopify shops")


def _unique(items: Iterable[Mapping], where: str, fail) -> set[str]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item["id"] in seen:
            fail(f"{where}[{i}].id", f"{item['id']!r} is defined twice")
        seen.add(item["id"])
    return seen


def _check_cycle(graph: Mapping[str, list[str]], where: str, key: str, fail) -> None:
    """One problem per cycle of ``graph`` (each reported once, from its smallest id)."""
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = path[path.index(node):] + [node]
            fail(where, f"{key} form a cycle: {' -> '.join(cycle)}")
            return
        state[node] = 1
        for nxt in graph.get(node, []):
            if nxt in graph and nxt != node:  # a self-reference has its own message
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(graph):
        visit(node, [])
