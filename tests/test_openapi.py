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


def answers_as_documented(app, response, method: str, path: str) -> None:
    """The answer's status is documented for the operation and its body matches that status's schema."""
    import jsonschema_rs

    documented = app.openapi()["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, (method, path, response.status_code, sorted(documented))
    schema = documented[str(response.status_code)].get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        errors = [error.message for error in jsonschema_rs.validator_for(schema).iter_errors(response.json())]
        assert not errors, (method, path, errors[:3])


def test_what_the_stream_and_batches_make_reads_as_documented(app, client, database, settings):
    """Guests seen by the Stream API, flight items, people, extensions and batches: shapes the generated
    requests of the schemathesis run rarely reach, on both databases."""
    from batch_helpers import order, record, run_batch
    from test_stream import Browser

    browser = Browser(client)
    flight = {"item_id": "F1", "type": "FLIGHT", "name": "DUB-LHR", "price": 99, "quantity": 1, "origin": "dub",
              "destination": "lhr", "departureDateTime": "2025-06-01T07:00Z", "flight_number": "EI152"}  # fmt: skip
    browser.send("ADD", product=flight)
    browser.send("ADD_CONSUMERS", consumer=[{"firstname": "Ann", "lastname": "Lee", "item_id": "F1"}])
    browser.send("ADD_CONTACTS", contact={"firstname": "Ann", "lastname": "Lee", "email": "seen@example.com"})
    browser.send("CONFIRM", product={"item_id": "F1"})
    browser.send("CHECKOUT", reference_id="PNR-DOC", status="CONFIRMED")
    guest = browser.owner()["ref"]
    shown = client.get(f"/v2.1/guests/{guest}")
    assert "firstSeen" in shown.json()
    answers_as_documented(app, shown, "get", "/v2.1/guests/{guest_ref}")
    answers_as_documented(app, client.get("/v2.1/guests?expand=true"), "get", "/v2.1/guests")
    found = client.get(f"/v2.1/orders?guestRef={guest}&expand=true")
    answers_as_documented(app, found, "get", "/v2.1/orders")
    order_ref = found.json()["items"][0]["ref"]
    items = client.get(f"/v2.1/orders/{order_ref}/orderItems?expand=true")
    assert items.json()["items"][0]["flightSegments"]
    answers_as_documented(app, items, "get", "/v2.1/orders/{order_ref}/orderItems")
    for kind in ("contacts", "consumers"):
        people = client.get(f"/v2.1/orders/{order_ref}/{kind}?expand=true")
        answers_as_documented(app, people, "get", f"/v2.1/orders/{{order_ref}}/{kind}")
    status = run_batch(client, database, settings, [record("order", "upsert", order("DOC-1")), "not json"])
    answers_as_documented(app, client.get(f"/v2/batches/{status['ref']}"), "get", "/v2/batches/{ref}")
    answers_as_documented(app, client.get("/v2/batches/inspect"), "get", "/v2/batches/inspect")
    answers_as_documented(app, client.get(f"/v2.1/orders/{order_ref}/extensions?expand=true"), "get",
                          "/v2.1/orders/{owner_ref}/extensions")  # fmt: skip


def bare_objects(schema: object, path: str = "") -> list[str]:
    """Where a schema says only "an object", without saying which keys it takes."""
    if isinstance(schema, list):
        return [found for index, item in enumerate(schema) for found in bare_objects(item, f"{path}[{index}]")]
    if not isinstance(schema, dict):
        return []
    here = (
        [path or "/"]
        if schema.get("type") == "object" and not {"properties", "additionalProperties"} & set(schema)
        else []
    )
    return here + [found for key, value in schema.items() for found in bare_objects(value, f"{path}/{key}")]


def test_every_request_body_is_typed_down_to_its_leaves(anonymous):
    """A client generator, and a reader of /docs, learn every key each body takes, segment definitions and
    export outputs included."""
    spec = anonymous.get("/openapi.json").json()
    untyped = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                untyped += [f"{method} {path} {media} {where}" for where in bare_objects(content["schema"])]
    for name, schema in spec["components"]["schemas"].items():
        untyped += [f"component {name} {where}" for where in bare_objects(schema)]
    assert untyped == []
    schemas = spec["components"]["schemas"]
    node = schemas["SegmentNode"]
    assert node["properties"]["all"]["items"] == {"$ref": "#/components/schemas/SegmentNode2"}
    assert schemas["SegmentNode2"]["properties"]["where"] == {"$ref": "#/components/schemas/SegmentNode3"}
    assert "all" not in schemas["SegmentNode3"]["properties"]  # three levels spelled out, no recursion
    assert "countDistinct" in node["properties"]["measure"]["properties"]["fn"]["enum"]
    export = spec["paths"]["/opencdp/v1/exports"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "firstSeen" in export["properties"]["output"]["properties"]["guest"]["items"]["enum"]
