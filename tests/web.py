"""Helpers for the web page tests (and bench/settings_pages): users, CSRF tokens read from
the forms, signing in, and real values for page routes' URL arguments."""
from __future__ import annotations

import re

PASSWORD = "correct horse battery staple"
SHOPIFY_USER = "maker@candles.example"
WOO_USER = "grower@botanics.example"

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                   r'type="hidden" name="csrf_token" value="([^"]+)"')


def add_user(container, email: str, shop_id: str, password: str = PASSWORD):
    store = container.open_store()
    try:
        return container.users.add(store, email, password, shop_id)
    finally:
        store.close()


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the form on ``path`` (its secret sits in the client's session cookie)."""
    page = client.get(path)
    match = _CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}: {page.status_code}"
    return match.group(1) or match.group(2)


def sign_in(client, email: str, password: str = PASSWORD, **extra):
    return client.post("/login", data={"csrf_token": csrf_token(client), "email": email, "password": password,
                                       **extra})


def url_arguments(document: dict) -> dict[str, list[str]]:
    """Every real value a page route's URL argument may take in a shop, by the argument's
    name as routes spell it: from each list of tables (``nodes`` -> ``node_id``/``node``:
    each id; ``skus`` -> each pattern; ``..._index``: each position), each table of tables
    (``providers`` -> ``provider_id``/``provider``) and the routing modes."""
    values: dict[str, list[str]] = {}
    for key, value in document.items():
        singular = key[:-1] if key.endswith("s") else key
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            ids = [str(v.get("id", v.get("pattern"))) for v in value if v.get("id", v.get("pattern")) is not None]
            if ids:
                values |= {singular: ids, f"{singular}_id": ids}
            values[f"{singular}_index"] = [str(i) for i in range(len(value))]
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            values |= {singular: list(value), f"{singular}_id": list(value)}
    modes = list((document.get("routing") or {}).get("modes") or {}) or ["normal", "peak", "disruption"]
    values |= {"mode": modes, "mode_id": modes}
    if "skus" in values:
        values |= {"rule": values["sku_index"], "rule_index": values["sku_index"]}
    return values


def form_version(page: str) -> str:
    """The configuration version a settings form was loaded at (its hidden ``version`` field)."""
    return re.search(r'name="version" value="(\d+)"', page).group(1)


def sign_in_both_shops_users(client, container):
    """A user for each sample shop; the client signed in as the Shopify shop's."""
    from tests.conftest import SHOPIFY_SHOP, WOO_SHOP

    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    add_user(container, WOO_USER, WOO_SHOP)
    sign_in(client, SHOPIFY_USER)
    return client
