"""An answer cut off after the request left (points 12 and 19 of issue 15), on real
loopback sockets: every cut kind is a transport failure — retried for a safe read,
an unknown outcome for an order create, which the next attempt settles by looking the
reference up (never a second order, never a permanent rejection)."""
from __future__ import annotations

import json
import socket

import pytest

from tests.loopback import CUTS, Fake3pl, LoopbackServer, cut_answer, warehouse

from adapters.http import HttpClient
from connector.domain.model import (
    Address,
    OutboundOrder,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderUnavailable,
    ShipmentLine,
)

REFERENCE = "shop1:1001:node-a"


def outbound(reference: str = REFERENCE) -> OutboundOrder:
    return OutboundOrder(
        reference=reference, order_number="#1001", ship_to_name="Sam Okafor",
        ship_to=Address(country="US", province="NY", postcode="10012"), address_lines=("92 Chestnut Street",),
        city="New York", email="sam@example.com", phone=None, lines=(ShipmentLine("ZINE-04", 2),), location_id="10",
        shipping_method="Ground",
    )


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("vendor", Fake3pl.VENDORS)
def test_a_cut_create_answer_is_an_unknown_outcome_settled_by_lookup(vendor, cut):
    with Fake3pl(vendor, cut=cut) as tpl:
        adapter = warehouse(vendor, tpl.url)
        with pytest.raises(ProviderOutcomeUnknown) as info:
            adapter.create_order(outbound())
        assert not isinstance(info.value, ProviderRejected)
        assert tpl.creates == 1 and REFERENCE in tpl.orders  # the 3PL did create it

        again = adapter.create_order(outbound())
    assert tpl.creates == 1  # looked up, not posted again
    assert again.created is False and again.reference == REFERENCE
    if vendor != "shipmonk":  # ShipMonk's order id is our reference
        assert again.provider_order_id.endswith(tpl.orders[REFERENCE]) or again.provider_order_id == tpl.orders[REFERENCE]


def _client(url: str, **kw) -> HttpClient:
    return HttpClient(base_url=url, provider="acme3pl", timeout=(2.0, 0.3), sleep=lambda s: None, **kw)


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("method", ["GET", "POST-search"])
def test_a_cut_answer_to_a_safe_read_is_retried(cut, method):
    answers = iter([cut, None])

    def handle(request):
        kind = next(answers)
        if kind is None:
            return 200, {"items": [1, 2, 3]}
        cut_answer(request.connection, kind, json.dumps({"items": [1, 2, 3]}).encode(), status="200 OK")
        return None

    with LoopbackServer(handle) as server:
        client = _client(server.url)
        if method == "GET":
            body = client.get_json("/v1/things")
        else:
            body = client.post_json("/v1/search", {"q": 1}, retry=True)
    assert body == {"items": [1, 2, 3]}
    assert len(server.requests) == 2


def test_a_post_that_never_left_is_retried_and_is_no_unknown_outcome():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))  # bound, never listening: the connection is refused
    try:
        client = _client(f"http://127.0.0.1:{probe.getsockname()[1]}", max_attempts=3)
        with pytest.raises(ProviderUnavailable) as info:
            client.post_json("/v1/orders", {"a": 1})
    finally:
        probe.close()
    assert info.value.attempts == 3  # nothing reached a server: repeating is safe
    assert not isinstance(info.value, ProviderOutcomeUnknown)
