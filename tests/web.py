"""Helpers for the web page tests (and bench/settings_pages): users, CSRF tokens read from
the forms, signing in, and real values for page routes' URL arguments."""
from __future__ import annotations

import re
from html.parser import HTMLParser

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


def add_provider(container, shop_id: str, provider_id: str, account: dict) -> int:
    """Give ``shop_id`` a 3PL connection (saved as any change is); the new version."""
    store = container.open_store()
    try:
        document, version = container.shop_config.document(store, shop_id)
        document.setdefault("providers", {})[provider_id] = account
        return container.shop_config.update(store, shop_id, document, version, "test")
    finally:
        store.close()


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"), "fields": []})
        elif not self.forms:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.forms[-1]["fields"].append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "button", "image", "reset"):
                self.forms[-1]["fields"].append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._options = a.get("name"), []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None and self.forms:
            picked = [v for v, selected in self._options if selected] or [v for v, _ in self._options[:1]]
            self.forms[-1]["fields"] += [(self._select, v) for v in picked]
            self._select = None


def form_data(page: str, action: str | None = None) -> list[tuple[str, str]]:
    """What a browser would post from ``page``'s form (the first with ``action``, else the
    last on the page): its inputs as shown, ticked boxes, chosen options; no button."""
    parser = _Forms()
    parser.feed(page)
    forms = [f for f in parser.forms if f["method"].lower() == "post" and (action is None or f["action"] == action)]
    assert forms, f"no form posting to {action}"
    return list(forms[0 if action else -1]["fields"])


def post_form(client, path: str, changes: dict | None = None, *, action: str | None = None,
              button: tuple[str, str] | None = ("save", "1"), drop: tuple[str, ...] = ()):
    """Load ``path``, change some fields (a list value ticks several boxes) and post the form."""
    from werkzeug.datastructures import MultiDict

    fields = [(k, v) for k, v in form_data(client.get(path).get_data(as_text=True), action)
              if k not in (changes or {}) and k not in drop]
    for key, value in (changes or {}).items():
        fields += [(key, v) for v in value] if isinstance(value, list) else [(key, value)]
    if button:
        fields.append(button)
    return client.post(action or path, data=MultiDict(fields))


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
    rules = values.get("sku_index", [])  # a SKU rule's page is by its position (none: no such page)
    values |= {"rule": rules, "rule_index": rules}
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
