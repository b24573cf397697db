from conftest import CONTACT, ITEM, create_order


def test_tour(client):
    order = create_order(client)
    ref = order["ref"]
    r = client.post(f"/v2.1/orders/{ref}/orderItems", json=ITEM)
    assert r.status_code == 201, r.text
    r = client.post(f"/v2.1/orders/{ref}/contacts", json=CONTACT)
    assert r.status_code == 201, r.text
    guest = r.json()["guest"]["href"].rsplit("/", 1)[1]
    r = client.post(f"/v2.1/orders/{ref}/extensions/ext", json={"storeLocation": "London", "totalUnits": 8})
    assert r.status_code == 201, r.text
    r = client.get(f"/v2.1/orders?guestRef={guest}&expand=true&sort=orderedAt::DESC")
    assert r.status_code == 200, r.text
    print(r.json())
    r = client.get(f"/v2.1/orders/{ref}?expand=true")
    print(r.json())
    assert r.json()["orderItems"]["items"][0]["price"] == 30.6
