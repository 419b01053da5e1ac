"""The inventory page: every node × SKU with its stock and the planning's figures, the
stock-out risks first; and one SKU's page with its projected stock per node (charts)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from connector.inventory_store import Filters
from connector.services.inventory import inventory_page, sku_detail
from connector.web import current_store
from connector.web.auth import login_required
from connector.web.charts import Series, bar_chart, line_chart

bp = Blueprint("inventory", __name__, url_prefix="/inventory")

MAX_FILTER_LENGTH = 100


@bp.get("")
@login_required
def index(shop_id: str):
    container = current_app.extensions["connector"]
    shop = _shop(shop_id)
    filters = Filters(sku_text=request.args.get("sku", "")[:MAX_FILTER_LENGTH],
                      node_id=request.args.get("node", "")[:MAX_FILTER_LENGTH],
                      category=request.args.get("category", "")[:MAX_FILTER_LENGTH],
                      at_risk=request.args.get("at_risk") == "1")
    page = inventory_page(current_store(), shop, filters, _page_number(), container.clock())
    # The filters as the pager's links carry them (the applied ones only).
    page_args = {name: value for name, value in (("sku", page.filters.sku_text), ("node", page.filters.node_id),
                                                  ("category", page.filters.category),
                                                  ("at_risk", "1" if page.filters.at_risk else ""))
                 if value}
    return render_template("inventory/index.html", shop=shop, view=page, page_args=page_args)


@bp.get("/<path:sku>")
@login_required
def sku(shop_id: str, sku: str):
    container = current_app.extensions["connector"]
    shop = _shop(shop_id)
    detail = sku_detail(current_store(), shop, sku, container.clock())
    if detail is None:  # also another shop's SKU: this shop has none of it
        abort(404, f"This shop has no stock or plan for the SKU “{sku}”.")
    labels = ["Today"] + [f"{day.day} {day:%b}" for day in detail.days[1:]]
    projection = line_chart(
        [Series(name, list(zip(labels, p.units))) for name, p in detail.projections],
        title=f"{sku}: projected sellable units per place, next {len(labels)} days", y_label="Units",
        unit="units")
    stock = bar_chart(
        [Series("Sellable", [(r.node_name, r.sellable) for r in detail.rows]),
         Series("Reserved (ours)", [(r.node_name, r.reserved) for r in detail.rows]),
         Series("In transit toward it", [(r.node_name, r.in_transit_toward) for r in detail.rows])],
        title=f"{sku}: stock by place", y_label="Units", unit="units", horizontal=True)
    return render_template("inventory/sku.html", shop=shop, detail=detail, projection=projection, stock=stock)


def _shop(shop_id: str):
    shop = current_app.extensions["connector"].shops.get(shop_id)
    if shop is None:
        abort(404, f"Shop {shop_id} is not configured on this service.")
    return shop


def _page_number() -> int:
    try:
        return int(request.args.get("page", "1"))
    except ValueError:
        return 1
