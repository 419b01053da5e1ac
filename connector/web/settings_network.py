"""The network sections of the settings pages: regions, nodes and 3PL connections.

Each edits the shop's one configuration document through ``settings_forms`` (field names
are document paths; validated, versioned, audited): an edit form addresses its region or
node by position in the list it was loaded with, and the version the form carries refuses
the save when anyone changed the shop since (so positions cannot have moved). Removing a
region, node or account is a save of the document without it: the shop validation names
whatever still refers to it, shown beside the item.
"""
from __future__ import annotations

import logging
import re

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from connector.config import KNOWN_CAPABILITIES, InvalidShop
from connector.domain.model import ProviderError
from connector.services.node_status import node_statuses
from connector.services.setup_status import provider_health
from connector.shop_store import StaleVersion
from connector.web import current_store
from connector.web import settings_forms as forms
from connector.web.auth import login_required
from connector.web.settings import _actor, bp

log = logging.getLogger("connector.web")

IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ID_HELP = "Lower-case letters, digits and dashes, like nyc-metro. It cannot change later."

KINDS = [("central_warehouse", "Central warehouse"), ("regional_hub", "Regional hub"),
         ("micro_warehouse", "Micro-warehouse"), ("3pl", "3PL (fulfillment company)"),
         ("cold_storage", "Cold storage"), ("popup", "Pop-up shop"), ("event_storage", "Event storage"),
         ("dropship", "Dropship supplier"), ("local_partner", "Local partner"), ("garage", "Garage or studio")]
ROLES = [("evergreen", "Everyday stock"), ("launch_buffer", "Launch buffer"), ("event_support", "Event support"),
         ("regional_replenishment", "Regional top-up"), ("backup", "Backup only")]
CAPABILITIES = {"cold_chain": "Keeps things cold", "fragile": "Packs fragile items",
                "oversized": "Ships oversized items", "pickup": "Local pickup", "kitting": "Builds kits and bundles"}
STATUSES = [("active", "Active: takes orders"), ("paused", "Paused: takes no new orders for now"),
            ("offline", "Offline: closed, takes no orders")]

# Each 3PL type's fields: (key, label, kind, help, secret).
PROVIDER_TYPES = {
    "shipbob": "ShipBob", "shipmonk": "ShipMonk", "shiphero": "ShipHero", "extensiv": "Extensiv (3PL Central)",
    "csv": "Spreadsheet feed (CSV)",
}
BASE_URL = ("base_url", "API address (optional)", "text",
            "Leave empty for the live service. A test (sandbox) address must start with https://.", False)
PROVIDER_FIELDS = {
    "shipbob": [("token", "Personal access token", "text", "From ShipBob: Integrations › API Tokens.", True),
                ("channel_id", "Channel id", "text", "Needed to send orders: the channel your token may write to.",
                 False), BASE_URL],
    "shipmonk": [("token", "API key", "text", "From ShipMonk: Settings › API.", True),
                 ("store_id", "Store id", "int", "Needed to send orders to ShipMonk.", False), BASE_URL],
    "shiphero": [("refresh_token", "Refresh token", "text", "From ShipHero: My Account › API.", True),
                 ("customer_account_id", "Customer account id", "text",
                  "Only when your 3PL manages your account in ShipHero.", False), BASE_URL],
    "extensiv": [("client_id", "Client id", "text", "", True), ("client_secret", "Client secret", "text", "", True),
                 ("tpl", "3PL key", "text", "The key your warehouse gave you, like {a1b2...}.", True),
                 ("user_login_id", "User login id", "text", "", False),
                 ("customer_id", "Customer id", "int", "Your customer number at the warehouse.", False),
                 ("facility_id", "Facility id (optional)", "int", "Only stock of this warehouse building.", False),
                 ("carrier", "Carrier", "text", "Needed to send orders, like UPS.", False),
                 ("billing_code", "Billing code", "text", "Usually Prepaid.", False),
                 ("account", "Carrier account (optional)", "text", "", False), BASE_URL],
    "csv": [("url", "Feed address", "text",
             "An https:// link to the sheet's CSV export (kept secret). Or give a file on the server below.", True),
            ("path", "File on the server", "text", "Instead of an address: a CSV file the service can read.",
             False)],
}


# ---------------------------------------------------------------- helpers


def _container():
    return current_app.extensions["connector"]


def _index(items: list, item_id: str) -> int:
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("id") == item_id:
            return index
    abort(404)  # also another shop's: this shop has no such item


def _where(document: dict, path: str) -> str:
    """A problem's place in words: ``nodes[1].lanes[0].region`` -> 'Node "Northeast micro" (lanes)'."""
    match = re.match(r"^(regions|nodes)\[(\d+)\](?:\.(\w+))?", path)
    if match:
        items = document.get(match.group(1)) or []
        index = int(match.group(2))
        name = items[index].get("name") or items[index].get("id") if index < len(items) else "?"
        kind = "Region" if match.group(1) == "regions" else "Node"
        return f'{kind} "{name}"' + (f" ({match.group(3).replace('_', ' ')})" if match.group(3) else "")
    return {"default_region": "Store settings (default region)", "planning.hub": "Planning (hub)"}.get(
        path, path.split(".")[0].replace("_", " ").capitalize())


def _problems(document: dict, errors: dict[str, str]) -> list[str]:
    return [f"{_where(document, path)}: {message}" if path else message for path, message in errors.items()]


def _save_or_errors(shop_id: str, document: dict, fields, version, result: forms.FormResult | None = None):
    """Save ``document``; (None, None) when saved, else (errors placed on the fields, stale).
    With the form's ``result``, a problem in a row lands on that row as the page shows it."""
    outcome = forms.save(shop_id, document, version, _actor())
    if outcome.saved:
        flash(f"Saved (version {outcome.version}).")
        return None, None
    errors = result.as_shown(outcome.errors) if result is not None else outcome.errors
    return forms.placed(errors, fields), outcome.stale


def _remove(shop_id: str, key: str, item_id: str):
    """Save the document without one region or node; the problems that stops it, or None."""
    document, version = forms.load(shop_id)
    items = document.get(key) or []
    index = _index(items, item_id)
    if str(version) != request.form.get("version"):
        return {"": "Someone saved this shop's settings after you opened this page. Nothing was removed: "
                    "the page now shows their change."}, document
    del items[index]
    outcome = forms.save(shop_id, document, version, _actor(), reason=f"removed {key[:-1]} {item_id}")
    if outcome.saved:
        flash(f"Removed {item_id} (version {outcome.version}).")
        return None, document
    return outcome.errors if outcome.errors else {"": outcome.stale}, document


# ---------------------------------------------------------------- regions


@bp.get("/regions")
@login_required
def regions(shop_id: str):
    return _regions_page(shop_id)


def _regions_page(shop_id: str, refused: dict | None = None, status: int = 200):
    document, version = forms.load(shop_id)
    return render_template("settings/regions.html", document=document, version=version,
                           regions=document.get("regions") or [], refused=refused or {}), status


@bp.route("/regions/new", methods=("GET", "POST"))
@login_required
def region_new(shop_id: str):
    return _region_form(shop_id, None)


@bp.route("/regions/<region_id>", methods=("GET", "POST"))
@login_required
def region_edit(shop_id: str, region_id: str):
    return _region_form(shop_id, region_id)


@bp.post("/regions/<region_id>/remove")
@login_required
def region_remove(shop_id: str, region_id: str):
    problems, document = _remove(shop_id, "regions", region_id)
    if problems is None:
        return redirect(url_for("settings.regions"))
    return _regions_page(shop_id, {region_id: _problems(document, problems)}, 409)


def _region_form(shop_id: str, region_id: str | None):
    document, version = forms.load(shop_id)
    items = document.setdefault("regions", [])
    index = _index(items, region_id) if region_id is not None else len(items)
    if region_id is None:
        items.append({})
    fields = _region_fields(document, index, new=region_id is None)
    errors, raw, stale = {}, {}, None
    if request.method == "POST":
        result = forms.apply_form(document, request.form, fields)
        region = forms.get_path(result.document, f"regions[{index}]") or {}
        for key in ("countries", "provinces"):  # codes are capitals; typed "us" means US
            if isinstance(region.get(key), list):
                region[key] = [code.upper() for code in region[key]]
        if isinstance(region.get("postal_prefixes"), list):
            region["postal_prefixes"] = [_postal_prefix(p) for p in region["postal_prefixes"]]
        errors, raw, document = result.errors, result.raw, result.document
        if region_id is None:
            errors.update(_new_id_problem(items[:index], region.get("id"), f"regions[{index}].id"))
        if not errors:
            errors, stale = _save_or_errors(shop_id, document, fields, request.form.get("version"))
            if errors is None:
                return redirect(url_for("settings.regions"))
    return render_template("settings/region_form.html", document=document, version=version, fields=fields,
                           errors=errors, raw=raw, stale=stale, index=index, region_id=region_id)


def _postal_prefix(text: str) -> str:
    """"us:100" or "US 100" -> "US:100"."""
    match = re.fullmatch(r"([A-Za-z]{2})\s*[: ]\s*(.+)", text.strip())
    return f"{match.group(1).upper()}:{match.group(2).strip()}" if match else text


def _new_id_problem(existing: list, new_id, path: str) -> dict[str, str]:
    if new_id and not IDENTIFIER.match(str(new_id)):
        return {path: ID_HELP}
    if new_id and any(isinstance(item, dict) and item.get("id") == new_id for item in existing):
        return {path: f"{new_id} is already used: pick another"}
    return {}


def _region_fields(document: dict, index: int, *, new: bool) -> list[forms.Field]:
    others = [(r["id"], f"{r.get('name') or r['id']}") for i, r in enumerate(document.get("regions") or [])
              if i != index and isinstance(r, dict) and r.get("id")]
    at = f"regions[{index}]"
    fields = [forms.Field(f"{at}.id", "Short id", help=ID_HELP, optional=False)] if new else []
    return fields + [
        forms.Field(f"{at}.name", "Name", help="As you call it, like New York City metro.", optional=False),
        forms.Field(f"{at}.promise_days", "Delivery promise (days)", "int",
                    help="How many days you promise buyers here.", optional=False),
        forms.Field(f"{at}.countries", "Countries", "lines",
                    help="Two-letter codes, comma-separated, like US, CA."),
        forms.Field(f"{at}.provinces", "States or provinces", "lines",
                    help="Country and state codes, like US-NY, US-NJ, CA-ON."),
        forms.Field(f"{at}.postal_prefixes", "Postal code starts", "lines",
                    help="Country and the start of the postal code, like US:100, US:112, GB:EC1."),
        forms.Field(f"{at}.fallback", "When no node here can deliver in time, try", "choice", tuple(others),
                    help="Another region whose (longer) promise then applies."),
    ]


# ---------------------------------------------------------------- nodes


@bp.get("/nodes")
@login_required
def nodes(shop_id: str):
    return _nodes_page(shop_id)


def _nodes_page(shop_id: str, refused: dict | None = None, status: int = 200):
    shop = _container().shops.get(shop_id)
    if shop is None:
        abort(404)
    document, version = forms.load(shop_id)
    views = node_statuses(current_store(), shop, _container().inbox.routing, _container().clock())
    return render_template("settings/nodes.html", shop=shop, views=views, version=version,
                           refused=refused or {}), status


@bp.route("/nodes/new", methods=("GET", "POST"))
@login_required
def node_new(shop_id: str):
    return _node_form(shop_id, None)


@bp.route("/nodes/<node_id>/edit", methods=("GET", "POST"))
@login_required
def node_edit(shop_id: str, node_id: str):
    return _node_form(shop_id, node_id)


@bp.post("/nodes/<node_id>/remove")
@login_required
def node_remove(shop_id: str, node_id: str):
    problems, document = _remove(shop_id, "nodes", node_id)
    if problems is None:
        return redirect(url_for("settings.nodes"))
    return _nodes_page(shop_id, {node_id: _problems(document, problems)}, 409)


@bp.post("/nodes/<node_id>/status")
@login_required
def node_status(shop_id: str, node_id: str):
    """The status switch: as `connector nodes status` does it (a reason, audited with it)."""
    document, _ = forms.load(shop_id)
    _index(document.get("nodes") or [], node_id)
    status, reason = request.form.get("status", ""), (request.form.get("reason") or "").strip()
    errors = {}
    if status not in {value for value, _ in STATUSES}:
        errors["status"] = "pick one of the choices"
    if not reason:
        errors["reason"] = "say why (it is kept in the history)"
    stale = None
    if not errors:
        try:
            version = int(request.form.get("version", ""))
            saved = _container().shop_config.set_node_status(current_store(), shop_id, node_id, status, reason,
                                                              _actor(), expected_version=version)
        except (ValueError, StaleVersion):
            stale = ("Someone saved this shop's settings after you opened this page. Nothing was saved: "
                     "check the status below, then switch it again.")
        except InvalidShop as exc:
            errors["status"] = "; ".join(p.message for p in exc.problems)
        else:
            flash(f"{node_id} is now {status} (version {saved}).")
            return redirect(url_for("settings.node_edit", node_id=node_id))
    return _node_form(shop_id, node_id, status_form={"errors": errors, "stale": stale, "status": status,
                                                     "reason": reason})


def _node_form(shop_id: str, node_id: str | None, status_form: dict | None = None):
    document, version = forms.load(shop_id)
    items = document.setdefault("nodes", [])
    index = _index(items, node_id) if node_id is not None else len(items)
    if node_id is None:
        items.append({})  # a new node: its lanes start as the one empty row
    fields = _node_fields(shop_id, document, index, new=node_id is None)
    errors, raw, stale = {}, {}, None
    node = document["nodes"][index]
    if request.method == "POST" and status_form is None:
        result = forms.apply_form(document, request.form, fields)
        node = result.document["nodes"][index]
        node.setdefault("lanes", [])  # every lane removed: "at least 1", not a missing key
        location = node.get("shopify_location")
        if isinstance(location, str):
            node["shopify_location"] = shopify_location_gid(location)
        # The page comes back as posted (its rows where they were, what was typed in them).
        errors, raw = result.errors, result.raw
        if node_id is None:
            errors.update(_new_id_problem(items[:index], node.get("id"), f"nodes[{index}].id"))
        if not errors:
            errors, stale = _save_or_errors(shop_id, result.document, fields, request.form.get("version"), result)
            if errors is None:
                return redirect(url_for("settings.node_edit", node_id=node["id"]))
    view = None
    if node_id is not None:
        shop = _container().shops.get(shop_id)
        views = node_statuses(current_store(), shop, _container().inbox.routing, _container().clock()) if shop else []
        view = next((v for v in views if v.node.id == node_id), None)
    groups = _node_groups(shop_id, document, index, new=node_id is None)
    # Forwarding stays folded away unless the node forwards orders or a problem is in it.
    folded = {heading for heading, specs in groups[-1:]
              if not node.get("forward_orders") and not errors.keys() & {spec.path for spec in specs}}
    return render_template("settings/node_form.html", document=document, version=version, fields=fields,
                           groups=groups, folded=folded,
                           errors=errors, raw=raw, stale=stale, index=index, node_id=node_id, view=view,
                           statuses=STATUSES, status_form=status_form or {"errors": {}},
                           current_status=(items[index].get("status") or "active") if node_id else None)


def shopify_location_gid(text: str) -> str:
    """What a creator may paste for a Shopify location, as its id: the number, the admin page's
    address (…/settings/locations/123) or the id itself (gid://shopify/Location/123)."""
    text = text.strip()
    match = re.fullmatch(r"(?:gid://shopify/Location/|\S*/locations/)?(\d+)/?", text)
    return f"gid://shopify/Location/{match.group(1)}" if match else text


def shopify_location_choices(shop_id: str) -> list[tuple[str, str]] | None:
    """The store's own locations to pick a node's from, or None (the page then takes the
    location's number). Offered when the container can reach the shop's Admin API:
    ``container.shopify_install(shop)`` -> ``adapters.shopify_install.ShopifyInstall`` or None."""
    if "shopify_locations" not in g:  # asked once per request (the form is built more than once)
        g.shopify_locations = _ask_shopify_locations(shop_id)
    return g.shopify_locations


def _ask_shopify_locations(shop_id: str) -> list[tuple[str, str]] | None:
    container = _container()
    install_for = getattr(container, "shopify_install", None)
    shop = container.shops.get(shop_id)
    if install_for is None or shop is None or shop.platform != "shopify":
        return None
    install = install_for(shop)
    if install is None:
        return None
    try:
        locations = install.locations()
    except ProviderError as exc:  # the store did not answer: the number can still be typed
        log.warning("shop %s: could not list Shopify locations: %s", shop_id, exc)
        return None
    return [(loc.gid, loc.name + ("" if loc.active else " (inactive)")) for loc in locations]


def _node_fields(shop_id: str, document: dict, index: int, *, new: bool) -> list:
    return [spec for _, specs in _node_groups(shop_id, document, index, new=new) for spec in specs]


def _node_groups(shop_id: str, document: dict, index: int, *, new: bool) -> list[tuple[str, list]]:
    """The node form's fields in the groups the page shows them in: (heading, fields)."""
    at = f"nodes[{index}]"
    regions = [(r["id"], r.get("name") or r["id"]) for r in document.get("regions") or [] if isinstance(r, dict)]
    others = [(n["id"], n.get("name") or n["id"]) for i, n in enumerate(document.get("nodes") or [])
              if i != index and isinstance(n, dict) and n.get("id")]
    providers = [("manual", "Typed in by hand (no 3PL)")] + [
        (pid, f"{pid} ({PROVIDER_TYPES.get(p.get('type'), p.get('type'))})")
        for pid, p in (document.get("providers") or {}).items()]
    basics: list = [forms.Field(f"{at}.id", "Short id", help=ID_HELP, optional=False)] if new else []
    basics += [
        forms.Field(f"{at}.name", "Name", help="Where it is, like Holiday pop-up (SoHo).", optional=False),
        forms.Field(f"{at}.kind", "Kind of place", "choice", tuple(KINDS), optional=False),
        forms.Field(f"{at}.role", "Role", "choice", tuple(ROLES), help="Empty: everyday stock."),
        forms.Field(f"{at}.capabilities", "What it can handle", "multi",
                    tuple((c, CAPABILITIES.get(c, c)) for c in sorted(KNOWN_CAPABILITIES))),
    ]
    when = [
        forms.Field(f"{at}.cutoff", "Order cutoff (local time)", "time",
                    help="Orders after this ship tomorrow; empty: no cutoff."),
        forms.Field(f"{at}.daily_capacity", "Orders per day at most", "int", help="Empty: no limit."),
        forms.Field(f"{at}.priority", "Priority", "int", help="Lower numbers are preferred. Empty: 100."),
        forms.Field(f"{at}.backups", "When it cannot ship, use", "multi", tuple(others)),
        forms.Field(f"{at}.active_from", "Open from", "datetime",
                    help="For a pop-up or event: orders go here only between these times. Empty: always open."),
        forms.Field(f"{at}.active_until", "Open until", "datetime"),
    ]
    stored = forms.get_path(document, f"{at}.lanes")
    lanes = [forms.Rows(f"{at}.lanes", (
        forms.Field("region", "Region", "choice", tuple(regions), optional=False),
        forms.Field("transit_days", "Days on the way", "int", optional=False),
        forms.Field("cost_per_order", "Cost per order", "float", optional=False),
    ), len(stored) if isinstance(stored, list) else 0)]
    stock = [
        forms.Field(f"{at}.stock_source", "Stock counts come from", "choice", tuple(providers),
                    help="A 3PL connection, or typed in by hand. Empty: typed in by hand."),
        forms.Field(f"{at}.provider_location", "Warehouse id at the 3PL", help=(
            "Which of the 3PL's warehouses this is (its fulfillment center or facility number).")),
    ]
    if document.get("platform") == "shopify":
        choices = shopify_location_choices(shop_id)
        current = (document.get("nodes") or [{}])[index].get("shopify_location") if index < len(
            document.get("nodes") or []) else None
        if choices is not None and current and current not in dict(choices):
            # kept (not silently cleared by the next save) though the store no longer lists it
            choices = [*choices, (current, f"{current} (not in your store's list)")]
        if choices is not None:
            stock.append(forms.Field(f"{at}.shopify_location", "Shopify location", "choice", tuple(choices),
                                     help="The location in your Shopify admin that shows this stock."))
        else:
            stock.append(forms.Field(f"{at}.shopify_location", "Shopify location", help=(
                "In your Shopify admin open Settings › Locations and click the location: paste the page's "
                "address, or the number at its end. Empty: this stock is not shown in Shopify.")))
    forwarding = [
        forms.Field(f"{at}.forward_orders", "Send its orders to the 3PL", "bool",
                    help="Off when the 3PL's own Shopify or WooCommerce app picks orders up."),
        forms.Field(f"{at}.shipping_method", "Shipping method at the 3PL", help=(
            "The 3PL's name for the service, like Standard. Needed to send orders.")),
    ]
    forwarding += [forms.Field(f"{at}.shipping_methods.{rid}", f"Shipping method for {name}",
                               help="Only where it differs, like Next Day.") for rid, name in regions]
    return [("About it", basics), ("When and how much", when), ("Where it ships", lanes),
            ("Stock", stock), ("Sending orders to a 3PL", forwarding)]


# ---------------------------------------------------------------- 3PL connections


@bp.get("/providers")
@login_required
def providers(shop_id: str):
    return _providers_page(shop_id)


def _providers_page(shop_id: str, refused: dict | None = None, tested: dict | None = None,
                    new_errors: dict | None = None, status: int = 200):
    _, version = forms.load(shop_id)
    shop = _container().shops.get(shop_id)
    rows = sorted(provider_health(current_store(), shop), key=lambda health: health.id) if shop else []
    return render_template("settings/providers.html", rows=rows, version=version, types=PROVIDER_TYPES,
                           refused=refused or {}, tested=tested or {}, new_errors=new_errors or {},
                           timezone=shop.timezone if shop else "UTC"), status


@bp.route("/providers/new", methods=("GET", "POST"))
@login_required
def provider_new(shop_id: str):
    """Step 1 (the list page's small form) names the account and its type; step 2 is its form."""
    if "type" not in request.values and "id" not in request.values:
        return _providers_page(shop_id)  # nothing asked yet: the list with its "Add a connection" form
    kind, provider_id = request.values.get("type", ""), (request.values.get("id") or "").strip()
    document, _ = forms.load(shop_id)
    problems = {}
    if kind not in PROVIDER_TYPES:
        problems["type"] = "pick one of the choices"
    if not IDENTIFIER.match(provider_id):
        problems["id"] = ID_HELP
    elif provider_id in (document.get("providers") or {}) or provider_id == "manual":
        problems["id"] = f"{provider_id} is already used: pick another"
    if problems:
        return _providers_page(shop_id, new_errors=problems, status=422)
    return _provider_form(shop_id, provider_id, kind)


@bp.route("/providers/<provider_id>/edit", methods=("GET", "POST"))
@login_required
def provider_edit(shop_id: str, provider_id: str):
    document, _ = forms.load(shop_id)
    account = (document.get("providers") or {}).get(provider_id)
    if not isinstance(account, dict):
        abort(404)
    return _provider_form(shop_id, provider_id, account.get("type"))


def _provider_form(shop_id: str, provider_id: str, kind: str):
    document, version = forms.load(shop_id)
    new = provider_id not in (document.get("providers") or {})
    document.setdefault("providers", {}).setdefault(provider_id, {"type": kind})
    fields = _provider_fields(provider_id, kind)
    errors, raw, stale = {}, {}, None
    if request.method == "POST":
        result = forms.apply_form(document, request.form, fields)
        document, errors, raw = result.document, result.errors, result.raw
        if not errors:
            errors, stale = _save_or_errors(shop_id, document, fields, request.form.get("version"))
            if errors is None:
                return redirect(url_for("settings.providers"))
    return render_template("settings/provider_form.html", document=document, version=version, fields=fields,
                           errors=errors, raw=raw, stale=stale, provider_id=provider_id, kind=kind, new=new,
                           type_label=PROVIDER_TYPES.get(kind, kind))


def _provider_fields(provider_id: str, kind: str) -> list[forms.Field]:
    at = f"providers.{provider_id}"
    return [forms.Field(f"{at}.{key}", label, field_kind, help=help_text, secret=secret)
            for key, label, field_kind, help_text, secret in PROVIDER_FIELDS.get(kind, [])]


@bp.post("/providers/<provider_id>/remove")
@login_required
def provider_remove(shop_id: str, provider_id: str):
    document, version = forms.load(shop_id)
    if provider_id not in (document.get("providers") or {}):
        abort(404)
    if str(version) != request.form.get("version"):
        return _providers_page(shop_id, {provider_id: [
            "Someone saved this shop's settings after you opened this page. Nothing was removed."]}, status=409)
    del document["providers"][provider_id]
    outcome = forms.save(shop_id, document, version, _actor(), reason=f"removed 3PL connection {provider_id}")
    if outcome.saved:
        flash(f"Removed {provider_id} (version {outcome.version}).")
        return redirect(url_for("settings.providers"))
    problems = outcome.errors or {"": outcome.stale}
    return _providers_page(shop_id, {provider_id: _problems(document, problems)}, status=409)


@bp.post("/providers/<provider_id>/test")
@login_required
def provider_test(shop_id: str, provider_id: str):
    """Build the saved account's adapter as the sync does and ask it whether it works."""
    container = _container()
    shop = container.shops.get(shop_id)
    if shop is None or provider_id not in shop.providers:
        abort(404)
    try:
        container.sync.warehouses(shop_id, provider_id).check()
    except ProviderError as exc:  # the adapters' messages never carry a credential
        outcome = (False, str(exc))
    except ValueError as exc:  # the account's settings cannot make an adapter (e.g. a feed's address)
        outcome = (False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a page, never a 500; the type only (a message might carry a secret)
        log.error("shop %s: testing 3PL connection %s failed: %s", shop_id, provider_id, type(exc).__name__)
        outcome = (False, "The test failed unexpectedly; the error was logged for the service's operator.")
    else:
        outcome = (True, "Connected: the 3PL accepted the credentials and answered.")
    return _providers_page(shop_id, tested={provider_id: outcome})
