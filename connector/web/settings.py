"""The settings pages of the signed-in user's shop (read-only for now): connection
status, and each node as routing treats it."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from connector.services.node_status import node_statuses
from connector.web import current_store
from connector.web.auth import login_required

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.get("/")
@login_required
def status(shop_id: str):
    shop, views = _shop_nodes(shop_id)
    return render_template("settings/status.html", shop=shop, nodes=views)


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
