"""The app's first page (``/``, and inside the Shopify admin the application URL
``/shopify/app``): whether the network is fine, its setup status, today's figures and
what needs the creator, each item with its action beside it."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, render_template

from connector.services.home import home_view
from connector.web import current_store
from connector.web.actions import action_key
from connector.web.auth import login_required

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index(shop_id: str):
    return home_page(shop_id)


def home_page(shop_id: str):
    container = current_app.extensions["connector"]
    shop = container.shops.get(shop_id)
    if shop is None:
        abort(404, f"Shop {shop_id} is not configured on this service.")
    view = home_view(current_store(), shop, settings=container.settings, shopify_app=container.shopify_app,
                     now=container.clock())
    g.needs_you_count = len(view.needs_you)  # the navigation's count, without collecting them twice
    return render_template("home/index.html", shop=shop, view=view, action_key=action_key)
