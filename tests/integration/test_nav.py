"""The main navigation: one list of sections (connector/web/nav.py) on every page, the
page's own section marked for assistive technology, nothing for a visitor signed out."""
from __future__ import annotations

import re

from connector.web.nav import SECTIONS
from tests.conftest import SHOPIFY_SHOP
from tests.web import SHOPIFY_USER, add_user, sign_in


def _main_nav(text: str) -> list[tuple[str, bool]]:
    """(label, marked current) of each entry of the page's main navigation."""
    nav = re.search(r'<ul class="nav-links">(.*?)</ul>', text, re.S)
    if nav is None:
        return []
    return [(re.sub(r"<[^>]+>", "", label).strip(), bool(current))
            for current, label in re.findall(r'<li><a href="[^"]*"( aria-current="page")?>(.*?)</a></li>',
                                             nav.group(1), re.S)]


def test_every_section_links_to_a_page_of_the_app(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert [section.endpoint for section in SECTIONS if section.endpoint not in endpoints] == []


def test_each_page_marks_its_own_section(client, container):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    sign_in(client, SHOPIFY_USER)
    expected = [section.label for section in SECTIONS if not section.embedded_only]
    for path, current in (("/", "Home"), ("/settings/", "Settings"), ("/settings/nodes/central", "Settings"),
                          ("/settings/routing", "Settings")):
        entries = _main_nav(client.get(path).get_data(as_text=True))
        assert [label for label, _ in entries] == expected, path
        assert [label for label, marked in entries if marked] == [current], path


def test_a_visitor_signed_out_sees_no_sections(client):
    text = client.get("/login").get_data(as_text=True)
    assert _main_nav(text) == [] and 'class="brand" href="/login"' in text


def test_an_unknown_page_keeps_the_navigation_for_the_signed_in(client, container):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    sign_in(client, SHOPIFY_USER)
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert [label for label, marked in _main_nav(response.get_data(as_text=True)) if marked] == []
    assert "Home" in [label for label, _ in _main_nav(response.get_data(as_text=True))]
