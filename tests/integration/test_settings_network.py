"""The network sections of the settings pages (regions, nodes, 3PL connections), posted as
a browser posts them: each form's valid and invalid path, problems beside their field, a
stale form refused, removals the rest of the settings still need refused beside the item,
secrets never in a page; and the rows (lanes) the shared form mechanism adds and removes."""
from __future__ import annotations

import re
from html import unescape

import pytest
import responses
from werkzeug.datastructures import MultiDict

from adapters import shipbob
from adapters.shopify_install import ShopLocation
from connector.domain.model import ProviderUnavailable
from connector.web.settings_forms import Field, Rows, apply_form, field_value, placed
from tests.conftest import SHOPIFY_SHOP, WOO_SHOP
from tests.web import SHOPIFY_USER, WOO_USER, add_provider, add_user, form_data, post_form, sign_in

TOKEN = "pat-SECRET-candles-0042"


@pytest.fixture
def signed_in(client, container):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    add_user(container, WOO_USER, WOO_SHOP)
    sign_in(client, SHOPIFY_USER)
    return client


def _doc(container, store, shop_id=SHOPIFY_SHOP):
    return container.shop_config.document(store, shop_id)


def _node(document, node_id):
    return next(n for n in document["nodes"] if n["id"] == node_id)


def _error(page: str, path: str) -> str | None:
    """The message shown right under the input named ``path`` (its -error element)."""
    field_id = "f-" + path.replace(".", "-").replace("[", "-").replace("]", "")
    match = re.search(rf'id="{re.escape(field_id)}-error"[^>]*>([^<]*)<', page)
    return unescape(match.group(1)) if match else None


def _text(response) -> str:
    return unescape(response.get_data(as_text=True))


# ---------------------------------------------------------------- the mechanism: rows, boxes, times


LANES = Rows("nodes[0].lanes", (Field("region", "Region", "choice", (("a", "A"), ("b", "B")), optional=False),
                                Field("transit_days", "Days", "int", optional=False)), 1)


def _lane_form(rows: list[tuple[str, str]], **extra) -> MultiDict:
    data = MultiDict(extra)
    for index, (region, days) in enumerate(rows):
        data.add(f"nodes[0].lanes[{index}].region", region)
        data.add(f"nodes[0].lanes[{index}].transit_days", days)
    return data


def test_rows_keep_what_no_input_shows_and_a_problem_stays_on_its_row():
    document = {"nodes": [{"id": "n", "lanes": [{"region": "a", "transit_days": 1, "cost_per_order": 2.5}]}]}
    result = apply_form(document, _lane_form([("a", "3"), ("b", "x")]), [LANES])
    assert result.document["nodes"][0]["lanes"] == [{"region": "a", "transit_days": 3, "cost_per_order": 2.5},
                                                    {"region": "b"}]  # keys no input shows are kept
    assert result.errors == {"nodes[0].lanes[1].transit_days": "must be a whole number"}  # the new row's
    assert result.raw["nodes[0].lanes[1].transit_days"] == "x"
    assert apply_form(document, _lane_form([("a", "1"), ("", "")]), [LANES]).document == document  # blank: no row


def test_a_removed_row_is_dropped_and_the_next_moves_up_with_what_was_typed():
    document = {"nodes": [{"id": "n", "lanes": [{"region": "a", "transit_days": 1}, {"region": "b"}]}]}
    rows = Rows(LANES.path, LANES.item, 2)
    removed = apply_form(document, _lane_form([("a", "4"), ("b", "9")], **{"remove:nodes[0].lanes[0]": "on"}),
                         [rows])
    assert removed.document["nodes"][0]["lanes"] == [{"region": "b", "transit_days": 9}]
    assert removed.as_shown({"nodes[0].lanes[0].region": "x"}) == {"nodes[0].lanes[1].region": "x"}


def test_rows_past_the_stored_ones_and_their_empty_row_are_never_read():
    forged = _lane_form([("a", "1"), ("b", "2"), ("a", "3"), ("b", "4")])
    result = apply_form({"nodes": [{"lanes": [{"region": "a", "transit_days": 1}]}]}, forged, [LANES])
    assert len(result.document["nodes"][0]["lanes"]) == 2


def test_ticked_boxes_keep_the_order_already_chosen_and_refuse_unknown_values():
    spec = Field("nodes[0].backups", "Backups", "multi", (("a", "A"), ("b", "B"), ("c", "C")))
    document = {"nodes": [{"backups": ["c", "a"]}]}
    form = MultiDict([("nodes[0].backups", "a"), ("nodes[0].backups", "b"), ("nodes[0].backups", "c")])
    assert apply_form(document, form, [spec]).document["nodes"][0]["backups"] == ["c", "a", "b"]
    assert "backups" not in apply_form(document, MultiDict(), [spec]).document["nodes"][0]  # none: the default
    forged = apply_form(document, MultiDict([("nodes[0].backups", "z")]), [spec])
    assert forged.errors == {"nodes[0].backups": "pick among the choices"}


@pytest.mark.parametrize("stored, shown", [
    ("2026-11-27 14:00:00+00:00", "2026-11-27T09:00"),  # stored aware: shown in the shop's zone
    ("2026-11-27T09:30:00", "2026-11-27T09:30"),  # stored local: as it is
])
def test_a_date_time_is_shown_in_the_shops_zone(stored, shown):
    spec = Field("nodes[0].active_from", "From", "datetime")
    assert field_value({"timezone": "America/New_York", "nodes": [{"active_from": stored}]}, spec) == shown


@pytest.mark.parametrize("kind, text, message", [
    ("datetime", "next friday", "must be a date and time"), ("time", "2pm", "must be a time of day"),
])
def test_times_that_cannot_be_read_are_named_beside_their_field(kind, text, message):
    result = apply_form({}, {"x": text}, [Field("x", "X", kind)])
    assert result.errors["x"].startswith(message)


def test_a_problem_inside_a_value_is_placed_on_its_field_with_the_fields_help():
    fields = [Field("regions[0].countries", "Countries", "lines", help="Two-letter codes, like US."), LANES]
    errors = {"regions[0].countries[1]": "String should match pattern '^[A-Z]{2}$' (got 'USA')",
              "nodes[0].lanes[0].region": "undefined", "planning.hub": "node 'x' is not defined"}
    assert placed(errors, fields) == {
        "regions[0].countries": "not in the expected form: Two-letter codes, like US.",
        "nodes[0].lanes[0].region": "undefined", "planning.hub": "node 'x' is not defined"}


# ---------------------------------------------------------------- regions


def test_adding_a_region_saves_it_with_its_codes_in_capitals(signed_in, container, store):
    _, version = _doc(container, store)
    response = post_form(signed_in, "/settings/regions/new", {
        "regions[5].id": "texas", "regions[5].name": "Texas", "regions[5].promise_days": "3",
        "regions[5].provinces": "us-tx", "regions[5].postal_prefixes": "us 750, US:751",
        "regions[5].fallback": "us-rest"})
    assert response.status_code == 302 and response.headers["Location"] == "/settings/regions"
    document, new_version = _doc(container, store)
    assert new_version == version + 1
    assert document["regions"][5] == {"id": "texas", "name": "Texas", "promise_days": 3, "provinces": ["US-TX"],
                                      "postal_prefixes": ["US:750", "US:751"], "fallback": "us-rest"}
    assert "Texas" in _text(signed_in.get("/settings/regions"))
    assert container.shop_config.history(store, SHOPIFY_SHOP)[-1]["actor"] == f"web:{SHOPIFY_USER}"


@pytest.mark.parametrize("changes, path, message", [
    ({"regions[5].id": "nyc-metro"}, "regions[5].id", "nyc-metro is already used"),
    ({"regions[5].id": "Texas!"}, "regions[5].id", "Lower-case letters"),
    ({"regions[5].promise_days": "three"}, "regions[5].promise_days", "must be a whole number"),
    ({"regions[5].countries": "USA"}, "regions[5].countries", "not in the expected form: Two-letter codes"),
    ({"regions[5].name": ""}, "regions[5].name", "required"),
    ({"regions[5].countries": "", "regions[5].provinces": ""}, None, "matches nothing"),
])
def test_a_region_with_a_problem_is_not_saved_and_the_problem_is_beside_its_field(signed_in, container, store,
                                                                                 changes, path, message):
    _, version = _doc(container, store)
    response = post_form(signed_in, "/settings/regions/new", {
        "regions[5].id": "texas", "regions[5].name": "Texas", "regions[5].promise_days": "3",
        "regions[5].countries": "US", **changes})
    page = _text(response)
    assert response.status_code == 200 and "Nothing was saved" in page
    if path:
        assert message in (_error(page, path) or ""), page
    else:
        assert message in page
    assert _doc(container, store)[1] == version


def test_editing_a_region_changes_only_it(signed_in, container, store):
    before, _ = _doc(container, store)
    response = post_form(signed_in, "/settings/regions/canada", {"regions[4].promise_days": "6"})
    assert response.status_code == 302
    after, _ = _doc(container, store)
    assert after["regions"][4]["promise_days"] == 6
    assert [r for i, r in enumerate(after["regions"]) if i != 4] == [r for i, r in enumerate(before["regions"])
                                                                      if i != 4]


def test_removing_a_region_nodes_still_serve_is_refused_beside_it(signed_in, container, store):
    _, version = _doc(container, store)
    response = post_form(signed_in, "/settings/regions", action="/settings/regions/nyc-metro/remove", button=None)
    page = _text(response)
    assert response.status_code == 409
    row = page[page.index('id="region-nyc-metro"'):]
    row = row[:row.index("</tr>")]
    assert "Not removed" in row and "serves undefined region 'nyc-metro'" in row
    assert 'Node "Central warehouse (Columbus, OH)" (lanes)' in row
    assert _doc(container, store)[1] == version


def test_removing_an_unused_region_saves_the_shop_without_it(signed_in, container, store):
    post_form(signed_in, "/settings/regions/new", {
        "regions[5].id": "texas", "regions[5].name": "Texas", "regions[5].promise_days": "3",
        "regions[5].provinces": "US-TX", "regions[5].fallback": "us-rest"})
    response = post_form(signed_in, "/settings/regions", action="/settings/regions/texas/remove", button=None)
    assert response.status_code == 302
    assert "texas" not in [r["id"] for r in _doc(container, store)[0]["regions"]]
    assert "removed region texas" in str(container.shop_config.history(store, SHOPIFY_SHOP)[-1]["diff"])


def test_a_stale_region_form_is_refused_whole(signed_in, container, store):
    data = form_data(signed_in.get("/settings/regions/canada").get_data(as_text=True))
    container.shop_config.set_mode(store, SHOPIFY_SHOP, "peak", None, "cli:someone")
    data = [(k, "9" if k == "regions[4].promise_days" else v) for k, v in data]
    response = signed_in.post("/settings/regions/canada", data=MultiDict(data))
    assert "Someone saved this shop" in _text(response)
    assert _doc(container, store)[0]["regions"][4]["promise_days"] == 7


def test_a_stale_removal_removes_nothing(signed_in, container, store):
    data = form_data(signed_in.get("/settings/regions").get_data(as_text=True), "/settings/regions/canada/remove")
    container.shop_config.set_mode(store, SHOPIFY_SHOP, "peak", None, "cli:someone")
    response = signed_in.post("/settings/regions/canada/remove", data=MultiDict(data))
    assert response.status_code == 409 and "Nothing was removed" in _text(response)
    assert "canada" in [r["id"] for r in _doc(container, store)[0]["regions"]]


# ---------------------------------------------------------------- nodes


NEW_NODE = {"nodes[5].id": "garage", "nodes[5].name": "My garage (Queens)", "nodes[5].kind": "garage",
            "nodes[5].role": "backup", "nodes[5].capabilities": ["fragile", "pickup"], "nodes[5].cutoff": "16:30",
            "nodes[5].daily_capacity": "25", "nodes[5].backups": ["central"],
            "nodes[5].active_from": "2026-12-01T09:00", "nodes[5].active_until": "2026-12-24T18:00",
            "nodes[5].lanes[0].region": "nyc-metro", "nodes[5].lanes[0].transit_days": "1",
            "nodes[5].lanes[0].cost_per_order": "5.25", "nodes[5].shopify_location": "gid://shopify/Location/777"}


def test_the_nodes_list_shows_each_nodes_routing_status(signed_in, container, store):
    container.shop_config.set_node_status(store, SHOPIFY_SHOP, "cold-room", "offline", "power cut", "cli:x")
    page = _text(signed_in.get("/settings/nodes"))
    row = page[page.index('id="node-cold-room"'):]
    assert "offline" in row[:row.index("</tr>")]
    assert page.count('class="stack"') == 1


def test_adding_a_node_with_a_lane_saves_it(signed_in, container, store):
    response = post_form(signed_in, "/settings/nodes/new", NEW_NODE)
    assert response.status_code == 302 and response.headers["Location"] == "/settings/nodes/garage/edit"
    node = _node(_doc(container, store)[0], "garage")
    assert node["capabilities"] == ["fragile", "pickup"] and node["backups"] == ["central"]
    assert node["lanes"] == [{"region": "nyc-metro", "transit_days": 1, "cost_per_order": 5.25}]
    assert node["active_from"].startswith("2026-12-01T09:00") and node["cutoff"] == "16:30"
    shop = container.shops.require(SHOPIFY_SHOP)
    assert shop.network.nodes["garage"].active_from.utcoffset().total_seconds() == -5 * 3600  # the shop's zone
    assert shop.shopify_locations["garage"] == "gid://shopify/Location/777"


def test_a_lane_row_is_added_and_another_removed_in_one_save(signed_in, container, store):
    assert post_form(signed_in, "/settings/nodes/new", NEW_NODE).status_code == 302
    page = _text(signed_in.get("/settings/nodes/garage/edit"))
    assert 'name="nodes[5].lanes[1].region"' in page  # the empty row that adds a lane
    assert re.search(r'name="nodes\[5\]\.lanes\[0\]\.cost_per_order" value="5.25"', page)
    response = post_form(signed_in, "/settings/nodes/garage/edit", {
        "nodes[5].lanes[1].region": "us-northeast", "nodes[5].lanes[1].transit_days": "2",
        "nodes[5].lanes[1].cost_per_order": "7", "remove:nodes[5].lanes[0]": "on"})
    assert response.status_code == 302
    assert _node(_doc(container, store)[0], "garage")["lanes"] == [
        {"region": "us-northeast", "transit_days": 2, "cost_per_order": 7.0}]


@pytest.mark.parametrize("changes, path, message", [
    ({"nodes[5].lanes[0].transit_days": "soon"}, "nodes[5].lanes[0].transit_days", "must be a whole number"),
    ({"nodes[5].lanes[0].transit_days": "99"}, "nodes[5].lanes[0].transit_days", "less than or equal to 60"),
    ({"nodes[5].lanes[0].region": "", "nodes[5].lanes[0].transit_days": "", "nodes[5].lanes[0].cost_per_order": ""},
     "nodes[5].lanes", "at least 1"),
    ({"nodes[5].cutoff": "25:00"}, "nodes[5].cutoff", "must be a time of day"),
    ({"nodes[5].active_until": "2026-11-01T00:00"}, "nodes[5].active_until", "must be after active_from"),
    ({"nodes[5].forward_orders": "on"}, "nodes[5].forward_orders", "needs a stock_source provider"),
    ({"nodes[5].shopify_location": "the big one"}, "nodes[5].shopify_location", "not in the expected form"),
    ({"nodes[5].id": "central"}, "nodes[5].id", "already used"),
])
def test_a_node_with_a_problem_is_not_saved_and_the_problem_is_beside_its_field(signed_in, container, store,
                                                                               changes, path, message):
    _, version = _doc(container, store)
    page = _text(post_form(signed_in, "/settings/nodes/new", {**NEW_NODE, **changes}))
    assert message in (_error(page, path) or ""), page
    assert "Nothing was saved" in page and _doc(container, store)[1] == version
    assert 'name="nodes[5].name" value="My garage (Queens)"' in page  # what was typed stays


@pytest.mark.parametrize("typed", ["81234567", "https://admin.shopify.com/store/aurora/settings/locations/81234567",
                                   "gid://shopify/Location/81234567"])
def test_a_shopify_location_may_be_pasted_as_its_number_or_admin_address(signed_in, container, store, typed):
    response = post_form(signed_in, "/settings/nodes/central/edit", {"nodes[0].shopify_location": typed})
    assert response.status_code == 302
    assert _node(_doc(container, store)[0], "central")["shopify_location"] == "gid://shopify/Location/81234567"


class _Install:
    def __init__(self, fail=False):
        self.fail = fail
        self.calls = 0

    def locations(self):
        self.calls += 1
        if self.fail:
            raise ProviderUnavailable("shopify: timed out")
        return [ShopLocation("gid://shopify/Location/11", "Columbus warehouse", True, True, "US", "OH", None, None),
                ShopLocation("gid://shopify/Location/12", "Old studio", False, False, "US", "NY", None, None)]


def test_the_stores_own_locations_are_offered_when_the_store_can_be_asked(signed_in, container, store, monkeypatch):
    install = _Install()
    monkeypatch.setattr(container, "shopify_install", lambda shop: install, raising=False)
    page = _text(signed_in.get("/settings/nodes/central/edit"))
    assert re.search(r'<select id="f-nodes-0-shopify_location"', page)
    assert "Columbus warehouse" in page and "Old studio (inactive)" in page
    response = post_form(signed_in, "/settings/nodes/central/edit",
                         {"nodes[0].shopify_location": "gid://shopify/Location/11"})
    assert response.status_code == 302
    assert _node(_doc(container, store)[0], "central")["shopify_location"] == "gid://shopify/Location/11"
    assert install.calls == 3  # once per page: the form shown, and the one posted back
    document, version = _doc(container, store)
    _node(document, "central")["shopify_location"] = "gid://shopify/Location/99"  # gone from the store since
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    assert post_form(signed_in, "/settings/nodes/central/edit", {"nodes[0].daily_capacity": "1500"}).status_code == 302
    assert _node(_doc(container, store)[0], "central")["shopify_location"] == "gid://shopify/Location/99"
    monkeypatch.setattr(container, "shopify_install", lambda shop: _Install(fail=True), raising=False)
    page = _text(signed_in.get("/settings/nodes/central/edit"))  # the store did not answer: type the number
    assert re.search(r'<input id="f-nodes-0-shopify_location"', page)


def test_a_woocommerce_shop_has_no_shopify_location_field(client, container):
    add_user(container, WOO_USER, WOO_SHOP)
    sign_in(client, WOO_USER)
    assert "shopify_location" not in client.get("/settings/nodes/uk-hub/edit").get_data(as_text=True)


def test_forwarding_settings_are_saved_with_a_method_per_region(signed_in, container, store, tmp_path):
    (tmp_path / "feed.csv").write_text("sku,quantity,location\n")
    add_provider(container, SHOPIFY_SHOP, "sb", {"type": "shipbob", "token": TOKEN, "channel_id": "1"})
    response = post_form(signed_in, "/settings/nodes/ne-micro/edit", {
        "nodes[1].stock_source": "sb", "nodes[1].provider_location": "10", "nodes[1].forward_orders": "on",
        "nodes[1].shipping_method": "Standard", "nodes[1].shipping_methods.nyc-metro": "Next Day"})
    assert response.status_code == 302, _text(response)
    node = _node(_doc(container, store)[0], "ne-micro")
    assert node["forward_orders"] is True and node["shipping_methods"] == {"nyc-metro": "Next Day"}
    source = container.shops.require(SHOPIFY_SHOP).sources["ne-micro"]
    assert source.shipping_method_for("nyc-metro") == "Next Day" and source.shipping_method_for("us-rest") == "Standard"


def test_switching_a_nodes_status_needs_a_reason_and_is_audited(signed_in, container, store):
    page = signed_in.get("/settings/nodes/popup-soho/edit").get_data(as_text=True)
    action = "/settings/nodes/popup-soho/status"
    refused = signed_in.post(action, data=MultiDict(form_data(page, action) + [("status", "paused")]))
    assert "say why" in _text(refused) and _node(_doc(container, store)[0], "popup-soho").get("status") is None
    assert 'aria-describedby="status-reason-error"' in refused.get_data(as_text=True)
    data = [(k, v) for k, v in form_data(page, action) if k not in ("status", "reason")]
    response = signed_in.post(action, data=MultiDict(data + [("status", "paused"), ("reason", "restocking")]))
    assert response.status_code == 302
    assert _node(_doc(container, store)[0], "popup-soho")["status"] == "paused"
    latest = container.shop_config.history(store, SHOPIFY_SHOP)[-1]
    assert latest["actor"] == f"web:{SHOPIFY_USER}" and latest["diff"]["nodes.popup-soho.status"]["reason"] == \
        "restocking"
    assert "paused" in _text(signed_in.get("/settings/nodes"))


def test_a_stale_status_switch_is_refused(signed_in, container, store):
    page = signed_in.get("/settings/nodes/popup-soho/edit").get_data(as_text=True)
    action = "/settings/nodes/popup-soho/status"
    container.shop_config.set_mode(store, SHOPIFY_SHOP, "peak", None, "cli:someone")
    data = [(k, v) for k, v in form_data(page, action) if k not in ("status", "reason")]
    response = signed_in.post(action, data=MultiDict(data + [("status", "offline"), ("reason", "closed")]))
    assert "Someone saved this shop" in _text(response)
    assert _node(_doc(container, store)[0], "popup-soho").get("status") is None


def test_removing_a_node_others_rely_on_is_refused_beside_it(signed_in, container, store):
    _, version = _doc(container, store)
    response = post_form(signed_in, "/settings/nodes", action="/settings/nodes/central/remove", button=None)
    page = _text(response)
    row = page[page.index('id="node-central"'):]
    row = row[:row.index("</tr>")]
    assert response.status_code == 409 and "Not removed" in row
    assert "backup node 'central' is not defined" in row and "'central' is not defined" in row
    assert _doc(container, store)[1] == version


def test_removing_a_node_nothing_needs_saves_the_shop_without_it(signed_in, container, store):
    post_form(signed_in, "/settings/nodes/new", NEW_NODE)
    response = post_form(signed_in, "/settings/nodes", action="/settings/nodes/garage/remove", button=None)
    assert response.status_code == 302
    assert "garage" not in container.shops.require(SHOPIFY_SHOP).network.nodes


# ---------------------------------------------------------------- 3PL connections


def _new_provider(client, kind, provider_id, changes):
    return post_form(client, f"/settings/providers/new?type={kind}&id={provider_id}", changes,
                     action="/settings/providers/new")


def test_adding_a_shipbob_connection_keeps_its_token_write_only(signed_in, container, store):
    response = _new_provider(signed_in, "shipbob", "sb-main", {
        "providers.sb-main.token": TOKEN, "providers.sb-main.channel_id": "100102",
        "providers.sb-main.base_url": "https://sandbox-api.shipbob.com"})
    assert response.status_code == 302 and response.headers["Location"] == "/settings/providers"
    assert container.shops.require(SHOPIFY_SHOP).providers["sb-main"].token == TOKEN
    for path in ("/settings/providers", "/settings/providers/sb-main/edit"):
        page = signed_in.get(path).get_data(as_text=True)
        assert TOKEN not in page and "SECRET" not in page
    assert "Saved — type a new value to replace it" in signed_in.get("/settings/providers/sb-main/edit").get_data(
        as_text=True)
    # saved again without typing it: the token stays
    assert post_form(signed_in, "/settings/providers/sb-main/edit",
                     {"providers.sb-main.channel_id": "200"}).status_code == 302
    account = container.shops.require(SHOPIFY_SHOP).providers["sb-main"]
    assert account.token == TOKEN and account.channel_id == "200"
    assert TOKEN not in str(container.shop_config.history(store, SHOPIFY_SHOP))


@pytest.mark.parametrize("kind, secrets", [
    ("shipbob", {"token": TOKEN}), ("shipmonk", {"token": TOKEN}), ("shiphero", {"refresh_token": TOKEN}),
    ("extensiv", {"client_id": TOKEN + "-id", "client_secret": TOKEN, "tpl": TOKEN + "-tpl"}),
    ("csv", {"url": f"https://sheets.example/feed.csv?key={TOKEN}"}),
])
def test_no_page_shows_a_saved_credential_of_any_3pl_type(signed_in, container, kind, secrets):
    extra = {"shipmonk": {"store_id": 1}, "extensiv": {"user_login_id": "7", "customer_id": 12}}.get(kind, {})
    add_provider(container, SHOPIFY_SHOP, "acct", {"type": kind, **secrets, **extra})
    page = post_form(signed_in, "/settings/providers/acct/edit", {"providers.acct.base_url": "http://x.example"}
                     if kind != "csv" else {"providers.acct.path": "also.csv"}).get_data(as_text=True)
    assert "Nothing was saved" in page  # shown again with an error: still no credential
    for path in ("/settings/providers", "/settings/providers/acct/edit"):
        assert TOKEN not in signed_in.get(path).get_data(as_text=True)
    assert TOKEN not in page


def test_a_3pl_base_url_over_plain_http_is_refused_beside_it(signed_in, container, store):
    _, version = _doc(container, store)
    page = _text(_new_provider(signed_in, "shipmonk", "sm", {
        "providers.sm.token": TOKEN, "providers.sm.base_url": "http://api.shipmonk.example"}))
    assert "must be an https:// address" in (_error(page, "providers.sm.base_url") or ""), page
    assert _doc(container, store)[1] == version and TOKEN not in page


def test_a_new_connection_without_its_credential_names_the_field(signed_in, container):
    page = _text(_new_provider(signed_in, "shiphero", "hero", {}))
    assert "required for a shiphero provider" in (_error(page, "providers.hero.refresh_token") or ""), page


@pytest.mark.parametrize("query, field, message", [
    ({"type": "shipbob", "id": "Main Account"}, "new-id", "Lower-case letters"),
    ({"type": "fedex", "id": "fx"}, "new-type", "pick one of the choices"),
    ({"type": "csv", "id": "manual"}, "new-id", "already used"),
])
def test_naming_a_new_connection_badly_is_shown_beside_the_field(signed_in, query, field, message):
    response = signed_in.get("/settings/providers/new", query_string=query)
    assert response.status_code == 422
    assert re.search(rf'id="{field}-error"[^>]*>[^<]*{message}', _text(response))


def test_the_list_shows_each_connections_last_sync_and_its_error(signed_in, container, store, clock):
    add_provider(container, SHOPIFY_SHOP, "sheet", {"type": "csv", "path": "popup.csv"})
    document, version = _doc(container, store)
    _node(document, "popup-soho")["stock_source"] = "sheet"
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    store.record_sync(SHOPIFY_SHOP, "popup-soho", "sheet", clock(), clock(), 3, "ok", None)
    clock.advance(minutes=30)
    store.record_sync(SHOPIFY_SHOP, "popup-soho", "sheet", clock(), clock(), None, "error",
                      "csv feed popup.csv: file not found")
    page = _text(signed_in.get("/settings/providers"))
    row = page[page.index('id="provider-sheet"'):]
    row = row[:row.index("</tr>")]
    assert "Holiday pop-up (SoHo, NYC)" in row and "2026-11-22 10:00 EST" in row
    assert "failed: csv feed popup.csv: file not found" in row


def test_test_connection_says_plainly_whether_the_account_works(signed_in, container, tmp_path):
    feed = tmp_path / "counts.csv"
    feed.write_text("sku,quantity\nCANDLE-FIG,3\n")
    add_provider(container, SHOPIFY_SHOP, "sheet", {"type": "csv", "path": str(feed)})
    add_provider(container, SHOPIFY_SHOP, "gone", {"type": "csv", "path": str(tmp_path / "missing.csv")})
    page = _text(post_form(signed_in, "/settings/providers", action="/settings/providers/sheet/test", button=None))
    assert "Works. Connected" in page
    page = _text(post_form(signed_in, "/settings/providers", action="/settings/providers/gone/test", button=None))
    assert "Does not work:" in page and "file not found" in page


def test_test_connection_shows_a_refused_token_without_the_token(signed_in, container):
    add_provider(container, SHOPIFY_SHOP, "sb", {"type": "shipbob", "token": TOKEN, "channel_id": "1"})
    with responses.RequestsMock() as rsps:
        rsps.get(re.compile(re.escape(shipbob.PRODUCTION_URL) + r"/.*channel.*"), status=401,
                 json={"message": f"bad token {TOKEN}"})
        response = post_form(signed_in, "/settings/providers", action="/settings/providers/sb/test", button=None)
    page = _text(response)
    assert response.status_code == 200 and "Does not work:" in page
    assert TOKEN not in page


def test_removing_a_connection_a_node_uses_is_refused_beside_it(signed_in, container, store):
    add_provider(container, SHOPIFY_SHOP, "sheet", {"type": "csv", "path": "popup.csv"})
    document, version = _doc(container, store)
    _node(document, "popup-soho")["stock_source"] = "sheet"
    version = container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    response = post_form(signed_in, "/settings/providers", action="/settings/providers/sheet/remove", button=None)
    page = _text(response)
    assert response.status_code == 409 and "provider 'sheet' is not defined" in page
    assert _doc(container, store)[1] == version
    add_provider(container, SHOPIFY_SHOP, "spare", {"type": "csv", "path": "spare.csv"})
    assert post_form(signed_in, "/settings/providers", action="/settings/providers/spare/remove",
                     button=None).status_code == 302
    assert "spare" not in container.shops.require(SHOPIFY_SHOP).providers


def _attributes(page: str, element_id: str) -> dict:
    from html.parser import HTMLParser

    found: dict = {}

    class Find(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if dict(attrs).get("id") == element_id:
                found.update(attrs)

    Find().feed(page)
    return found


@pytest.mark.parametrize("changes, element_id", [
    ({"nodes[5].lanes[0].transit_days": "99"}, "f-nodes-5-lanes-0-transit_days"),  # a required number
    ({"nodes[5].lanes[0].cost_per_order": "-1"}, "f-nodes-5-lanes-0-cost_per_order"),  # a float (step)
    ({"nodes[5].kind": "moon"}, "f-nodes-5-kind"),  # a required choice
    ({"nodes[5].forward_orders": "on"}, "f-nodes-5-forward_orders"),  # a ticked switch
])
def test_each_kind_of_input_carries_its_error_as_separate_attributes(signed_in, changes, element_id):
    page = post_form(signed_in, "/settings/nodes/new", {**NEW_NODE, **changes}).get_data(as_text=True)
    attributes = _attributes(page, element_id)
    assert attributes.get("aria-invalid") == "true", attributes
    assert attributes.get("aria-describedby") == f"{element_id}-error", attributes
    assert not any(name.startswith(("required", "step", "checked")) and len(name) > 8 for name in attributes)


def test_a_problem_in_a_lane_after_a_removed_one_lands_beside_that_lane(signed_in, container, store):
    _, version = _doc(container, store)
    assert len(_node(_doc(container, store)[0], "central")["lanes"]) >= 2
    page = _text(post_form(signed_in, "/settings/nodes/central/edit", {
        "remove:nodes[0].lanes[0]": "on", "nodes[0].lanes[1].transit_days": "99"}))  # saved as lanes[0]
    assert "less than or equal to 60" in (_error(page, "nodes[0].lanes[1].transit_days") or ""), page
    assert _error(page, "nodes[0].lanes[0].transit_days") is None
    assert re.search(r'name="remove:nodes\[0\]\.lanes\[0\]" checked', page)  # the removal is still asked for
    assert _doc(container, store)[1] == version
