"""Households, service users and carers through the API: create, read, change, delete, and
validation errors that name the field."""

from __future__ import annotations

from typing import Any

from tests.central.conftest import World


def _locs(response: Any) -> list[list[Any]]:
    return [e["loc"] for e in response.json()["detail"]]


def test_household_service_user_and_carer_round_trip(world: World) -> None:
    client = world.client
    installer, coordinator = world.headers["installer"], world.headers["coordinator"]
    response = client.post("/api/households", headers=installer, json={
        "gateway_id": "gw-a-2", "address": "2 Mill Lane, Leeds", "key_safe_notes": "code 4321",
        "access_notes": "side door"})
    assert response.status_code == 201, response.text
    household = response.json()
    assert household["organisation_id"] == world.a.id
    response = client.post("/api/service-users", headers=coordinator, json={
        "id": "su-a2", "household_id": household["id"], "name": "Edna Smith",
        "date_of_birth": "1931-02-03", "medication": "warfarin", "lives_alone": True,
        "next_of_kin": [{"name": "Joan", "relationship": "daughter",
                         "phones": ["+44 7700 900111", "0113 496 0000"]}]})
    assert response.status_code == 201, response.text
    person = response.json()
    assert person["next_of_kin"][0]["phones"][1] == "0113 496 0000"
    assert person["organisation_id"] == world.a.id
    response = client.patch("/api/service-users/su-a2", headers=coordinator,
                            json={"risk_notes": "falls risk"})
    assert response.json()["risk_notes"] == "falls risk"
    assert response.json()["medication"] == "warfarin"  # untouched
    monitor = world.headers["monitor"]
    assert client.get("/api/service-users/su-a2", headers=monitor).json()["lives_alone"] is True
    listed = client.get("/api/service-users", params={"household": household["id"]},
                        headers=monitor).json()
    assert [p["id"] for p in listed] == ["su-a2"]

    response = client.post("/api/carers", headers=coordinator, json={
        "name": "Sam Jones", "phone": "+44 7700 900222",
        "tags": ["em4100:0a000000ff", "nfc:04a1b2c3"]})
    assert response.status_code == 201, response.text
    carer = response.json()
    assert carer["id"].startswith("c-")
    assert carer["tags"] == ["em4100:0A000000FF", "nfc:04A1B2C3"]
    response = client.patch(f"/api/carers/{carer['id']}", headers=coordinator,
                            json={"tags": ["nfc:04a1b2c3"]})
    assert response.json()["tags"] == ["nfc:04A1B2C3"]

    # a household with people in it is not deleted from under them
    assert client.delete(f"/api/households/{household['id']}",
                         headers=installer).status_code == 409
    assert client.delete("/api/service-users/su-a2", headers=coordinator).status_code == 204
    assert client.delete(f"/api/households/{household['id']}",
                         headers=installer).status_code == 204
    assert client.get(f"/api/households/{household['id']}", headers=installer).status_code == 404
    assert client.delete(f"/api/carers/{carer['id']}", headers=coordinator).status_code == 204


def test_validation_errors_name_the_field(world: World) -> None:
    client = world.client
    installer, coordinator = world.headers["installer"], world.headers["coordinator"]
    response = client.post("/api/households", headers=installer,
                           json={"gateway_id": "GW_1", "address": ""})
    assert response.status_code == 422
    assert sorted(_locs(response)) == [["body", "address"], ["body", "gateway_id"]]
    response = client.post("/api/households", headers=installer,
                           json={"gateway_id": world.a.gateway, "address": "x"})
    assert response.status_code == 409
    assert _locs(response) == [["body", "gateway_id"]]
    response = client.post("/api/service-users", headers=coordinator, json={
        "household_id": world.a.household, "name": "X", "date_of_birth": "2999-01-01",
        "next_of_kin": [{"name": "Y", "phones": ["call me"]}]})
    assert response.status_code == 422
    assert sorted(_locs(response)) == [["body", "date_of_birth"],
                                       ["body", "next_of_kin", 0, "phones", 0]]
    response = client.post("/api/carers", headers=coordinator, json={
        "name": "Z", "phone": "+44 7700 900333", "tags": ["em4100:123"]})
    assert response.status_code == 422
    assert _locs(response) == [["body", "tags"]]
    assert "em4100:<10 hex>" in response.json()["detail"][0]["msg"]
    # a tag has one holder, whichever organisation holds it (without saying which)
    response = client.post("/api/carers", headers=coordinator, json={
        "name": "Z", "phone": "+44 7700 900333", "tags": [world.b.tag]})
    assert response.status_code == 409
    assert _locs(response) == [["body", "tags"]]
    assert "Org B" not in response.text and world.b.carer not in response.text
    response = client.post("/api/service-users", headers=coordinator, json={
        "household_id": world.a.household, "name": "X", "date_of_birth": "1940-01-01",
        "unexpected": 1})
    assert _locs(response) == [["body", "unexpected"]]


def test_changes_are_audited_with_the_logged_in_user(world: World) -> None:
    import sqlalchemy as sa

    from central.db.tables import audit

    world.client.patch(f"/api/households/{world.a.household}", headers=world.headers["manager"],
                       json={"access_notes": "ring twice"})
    world.client.post(f"/api/alerts/{world.a.alert}", headers=world.headers["monitor"],
                      json={"status": "acknowledged"})
    with world.app.state.db.read() as conn:
        rows = conn.execute(sa.select(audit.c.who, audit.c.action)
                            .where(audit.c.who != "test")).all()
    assert ("manager-a", "household.update") in rows
    alert_audit = [(who, action) for who, action in rows if action.startswith("alert.")]
    assert alert_audit == [("monitor-a", "alert.acknowledged")]
