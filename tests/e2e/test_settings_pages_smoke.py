"""Every settings page, found from the app's url_map and opened for each sample shop with
each of its real ids (every node, region, provider, mode, ...), so a page is covered the
day it is added: it answers 200, shows no Python internals (a repr, a traceback), and
every field on it has a label a screen reader can announce."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from itertools import product

import pytest
from flask import url_for

from tests.conftest import SHOPIFY_SHOP, WOO_SHOP
from tests.web import SHOPIFY_USER, WOO_USER, add_provider, add_user, sign_in, url_arguments

USERS = {SHOPIFY_SHOP: SHOPIFY_USER, WOO_SHOP: WOO_USER}
TRANSFERS = {SHOPIFY_SHOP: ("CANDLE-FIG", "central", "ne-micro"), WOO_SHOP: ("TERRARIUM-S", "uk-hub", "garage")}
# Text a page shows only when an object reached the template instead of its value.
PYTHON_INTERNALS = [
    re.compile(r"Traceback \(most recent call last\)"),
    re.compile(r"\bobject at 0x[0-9a-f]+"),
    re.compile(r"<(?:class|function|bound method|module|built-in) "),
    re.compile(r"<\w+\.\w+: [^>]*>"),  # an enum member's repr
    re.compile(r"\b[A-Z]\w+\((?:\w+=)"),  # a dataclass's or model's repr
    re.compile(r"\{'\w+': |\[\('|\bdatetime\.(?:datetime|date|time)\("),  # dict, tuple list, datetime reprs
    re.compile(r"\bUndefined\b|\bjinja2\."),
]
UNLABELLED_TYPES = {"hidden", "submit", "button", "image", "reset"}  # named by their value or not shown


class Page(HTMLParser):
    """The visible text of a page and its fields, with what labels each."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.fields: list[dict] = []
        self.label_for: set[str] = set()
        self._open_labels = 0
        self._hidden_depth = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "style", "template"):
            self._hidden_depth += 1
        elif tag == "label":
            self._open_labels += 1
            if a.get("for"):
                self.label_for.add(a["for"])
        elif tag in ("input", "select", "textarea") and (a.get("type") or "text").lower() not in UNLABELLED_TYPES:
            self.fields.append({"tag": tag, "name": a.get("name"), "id": a.get("id"), "wrapped": self._open_labels > 0,
                                "aria": bool(a.get("aria-label") or a.get("aria-labelledby"))})

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template"):
            self._hidden_depth -= 1
        elif tag == "label":
            self._open_labels = max(0, self._open_labels - 1)

    def handle_data(self, data):
        if not self._hidden_depth:
            self.text.append(data)

    def unlabelled(self) -> list[str]:
        return [f"<{f['tag']} name={f['name']!r} id={f['id']!r}>" for f in self.fields
                if not (f["wrapped"] or f["aria"] or (f["id"] and f["id"] in self.label_for))]

    def internals(self) -> list[str]:
        text = " ".join(self.text)
        return [m.group(0) for pattern in PYTHON_INTERNALS for m in pattern.finditer(text)]


def settings_urls(app, values: dict[str, list[str]]) -> list[str]:
    """Every GET route under /settings, once per combination of the shop's real values."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/settings") or "GET" not in rule.methods:
            continue
        names = sorted(rule.arguments)
        missing = [n for n in names if n not in values]
        assert not missing, f"{rule.rule}: teach tests/web.py url_arguments a value for {missing}"
        with app.test_request_context():
            urls += [url_for(rule.endpoint, **dict(zip(names, combo)))
                     for combo in product(*(values[n] for n in names))]
    return urls


@pytest.mark.parametrize("shop_id", [SHOPIFY_SHOP, WOO_SHOP])
def test_every_settings_page_answers_plainly_with_labelled_fields(app, container, store, clock, shop_id):
    add_user(container, USERS[shop_id], shop_id)
    add_provider(container, shop_id, "counts-sheet", {"type": "csv", "path": "counts.csv"})  # its pages too
    sku, from_node, to_node = TRANSFERS[shop_id]
    with store.write():  # a transfer awaiting a decision, for its page too
        store.add_transfer(shop_id, sku=sku, from_node=from_node, to_node=to_node, units=3, unit_cost=0.5,
                           lead_days=2, status="proposed", emergency=False, approval_reason="test", now=clock())
    client = app.test_client()
    assert sign_in(client, USERS[shop_id]).status_code == 302
    document, _ = container.shop_config.document(store, shop_id)
    values = url_arguments(document) | {"transfer_id": [str(t["id"]) for t in store.transfers(shop_id)]}
    urls = settings_urls(app, values)
    assert "/settings/" in urls and any(u.startswith("/settings/nodes/") for u in urls)  # the walk found pages
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        page = Page(response.get_data(as_text=True))
        assert not page.internals(), (url, page.internals())
        assert not page.unlabelled(), (url, page.unlabelled())


@pytest.mark.parametrize("html, finds", [
    ('<p>status: &lt;NodeStatus.ACTIVE: &#39;active&#39;&gt;</p>', "internals"),
    ("<td>NodeView(node=Node(id='x'))</td>", "internals"),
    ("<pre>Traceback (most recent call last):\n  File</pre>", "internals"),
    ("<p>{'central': 3}</p>", "internals"),
    ("<p>&lt;connector.domain.model.Node object at 0x7f3a2c&gt;</p>", "internals"),
    ('<form><input name="capacity" id="capacity"></form>', "unlabelled"),
    ('<label for="other">Capacity</label><select name="kind" id="kind"></select>', "unlabelled"),
    ("<textarea name=notes></textarea>", "unlabelled"),
], ids=["enum", "dataclass", "traceback", "dict", "object", "input", "select-wrong-for", "textarea"])
def test_the_checks_catch_what_they_look_for(html, finds):
    page = Page(html)
    assert (page.internals() if finds == "internals" else page.unlabelled())


@pytest.mark.parametrize("html", [
    '<label for="cap">Daily capacity</label><input id="cap" name="cap" type="number">',
    '<label>Offline <input type="checkbox" name="off"></label>',
    '<input name="q" aria-label="Search">',
    '<input type="hidden" name="version" value="3"><button type="submit">Save</button>',
    "<p>Status: offline (since 2026-12-07 10:00 EST), Priority 10. Backups: central, ne-micro.</p>",
    "<script>const a = {'x': 1};</script><p>Order #1001 (3 lines)</p>",
], ids=["label-for", "wrapped", "aria-label", "hidden-and-button", "plain-text", "script-ignored"])
def test_the_checks_pass_what_a_good_page_has(html):
    page = Page(html)
    assert not page.internals() and not page.unlabelled()
