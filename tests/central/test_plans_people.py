"""Plans name registered people: a plan upload is checked against the household's service
users and its organisation's carers (422 naming the field), and the CSV import reports each
rejected row with the reason."""

from __future__ import annotations

from typing import Any

from homecall.tags import tag_digest
from tests.central.conftest import World


def _plan(world: World, **changes: Any) -> dict[str, Any]:
    a = world.a
    plan: dict[str, Any] = {
        "gateway": a.gateway, "service_users": [a.service_user], "carers": [{"id": a.carer}],
        "visits": [{"id": "v-new", "service_user": a.service_user,
                    "start": "2026-03-03T09:00", "duration_min": 30, "carers": [a.carer]}],
    }
    plan.update(changes)
    return plan


def test_plan_with_registered_people_is_accepted_and_gets_their_tags(world: World) -> None:
    response = world.client.post("/api/plans", headers=world.headers["coordinator"],
                                 json=_plan(world))
    assert response.status_code == 201, response.text
    assert response.json() == {"gateway": world.a.gateway, "version": 2, "visits": 1}
    _, gateway_plan = world.app.state.store.current_plan(world.a.gateway)
    # the carer was listed without tags: central used the registered one (as a digest)
    assert gateway_plan.carers[0].tag_digests == (tag_digest(gateway_plan.tag_salt, world.a.tag),)
    assert world.a.tag not in gateway_plan.model_dump_json()


def test_plan_naming_unregistered_or_foreign_people_is_refused(world: World) -> None:
    b = world.b
    plan = _plan(world, service_users=[world.a.service_user, b.service_user],
                 carers=[{"id": world.a.carer, "tags": ["em4100:0A000000EE"]}, {"id": b.carer}])
    plan["visits"].append({"id": "v-x", "service_user": b.service_user,
                           "start": "2026-03-03T12:00", "duration_min": 30,
                           "carers": [b.carer]})
    response = world.client.post("/api/plans", headers=world.headers["coordinator"], json=plan)
    assert response.status_code == 422
    problems = {tuple(p["loc"]): p["msg"] for p in response.json()["detail"]}
    assert set(problems) == {
        ("body", "service_users", 1), ("body", "carers", 0, "tags", 0),
        ("body", "carers", 1, "id"), ("body", "visits", 1, "service_user"),
        ("body", "visits", 1, "carers"),
    }
    assert "not registered in household" in problems[("body", "service_users", 1)]
    assert "Org B" not in response.text
    assert world.app.state.store.current_plan(world.a.gateway)[1].version == 1


def _csv(*rows: str) -> bytes:
    header = "visit_id,service_user_id,date,start,duration_min,carers,window_start,window_end"
    return "\n".join([header, *rows]).encode()


def test_csv_import_accepts_good_rows_and_reports_bad_ones(world: World) -> None:
    a, b = world.a, world.b
    payload = _csv(
        f"v-100,{a.service_user},2026-03-04,08:00,30,{a.carer},07:30,08:45",  # line 2: good
        f"v-101,{a.service_user},2026-03-04,13:00,20,,,",                      # 3: good
        f"v-102,{a.service_user},2026-03-31,8am,30,{a.carer},,",               # 4: bad time
        f"v-103,su-nobody,2026-03-04,09:00,30,{a.carer},,",                    # 5: unknown su
        f"v-104,{b.service_user},2026-03-04,09:00,30,{b.carer},,",             # 6: other org
        f"v-105,{a.service_user},2026-03-04,09:00,30,{b.carer},,",             # 7: other carer
        f"v-100,{a.service_user},2026-03-05,09:00,30,{a.carer},,",             # 8: duplicate
        f"v-106,{a.service_user},2026-03-04,09:00,0,{a.carer},,",              # 9: duration
        f"v-107,{a.service_user},2026-03-04,09:00,30,{a.carer},10:00,09:00",   # 10: window
        f"v-108,{a.service_user},04/03/2026,09:00,30,{a.carer},,",             # 11: date
        f"v-109,{a.service_user},2026-03-04,09:00,30,{a.carer},,,extra",       # 12: extra field
    )
    response = world.client.post("/api/plans/import.csv", headers={
        **world.headers["coordinator"], "content-type": "text/csv"}, content=payload)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows"] == 11 and report["accepted"] == 2
    rejected = {r["line"]: (r["visit_id"], r["column"]) for r in report["rejected"]}
    assert rejected == {
        4: ("v-102", "start"), 5: ("v-103", "service_user_id"),
        6: ("v-104", "service_user_id"), 7: ("v-105", "carers"), 8: ("v-100", "visit_id"),
        9: ("v-106", "duration_min"), 10: ("v-107", "window_end"), 11: ("v-108", "date"),
        12: ("v-109", None),
    }
    reasons = {r["line"]: r["reason"] for r in report["rejected"]}
    assert "appears earlier in the file" in reasons[8]
    assert "window must end after it starts" in reasons[10]
    assert report["plans"] == [{"gateway": a.gateway, "version": 2, "visits": 2}]
    document, gateway_plan = world.app.state.store.current_plan(a.gateway)
    assert [v.id for v in document.visits] == ["v-100", "v-101"]
    assert document.visits[0].window is not None
    assert [c.id for c in gateway_plan.carers] == [a.carer]
    assert world.app.state.store.current_plan(b.gateway)[1].version == 1


def test_csv_dry_run_changes_nothing_and_a_bad_file_is_one_clear_error(world: World) -> None:
    headers = {**world.headers["manager"], "content-type": "text/csv"}
    a = world.a
    response = world.client.post("/api/plans/import.csv", params={"dry_run": "true"},
                                 headers=headers,
                                 content=_csv(f"v-1,{a.service_user},2026-03-04,08:00,30,,,"))
    assert response.json()["accepted"] == 1 and response.json()["plans"] == []
    assert world.app.state.store.current_plan(a.gateway)[1].version == 1
    response = world.client.post("/api/plans/import.csv", headers=headers,
                                 content=b"visit_id,date\nv-1,2026-03-04\n")
    assert response.status_code == 422
    assert "missing column(s): service_user_id, start, duration_min" in response.json()["detail"]
    response = world.client.post("/api/plans/import.csv", headers=headers, content=b"\xff\xfe")
    assert response.status_code == 422
    assert "not UTF-8" in response.json()["detail"]
