"""The metrics page: how the network ships — on time, in full, split, exceptions, cost,
delivery days by region and stock-outs — for the orders of the last 7, 30 or 90 days,
for every place or one. Every figure comes from the kept counters
(``connector.services.metrics``), so the page costs the same at 100 orders or 100,000."""
from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, abort, current_app, render_template, request

from connector.domain.metrics import DEFINITIONS, shown
from connector.services.metrics import metrics, today
from connector.web import current_store
from connector.web.auth import login_required
from connector.web.charts import Series, bar_chart, line_chart

bp = Blueprint("metrics", __name__, url_prefix="/metrics")

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30


@bp.get("")
@login_required
def index(shop_id: str):
    container = current_app.extensions["connector"]
    shop = container.shops.get(shop_id)
    if shop is None:
        abort(404, f"Shop {shop_id} is not configured on this service.")
    problems = {}
    days = _period(request.args.get("days"), problems)
    node_id = request.args.get("node") or None
    if node_id is not None and node_id not in shop.network.nodes:
        problems["node"] = "That place is not one of this shop's; showing every place."
        node_id = None
    store = current_store()
    now = container.clock()
    until = today(store, shop_id, now)
    report = metrics(store, shop_id, since=until - timedelta(days=days - 1), until=until, node_id=node_id, now=now)
    node_names = {n.id: n.name for n in shop.network.nodes.values()}
    region_names = {r.id: r.name for r in shop.network.regions.values()}
    return render_template(
        "metrics/index.html", shop=shop, report=report, days=days, periods=PERIODS, node_id=node_id,
        problems=problems, node_names=node_names, region_names=region_names, defs=DEFINITIONS, shown=shown,
        on_time_chart=_on_time_chart(report, node_names), delivery_chart=_delivery_chart(report, region_names))


def _period(raw: str | None, problems: dict) -> int:
    if raw is None or raw == "":
        return DEFAULT_PERIOD
    if raw.isdigit() and int(raw) in PERIODS:
        return int(raw)
    problems["days"] = f"Choose 7, 30 or 90 days; showing the last {DEFAULT_PERIOD}."
    return DEFAULT_PERIOD


def _day_label(day: str) -> str:
    moment = date.fromisoformat(day)
    return f"{moment.day} {moment:%b}"


def _on_time_chart(report, node_names: dict[str, str]):
    """On-time rate per day the orders were placed, one line per place that shipped; None
    while nothing has shipped in the period."""
    if not report.has_shipments:
        return None
    series = [Series(node_names.get(node, node),
                     [(_day_label(day), None if f.on_time_rate is None else round(f.on_time_rate * 100, 1))
                      for day, f in by_day.items()])
              for node, by_day in report.node_days.items() if report.nodes[node].shipped]
    return line_chart(series, title="On-time ship rate by day the order was placed", y_label="Shipped on time (%)",
                      unit="%", y_min=0, y_max=100)


def _delivery_chart(report, region_names: dict[str, str]):
    """Average delivery days per region; None while no parcel has been reported delivered."""
    points = [(region_names.get(region, region or "Unknown region"), round(f.avg_delivery_days, 1))
              for region, f in report.regions.items() if f.avg_delivery_days is not None]
    if not points:
        return None
    return bar_chart([Series("Average delivery days", points)], title="Delivery days by region",
                     y_label="Days from order to delivery", unit="days", horizontal=True)
