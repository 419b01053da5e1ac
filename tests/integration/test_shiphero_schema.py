"""Every GraphQL document the ShipHero adapter sends, validated against the public schema
snapshot in tests/fixtures/shiphero/schema.graphql (source and provenance in the README
there). A field the schema lacks would make ShipHero answer every call with an error."""
from __future__ import annotations

from pathlib import Path

import graphql  # graphql-core, in the test extras
import pytest

from adapters import shiphero
from connector.domain.model import Address, OutboundOrder, ShipmentLine

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "shiphero" / "schema.graphql"
DOCUMENTS = {
    name: getattr(shiphero, name)
    for name in dir(shiphero)
    if name.isupper() and isinstance(getattr(shiphero, name), str)
    and getattr(shiphero, name).lstrip().startswith(("query ", "mutation "))
}


@pytest.fixture(scope="module")
def schema():
    return graphql.build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))


def test_the_adapter_sends_the_documents_this_module_checks():
    # the discovery above must see every operation the adapter runs
    assert set(DOCUMENTS) == {"INVENTORY_QUERY", "FIND_ORDER_QUERY", "CREATE_ORDER_MUTATION", "SHIPMENTS_QUERY",
                              "CHECK_QUERY"}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_is_valid_against_the_schema(schema, name):
    errors = graphql.validate(schema, graphql.parse(DOCUMENTS[name]))
    assert [e.message for e in errors] == []


def test_inventory_asks_only_for_warehouse_product_fields(schema):
    fields = schema.type_map["WarehouseProduct"].fields
    assert set(shiphero.WAREHOUSE_PRODUCT_FIELDS) <= set(fields)


@pytest.mark.parametrize("shipping_method", [None, "Next Day"])
def test_order_create_variables_match_create_order_input(schema, shipping_method):
    warehouse = shiphero.ShipHeroWarehouse("token", customer_account_id="QWNjb3VudDo3Nzc=")
    order = OutboundOrder(
        reference="shop1:1002:sh-primary", order_number="#1002", ship_to_name="Grace Hopper",
        ship_to=Address("US", "NY", "10001"), address_lines=("350 5th Ave",), city="New York",
        email="grace@example.com", phone=None, lines=(ShipmentLine("CANDLE-01", 2),), location_id="V2FyZWhvdXNlOjE=",
        shipping_method=shipping_method,
    )
    operation = graphql.parse(shiphero.CREATE_ORDER_MUTATION).definitions[0]
    coerced = graphql.execution.values.get_variable_values(
        schema, operation.variable_definitions, {"data": warehouse._order_input(order)})
    assert not isinstance(coerced, list), [e.message for e in coerced]
