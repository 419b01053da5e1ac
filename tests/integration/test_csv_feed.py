"""CsvFeedWarehouse: strict parsing of local files and feeds served over HTTP(S)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import responses

from adapters.csv_feed import CsvFeedError, CsvFeedWarehouse, parse_inventory_csv
from connector.domain.model import (
    InventoryRecord,
    OutboundOrder,
    Address,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
    ShipmentLine,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "csv"
FEED_URL = "https://feeds.example-printshop.test/stock/today.csv?sig=s3cr3t"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def no_sleep(_seconds: float) -> None:
    return None


def errors_of(source, **kwargs) -> list[str]:
    with pytest.raises(CsvFeedError) as info:
        CsvFeedWarehouse(source, **kwargs).list_inventory()
    return info.value.errors


# ---------------------------------------------------------------- good files


GOOD_RECORDS = [
    InventoryRecord("print-shop", "TEE-BLK-M", 12, 0, 12, {"location": "print-shop", "sku": "TEE-BLK-M", "quantity": "12"}),
    InventoryRecord("print-shop", "TEE-BLK-L", 0, 0, 0, {"location": "print-shop", "sku": "TEE-BLK-L", "quantity": "0"}),
    InventoryRecord("pop-up", "TEE-BLK-M", 4, 0, 4, {"location": "pop-up", "sku": "TEE-BLK-M", "quantity": "4"}),
    InventoryRecord("pop-up", "POSTER, A2", 7, 0, 7, {"location": "pop-up", "sku": "POSTER, A2", "quantity": "7"}),
]


def test_good_local_file_with_bom_crlf_reordered_columns_and_blank_line():
    raw = fixture_bytes("good.csv")
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n\r\n" in raw  # the fixture really is that messy
    feed = CsvFeedWarehouse(FIXTURES / "good.csv", default_location="unused")
    records = feed.list_inventory()
    assert isinstance(records, list)
    assert records == GOOD_RECORDS


def test_missing_location_column_uses_default_location():
    records = CsvFeedWarehouse(str(FIXTURES / "no_location.csv"), default_location="garage").list_inventory()
    assert [(r.location_id, r.sku, r.on_hand, r.committed, r.available) for r in records] == [
        ("garage", "CANDLE-01", 30, 0, 30),
        ("garage", "CANDLE-02", 5, 0, 5),
    ]
    assert records[0].raw == {"sku": "CANDLE-01", "quantity": "30"}


def test_empty_location_cell_uses_default_and_whitespace_is_trimmed():
    data = b"sku , quantity ,location\n  MUG-01 , +3 , \nMUG-02,4,annex\n"
    records = parse_inventory_csv(data, default_location="main")
    assert [(r.location_id, r.sku, r.on_hand) for r in records] == [("main", "MUG-01", 3), ("annex", "MUG-02", 4)]


def test_quoted_multiline_cell_keeps_line_numbers_of_later_rows():
    data = b'sku,quantity\n"A\nB",1\nC,x\n'
    with pytest.raises(CsvFeedError) as info:
        parse_inventory_csv(data, default_location="main")
    assert info.value.errors == ["line 4: quantity 'x' is not a whole number"]


@responses.activate
def test_good_file_served_over_https():
    responses.get(FEED_URL, body=fixture_bytes("good.csv"), content_type="text/csv")
    feed = CsvFeedWarehouse(FEED_URL, headers={"Authorization": "Bearer feed-token"}, sleep=no_sleep)
    assert feed.list_inventory() == GOOD_RECORDS
    assert responses.calls[0].request.headers["Authorization"] == "Bearer feed-token"


@responses.activate
def test_url_retries_server_errors_through_the_shared_client():
    sleeps: list[float] = []
    responses.get(FEED_URL, status=503)
    responses.get(FEED_URL, status=429, headers={"Retry-After": "2"})
    responses.get(FEED_URL, body=fixture_bytes("no_location.csv"), content_type="text/csv")
    feed = CsvFeedWarehouse(FEED_URL, default_location="shop", sleep=sleeps.append)
    assert [r.sku for r in feed.list_inventory()] == ["CANDLE-01", "CANDLE-02"]
    assert len(responses.calls) == 3
    assert len(sleeps) == 2 and sleeps[1] == 2.0


@responses.activate
def test_url_not_found_and_forbidden_are_provider_errors():
    responses.get(FEED_URL, status=404)
    with pytest.raises(ProviderRejected):
        CsvFeedWarehouse(FEED_URL, default_location="x", sleep=no_sleep).list_inventory()
    responses.replace(responses.GET, FEED_URL, status=403)
    with pytest.raises(ProviderAuthError):
        CsvFeedWarehouse(FEED_URL, default_location="x", sleep=no_sleep).list_inventory()


@responses.activate
def test_url_bad_file_reports_line_numbers_and_hides_the_query_secret():
    responses.get(FEED_URL, body=fixture_bytes("bad_lines.csv"), content_type="text/csv")
    with pytest.raises(CsvFeedError) as info:
        CsvFeedWarehouse(FEED_URL, sleep=no_sleep).list_inventory()
    assert "line 4: quantity 'abc' is not a whole number" in info.value.errors
    assert "s3cr3t" not in str(info.value)
    assert "feeds.example-printshop.test/stock/today.csv" in str(info.value)


def test_plain_http_is_refused_except_on_loopback():
    with pytest.raises(ValueError, match="https"):
        CsvFeedWarehouse("http://feeds.example.test/stock.csv")
    with pytest.raises(ValueError, match="scheme"):
        CsvFeedWarehouse("ftp://feeds.example.test/stock.csv")
    CsvFeedWarehouse("http://127.0.0.1:8080/stock.csv")
    CsvFeedWarehouse("http://localhost/stock.csv")


@responses.activate
def test_loopback_http_feed_works():
    url = "http://127.0.0.1:8765/stock.csv"
    responses.get(url, body=b"sku,quantity,location\nA,1,main\n", content_type="text/csv")
    assert [r.sku for r in CsvFeedWarehouse(url).list_inventory()] == ["A"]


# ---------------------------------------------------------------- bad files


def test_every_bad_line_is_reported_with_its_line_number():
    assert errors_of(FIXTURES / "bad_lines.csv") == [
        "line 4: quantity 'abc' is not a whole number",
        "line 5: quantity -5 is negative",
        "line 6: empty sku",
        "line 7: duplicate sku 'MUG-01' for location 'main' (first on line 2)",
        "line 8: 1 value but the header has 3 columns (missing quantity, location)",
        "line 9: quantity '1.5' is not a whole number",
        "line 11: empty quantity",
    ]


def test_a_file_with_one_bad_line_yields_no_records():
    data = b"sku,quantity,location\nA,1,main\nB,2,main\nC,oops,main\nD,4,main\n"
    with pytest.raises(CsvFeedError) as info:
        parse_inventory_csv(data, default_location=None)
    assert info.value.errors == ["line 4: quantity 'oops' is not a whole number"]
    assert isinstance(info.value, ProviderResponseError)  # callers catch the generic class


def test_extra_columns_are_named():
    errors = errors_of(FIXTURES / "extra_columns.csv")
    assert errors == [
        "line 1: unexpected columns 'price', 'notes'; allowed columns are sku, quantity and optionally location"
    ]


def test_missing_required_column():
    assert errors_of(FIXTURES / "missing_column.csv") == ["line 1: missing column 'quantity'"]


def test_no_location_anywhere_without_default_is_an_error():
    assert errors_of(FIXTURES / "no_location.csv") == [
        "line 1: no 'location' column and no default_location configured for this feed"
    ]


def test_duplicate_header_and_unnamed_column():
    with pytest.raises(CsvFeedError) as info:
        parse_inventory_csv(b"sku,quantity,sku,\nA,1,B,\n", default_location="x")
    assert info.value.errors == [
        "line 1: column 4 has no name",
        "line 1: column 'sku' appears 2 times",
    ]


def test_semicolon_file_gets_a_hint():
    with pytest.raises(CsvFeedError) as info:
        parse_inventory_csv(b"sku;quantity\nA;1\n", default_location="x")
    assert "not comma-separated" in info.value.errors[0]


def test_too_many_values_and_huge_quantity():
    data = b"sku,quantity\nA,1,extra\nB,99999999999999999999\n"
    with pytest.raises(CsvFeedError) as info:
        parse_inventory_csv(data, default_location="x")
    assert info.value.errors == [
        "line 2: 3 values but the header has only 2 columns",
        "line 3: quantity 99999999999999999999 is too large",
    ]


def test_empty_file_and_header_only_file_are_refused():
    with pytest.raises(CsvFeedError, match="file is empty"):
        parse_inventory_csv(b"", default_location="x")
    with pytest.raises(CsvFeedError, match="file is empty"):
        parse_inventory_csv(b"\xef\xbb\xbf\r\n\r\n", default_location="x")
    with pytest.raises(CsvFeedError, match="no stock rows"):
        parse_inventory_csv(b"sku,quantity\n", default_location="x")
    assert parse_inventory_csv(b"sku,quantity\n", default_location="x", allow_empty=True) == []


def test_not_utf8_reports_the_line():
    with pytest.raises(CsvFeedError) as info:
        parse_inventory_csv(b"sku,quantity\nCAF\xc9,1\n", default_location="x")
    assert info.value.errors == ["line 2: not valid UTF-8 text (save the file as 'CSV UTF-8')"]


def test_broken_quoting_is_reported():
    with pytest.raises(CsvFeedError) as info:
        parse_inventory_csv(b'sku,quantity\nA,1\n"B"x,2\n', default_location="x")
    assert info.value.errors[0].startswith("line 3: unreadable CSV")


def test_error_message_summarises_many_problems():
    rows = "".join(f"S{i},bad\n" for i in range(30))
    with pytest.raises(CsvFeedError) as info:
        parse_inventory_csv(("sku,quantity\n" + rows).encode(), default_location="x")
    assert len(info.value.errors) == 30
    assert "30 problems" in str(info.value) and "... and 10 more" in str(info.value)


def test_size_limit_local_and_url(tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"sku,quantity\n" + b"A,1\n" * 100)
    with pytest.raises(CsvFeedError, match="limit"):
        CsvFeedWarehouse(big, default_location="x", max_bytes=100).list_inventory()
    with pytest.raises(CsvFeedError, match="limit"):
        CsvFeedWarehouse(big, default_location="x", max_bytes=100).check()

    with responses.RequestsMock() as mock:
        mock.get(FEED_URL, body=big.read_bytes(), content_type="text/csv")
        with pytest.raises(CsvFeedError, match="limit"):
            CsvFeedWarehouse(FEED_URL, default_location="x", max_bytes=100, sleep=no_sleep).list_inventory()


# ---------------------------------------------------------------- the rest of the protocol


def _order() -> OutboundOrder:
    return OutboundOrder(
        reference="shop1:1001:print-shop",
        order_number="#1001",
        ship_to_name="Ada Lovelace",
        ship_to=Address("GB", None, "N1 9GU"),
        address_lines=("1 Main St",),
        city="London",
        email=None,
        phone=None,
        lines=(ShipmentLine("TEE-BLK-M", 1),),
    )


def test_orders_are_refused_and_there_are_no_shipments():
    feed = CsvFeedWarehouse(FIXTURES / "good.csv")
    message = "csv feed nodes do not accept orders; fulfil them from the storefront"
    with pytest.raises(ProviderRejected, match=message):
        feed.create_order(_order())
    with pytest.raises(ProviderRejected, match=message):
        feed.find_order("shop1:1001:print-shop")
    assert feed.list_shipments(datetime(2026, 1, 1, tzinfo=timezone.utc)) == []
    assert feed.provider == "csv"


def test_check_local(tmp_path):
    CsvFeedWarehouse(FIXTURES / "good.csv").check()
    with pytest.raises(ProviderUnavailable, match="not found"):
        CsvFeedWarehouse(tmp_path / "missing.csv").check()
    with pytest.raises(ProviderError, match="not a regular file"):
        CsvFeedWarehouse(tmp_path).check()
    with pytest.raises(ProviderUnavailable, match="not found"):
        CsvFeedWarehouse(tmp_path / "missing.csv").list_inventory()


@responses.activate
def test_check_url():
    responses.get(FEED_URL, body=b"sku,quantity\n", content_type="text/csv")
    CsvFeedWarehouse(FEED_URL, sleep=no_sleep).check()
    responses.replace(responses.GET, FEED_URL, status=500)
    with pytest.raises(ProviderUnavailable):
        CsvFeedWarehouse(FEED_URL, sleep=no_sleep).check()
