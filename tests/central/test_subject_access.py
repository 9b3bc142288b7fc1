"""Subject access: a manager exports everything held about one person (record, household,
visits, alerts with their trail), the export is audited, and another organisation's person
does not exist for them."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa

from central.db.tables import audit
from tests.central.conftest import World


def test_a_manager_exports_one_persons_data_and_it_is_audited(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    manager = world.headers["manager"]
    reply = client.get(f"/api/reports/subject-access/{a.service_user}", headers=manager)
    assert reply.status_code == 200, reply.text
    export = reply.json()
    assert export["person"]["name"] == "Person A"
    assert export["person"]["next_of_kin"][0]["phones"] == ["+44 7700 900001"]
    assert export["household"]["gateway_id"] == a.gateway
    assert [v["id"] for v in export["visits"]] == ["v-a"]
    assert [x["id"] for x in export["alerts"]] == [a.alert]
    assert export["exported_by"] == "manager-a"
    rows = list(csv.DictReader(io.StringIO(client.get(
        f"/api/reports/subject-access/{a.service_user}", params={"format": "csv"},
        headers=manager).text)))
    assert [r["visit_id"] for r in rows] == ["v-a"]
    with world.app.state.db.read() as conn:
        exported = conn.execute(sa.select(audit.c.who).where(
            audit.c.action == "subject_access.exported")).scalars().all()
    assert exported == ["manager-a", "manager-a"]
    # B's person does not exist for A's manager; a monitor may not export at all
    assert client.get(f"/api/reports/subject-access/{b.service_user}",
                      headers=manager).status_code == 404
    assert client.get(f"/api/reports/subject-access/{a.service_user}",
                      headers=world.headers["monitor"]).status_code == 403


def test_each_report_downloads_as_csv_with_its_columns(world: World) -> None:
    """The CSV downloads councils import: a header line with the documented columns."""
    headers = world.headers["coordinator"]
    period = {"from": "2026-03-01", "to": "2026-03-31", "format": "csv"}
    expected = {
        "durations": ["group", "id", "visits", "planned_minutes", "actual_minutes", "short"],
        "continuity": ["service_user_id", "week", "distinct_carers"],
        "alert-response": ["group", "key", "alerts", "cleared_before_answer", "to_answer",
                           "unanswered", "answered_within_60s", "share_within_60s",
                           "answered_within_180s", "share_within_180s", "answer_s_median",
                           "answer_s_p90", "resolved", "resolve_s_median"],
    }
    for name, columns in expected.items():
        reply = world.client.get(f"/api/reports/{name}", params=period, headers=headers)
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(reply.text)))
        assert rows[0] == columns, name
    alert_rows = list(csv.DictReader(io.StringIO(world.client.get(
        "/api/reports/alert-response", params=period, headers=headers).text)))
    assert alert_rows[0]["group"] == "all" and alert_rows[0]["alerts"] == "1"  # A's only
    bad = world.client.get("/api/reports/durations", params={**period, "to": "2026-02-01"},
                           headers=headers)
    assert bad.status_code == 422 and "after from" in bad.text


def test_the_alert_response_standard_can_be_set_per_request(world: World) -> None:
    headers = world.headers["manager"]
    period = {"from": "2026-03-01", "to": "2026-03-31"}
    own = world.client.get("/api/reports/alert-response",
                           params={**period, "standard": "30:0.9,300:0.999"},
                           headers=headers).json()
    assert [(e["within_s"], e["target"]) for e in own["all"]["standard"]] == [
        (30, 0.9), (300, 0.999)]
    default = world.client.get("/api/reports/alert-response", params=period,
                               headers=headers).json()
    assert [(e["within_s"], e["target"]) for e in default["all"]["standard"]] == [
        (60, 0.975), (180, 0.99)]
    bad = world.client.get("/api/reports/alert-response",
                           params={**period, "standard": "60:1.5"}, headers=headers)
    assert bad.status_code == 422 and "standard" in bad.text
