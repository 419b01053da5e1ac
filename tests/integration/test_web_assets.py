"""Vendored static files are exactly the pinned releases (sha256 in CHECKSUMS), every
one is listed, and no page loads anything from another origin."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import connector.web

WEB = Path(connector.web.__file__).parent
VENDOR = WEB / "static" / "vendor"


def _listed() -> dict[str, str]:
    listed = {}
    for line in (VENDOR / "CHECKSUMS").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            listed[name.lstrip("*")] = digest
    return listed


def test_every_vendored_file_matches_its_checksum():
    listed = _listed()
    assert listed, "CHECKSUMS lists nothing"
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, f"{name} differs from its pin"


def test_every_vendored_file_is_listed():
    present = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file() and p.name != "CHECKSUMS"}
    assert present == set(_listed())


APP_BRIDGE = '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>'


def test_templates_load_nothing_from_another_origin_and_every_asset_exists():
    for template in (WEB / "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        # App Bridge runs only from Shopify's CDN (app-ui.md §2): the one exception, first in
        # the head, on the bounce page and on pages shown inside the admin only.
        for at in [m.start() for m in re.finditer(re.escape(APP_BRIDGE), text)]:
            head = text[:at]
            assert "<head>" in head and "<link" not in head and "<script" not in head, template.name
            assert template.name == "bounce.html" or head.rstrip().endswith(
                '<meta name="shopify-api-key" content="{{ shopify_api_key }}">') and "{% if embedded %}" in head
        text = text.replace(APP_BRIDGE, "")
        assert not re.search(r'(src|href)="(https?:)?//', text), f"{template.name} loads from another origin"
        for asset in re.findall(r"url_for\('static', filename='([^']+)'\)", text):
            assert (WEB / "static" / asset).is_file(), f"{template.name}: {asset} missing"
