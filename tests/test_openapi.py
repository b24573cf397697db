"""The OpenAPI document describes the real routes with their real request and response shapes."""

from __future__ import annotations


def test_openapi_describes_orders_with_their_fields(anonymous):
    spec = anonymous.get("/openapi.json").json()
    create = spec["paths"]["/v2.1/orders"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["referenceId", "orderedAt", "currencyCode", "price"]
    assert "PARTIALY_CONFIRMED" in body["properties"]["status"]["enum"]
    assert set(create["responses"]) >= {"200", "201", "400", "401", "415"}
    contact = spec["paths"]["/v2.1/orders/{order_ref}/contacts"]["post"]
    schema = contact["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["identifiers"]["items"]["required"] == ["provider", "id"]
    listed = spec["paths"]["/v2.1/orders"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "items" in listed["properties"] and "next" in listed["properties"]
    assert "/v2.1/orderConsumers/{person_ref}/orderItems" in spec["paths"]
    assert "/v2.1/orderItems/{owner_ref}/extensions/{name}/fields" in spec["paths"]
    operation_ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))
