"""The settings pages of the signed-in user's shop: connection status, each node as
routing treats it, and the sections that edit the shop's configuration (each through
``settings_forms``: one document, saved whole, validated, versioned, audited)."""
from __future__ import annotations

from zoneinfo import available_timezones

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from connector.services.node_status import node_statuses
from connector.services.setup_status import provider_health, webhook_health
from connector.web import current_store
from connector.web import settings_forms as forms
from connector.web.auth import current_user, login_required

bp = Blueprint("settings", __name__, url_prefix="/settings")

# The sections, in the order of the section navigation: (endpoint, label). One list here,
# not each module adding its own on import: the order must not depend on which module a
# process happens to import first.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("settings.status", "Status"), ("settings.store", "Store"),
    ("settings.regions", "Regions"), ("settings.nodes", "Nodes"), ("settings.providers", "3PL connections"),
    ("settings.sku_rules", "SKU rules"), ("settings.routing", "Routing"), ("settings.planning", "Planning"),
    ("settings.transfers", "Transfers"), ("settings.preview", "Routing preview"), ("settings.alerts", "Alerts"),
    ("settings.history", "History"),
)


@bp.context_processor
def _form_helpers():
    return {"field_value": forms.field_value, "unplaced": forms.unplaced, "sections": SECTIONS,
            "document_has": lambda document, path: forms.get_path(document, path) not in (None, "")}


@bp.get("/")
@login_required
def status(shop_id: str):
    shop, views = _shop_nodes(shop_id)
    store = current_store()
    return render_template("settings/status.html", shop=shop, nodes=views, providers=provider_health(store, shop),
                           webhooks=webhook_health(store, shop))


@bp.get("/nodes/<node_id>")
@login_required
def node(shop_id: str, node_id: str):
    shop, views = _shop_nodes(shop_id)
    view = next((v for v in views if v.node.id == node_id), None)
    if view is None:  # also another shop's node: this shop has no such node
        abort(404)
    return render_template("settings/node.html", shop=shop, view=view)


def _shop_nodes(shop_id: str):
    container = current_app.extensions["connector"]
    shop = container.shops.get(shop_id)
    if shop is None:
        abort(404, f"Shop {shop_id} is not configured on this service.")
    return shop, node_statuses(current_store(), shop, container.inbox.routing, container.clock())


def _actor() -> str:
    """Who a save is audited as: the signed-in person."""
    user = current_user()
    return f"web:{user.email}" if user is not None else "web"


@bp.route("/store", methods=("GET", "POST"))
@login_required
def store(shop_id: str):
    """The shop-wide basics: its time zone (cutoffs, windows, nightly jobs) and the region
    an address that matches no region falls back to."""
    document, version = forms.load(shop_id)
    fields = _store_fields(document)
    errors: dict[str, str] = {}
    raw: dict[str, str] = {}
    stale = None
    if request.method == "POST":
        result = forms.apply_form(document, request.form, fields)
        errors, raw = result.errors, result.raw
        if not errors:
            outcome = forms.save(shop_id, result.document, request.form.get("version"), _actor())
            if outcome.saved:
                flash(f"Saved (version {outcome.version}).")
                return redirect(url_for("settings.store"))
            errors, stale = outcome.errors, outcome.stale
    return render_template("settings/store.html", document=document, version=version, fields=fields,
                           errors=errors, raw=raw, stale=stale)


def _store_fields(document: dict) -> list[forms.Field]:
    regions = [(r["id"], f"{r.get('name') or r['id']} ({r['id']})") for r in document.get("regions") or []]
    return [
        forms.Field("timezone", "Time zone", "choice", tuple((z, z) for z in sorted(available_timezones())),
                    help="Cutoffs, pop-up windows and the nightly jobs use this clock.", optional=False),
        forms.Field("default_region", "Region for addresses no region matches", "choice", tuple(regions),
                    help="Leave empty to list such orders as exceptions instead."),
    ]


# Sections in their own modules, on this blueprint (imported last: they use bp).
from connector.web import settings_alerts, settings_network, settings_routing  # noqa: E402,F401
