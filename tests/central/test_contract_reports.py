"""Contract reports on a generated week (seeded, reproducible): 12 households, two visits a
day each, outcomes drawn at random (on time, early, late, outside tolerance, missed, no
access, cancelled, attended without a tap). Every figure is checked against the
generator's own tally, not against the same code; the billing CSV is read back with the
csv module and its lengths checked against the generated taps. On each engine."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from central.alerts.actors import Actor
from central.alerts.lifecycle import Acknowledge, Resolve
from central.db.tables import audit
from central.reports.adjustments import AdjustmentError, add_adjustment, adjustments_for
from central.reports.alert_response import alert_response_report
from central.reports.billing import COLUMNS, adjusted_share, billing_csv, billing_rows
from central.reports.care import continuity_report, durations_report
from central.reports.punctuality import punctuality_report
from central.reports.visits import visits_between
from central.store import Store
from central.views import list_alerts
from homecall.plan import PlanDocument
from homecall.wire import GENESIS_HASH, EventEnvelope, EventType, Severity
from tests.central.test_store import store  # noqa: F401  (the fixture, on each engine)

LONDON = ZoneInfo("Europe/London")
MONDAY = date(2026, 3, 2)
OUTCOMES = ["on_time"] * 10 + ["early", "late", "late", "outside_tolerance", "missed",
                                "no_access", "cancelled", "not_recorded"]


class Gateway:
    def __init__(self, gateway_id: str) -> None:
        self.gateway_id, self.seq, self.prev = gateway_id, 0, GENESIS_HASH
        self.events: list[tuple[str, EventEnvelope]] = []

    def add(self, type_: EventType, when: datetime, **fields: Any) -> None:
        self.seq += 1
        draft = EventEnvelope(
            id=f"{self.gateway_id}-{self.seq}", gateway_id=self.gateway_id, seq=self.seq,
            type=type_, time=when, mono=float(self.seq), boot_id="b", clock_ok=True,
            prev_hash=self.prev, hash="0" * 64, **fields)
        event = draft.model_copy(update={"hash": draft.expected_hash()})
        self.prev = event.hash
        self.events.append((self.gateway_id, event))


def generate(target: Store, seed: int = 7, households: int = 12,
             days: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    tally: Counter[str] = Counter()
    lengths: dict[str, int] = {}
    for h in range(households):
        gw = Gateway(f"gw-rep-{h:02d}")
        visits, planned = [], []
        for day in range(days):
            for slot, hour in enumerate((8, 17)):
                visit_id = f"v{day}{slot}"
                outcome = rng.choice(OUTCOMES)
                start = datetime.combine(MONDAY + timedelta(days=day),
                                         datetime.min.time()).replace(hour=hour)
                visits.append({"id": visit_id, "service_user": f"su-{h}",
                               "start": start.isoformat(), "duration_min": 30,
                               "carers": [f"c-{h % 4}"],
                               **({"status": "cancelled"} if outcome == "cancelled" else {})})
                planned.append((visit_id, start, outcome))
                tally[outcome] += 1
        target.save_plan(PlanDocument.parse({
            "gateway": gw.gateway_id, "service_users": [f"su-{h}"],
            "carers": [{"id": f"c-{h % 4}"}], "visits": visits}),
            datetime(2026, 3, 1, tzinfo=UTC), "test")
        for visit_id, start, outcome in planned:
            start_utc = start.replace(tzinfo=LONDON).astimezone(UTC)
            carer = f"c-{h % 4}"
            if outcome in ("on_time", "early", "late", "outside_tolerance"):
                offset = {"on_time": 0, "early": -40, "late": 45,
                          "outside_tolerance": 100}[outcome]
                outside = {"on_time": 0, "early": 10, "late": 15, "outside_tolerance": 70}
                punctuality = "late" if outcome == "outside_tolerance" else outcome
                arrive = start_utc + timedelta(minutes=offset)
                stay = rng.randint(12, 40)
                gw.add(EventType.ARRIVAL, arrive, visit_id=visit_id, carer_id=carer,
                       data={"punctuality": punctuality,
                             "minutes_outside_window": outside[outcome]})
                gw.add(EventType.DEPARTURE, arrive + timedelta(minutes=stay),
                       visit_id=visit_id, carer_id=carer)
                lengths[f"{gw.gateway_id}/{visit_id}"] = stay
            elif outcome == "missed":
                gw.add(EventType.VISIT_MISSED, start_utc + timedelta(minutes=90),
                       visit_id=visit_id, severity=Severity.CRITICAL)
            elif outcome == "no_access":
                gw.add(EventType.NO_ACCESS, start_utc + timedelta(minutes=5),
                       visit_id=visit_id, carer_id=carer, severity=Severity.CRITICAL)
        target.store_events(gw.events, datetime(2026, 3, 9, tzinfo=UTC))
    return {"tally": tally, "lengths": lengths}


def test_a_month_of_200_households_adds_up(store: Store) -> None:  # noqa: F811
    """The contract's scale: 200 homes, four weeks, every class total, the electronic share,
    the billed minutes and the short visits against the generator's own tally."""
    truth = generate(store, seed=2026, households=200, days=28)
    visits = visits_between(store, MONDAY, MONDAY + timedelta(days=28), None)
    assert len(visits) == 200 * 28 * 2
    report = punctuality_report(visits)
    tally = truth["tally"]
    assert report["totals"] == {k: tally[k] for k in report["totals"]}
    recorded = sum(tally[k] for k in ("on_time", "early", "late", "outside_tolerance"))
    assert report["electronic_share"] == recorded / (len(visits) - tally["cancelled"])
    durations = durations_report(visits)
    stays = truth["lengths"]
    assert durations["totals"]["actual_minutes"] == sum(stays.values())
    assert durations["totals"]["short"] == sum(m < 22.5 for m in stays.values())
    rows = list(csv.DictReader(io.StringIO(billing_csv(visits))))
    assert len(rows) == len(visits)
    assert sum(int(r["actual_minutes"]) for r in rows if r["actual_minutes"]) == sum(
        stays.values())


def test_punctuality_and_electronic_share_match_an_independent_count(
    store: Store,  # noqa: F811
) -> None:
    truth = generate(store)
    tally = truth["tally"]
    visits = visits_between(store, MONDAY, MONDAY + timedelta(days=7), None)
    report = punctuality_report(visits)
    assert report["visits"] == sum(tally.values()) == 12 * 14
    assert report["totals"] == {k: tally[k] for k in report["totals"]}
    recorded = sum(tally[k] for k in ("on_time", "early", "late", "outside_tolerance"))
    assert report["electronic_share"] == recorded / (sum(tally.values()) - tally["cancelled"])
    # one organisation's view: only its gateways
    mine = visits_between(store, MONDAY, MONDAY + timedelta(days=7), {"gw-rep-00"})
    assert {v["gateway"] for v in mine} == {"gw-rep-00"} and len(mine) == 14
    # a day's window holds that day only
    tuesday = visits_between(store, MONDAY + timedelta(days=1),
                             MONDAY + timedelta(days=2), None)
    assert len(tuesday) == 12 * 2


def test_billing_csv_has_one_line_per_visit_with_the_real_lengths(
    store: Store,  # noqa: F811
) -> None:
    truth = generate(store)
    text = billing_csv(visits_between(store, MONDAY, MONDAY + timedelta(days=7), None))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0].keys()) == COLUMNS
    assert len(rows) == 12 * 14
    billed = {f"{r['gateway']}/{r['visit_id']}": int(r["actual_minutes"])
              for r in rows if r["actual_minutes"]}
    assert billed == truth["lengths"]
    first = next(r for r in rows if r["visit_id"] == "v00" and r["gateway"] == "gw-rep-00")
    assert first["planned_start"] == "2026-03-02 08:00" and first["planned_minutes"] == "30"
    assert {r["adjusted"] for r in rows} == {"N"}


def test_a_correction_is_kept_beside_the_original_flagged_and_counted(
    store: Store,  # noqa: F811
) -> None:
    truth = generate(store)
    db = store.db
    visits = visits_between(store, MONDAY, MONDAY + timedelta(days=7), None)
    attended = next(v for v in visits if v["attendances"] and v["attendances"][0]["departed"])
    untapped = [v for v in visits if not v["attendances"] and v["status"] == "planned"][:9]
    now = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    carer = attended["attendances"][0]["carer"]
    arrived = datetime.fromisoformat(attended["attendances"][0]["arrived"].replace("Z", "+00:00"))
    with pytest.raises(AdjustmentError, match="reason_code: unknown 'forgot'"):
        add_adjustment(db, attended["gateway"], attended["id"], carer, arrived,
                       arrived + timedelta(minutes=30), "forgot", "x", "cora", now)
    add_adjustment(db, attended["gateway"], attended["id"], carer, arrived,
                   arrived + timedelta(minutes=45), "missed_tap_out", "left at 45 min",
                   "cora", now)
    for visit in untapped:  # attended, but the reader was down
        start = datetime.fromisoformat(visit["planned_start"]).replace(tzinfo=LONDON)
        add_adjustment(db, visit["gateway"], visit["id"], "c-0", start,
                       start + timedelta(minutes=30), "reader_fault", "paper timesheet",
                       "cora", now)
    adjustments = adjustments_for(db)
    [kept] = adjustments[(attended["gateway"], attended["id"])]
    assert kept["original_departed_at"] == attended["attendances"][0]["departed"]
    rows = billing_rows(visits, adjustments)
    line = next(r for r in rows if (r["gateway"], r["visit_id"]) ==
                (attended["gateway"], attended["id"]))
    assert (line["actual_minutes"], line["adjusted"], line["adjustment_reason"]) == (
        "45", "Y", "missed_tap_out")
    summary = adjusted_share(rows)
    assert summary["adjusted"] == 1 + len(untapped) and summary["lines"] == 12 * 14
    assert summary["over_limit"] == ((1 + len(untapped)) / (12 * 14) > 0.05)
    assert truth["lengths"]  # the generated lengths are untouched elsewhere
    with store.db.read() as conn:
        who = conn.execute(sa.select(audit.c.who).where(
            audit.c.action == "attendance.adjusted")).scalars().all()
    assert who == ["cora"] * (1 + len(untapped))


def test_durations_and_short_visits_match_the_generated_stays(
    store: Store,  # noqa: F811
) -> None:
    truth = generate(store)
    report = durations_report(visits_between(store, MONDAY, MONDAY + timedelta(days=7), None))
    stays = truth["lengths"]
    assert report["totals"] == {
        "visits": len(stays), "planned_minutes": 30 * len(stays),
        "actual_minutes": sum(stays.values()),
        "short": sum(minutes < 0.75 * 30 for minutes in stays.values())}
    assert {f"{v['gateway']}/{v['visit_id']}" for v in report["short_visits"]} == {
        key for key, minutes in stays.items() if minutes <= 22}
    # by carer: households h and h+4 and h+8 share carer c-(h % 4)
    for carer in range(4):
        mine = {k: m for k, m in stays.items() if int(k[7:9]) % 4 == carer}
        assert report["by_carer"][f"c-{carer}"]["actual_minutes"] == sum(mine.values())


def test_continuity_counts_distinct_carers_per_person_per_week(
    store: Store,  # noqa: F811
) -> None:
    truth = generate(store)
    report = continuity_report(visits_between(store, MONDAY, MONDAY + timedelta(days=7), None))
    attended = {f"su-{int(key[7:9])}" for key in truth["lengths"]}
    assert report["by_service_user"] == {person: {"2026-W10": 1} for person in attended}
    assert report["mean_distinct_carers"] == 1


def test_alert_response_against_the_service_standard(
    store: Store,  # noqa: F811
) -> None:
    truth = generate(store)
    received = datetime(2026, 3, 9, tzinfo=UTC)  # when the generator stored them
    stray = Gateway("gw-rep-stray")  # an unknown fob: an alert that needs no incident record
    stray.add(EventType.UNKNOWN_TAG, received, severity=Severity.MEDIUM,
              data={"tag": "em4100:#0123456789ab"})
    store.store_events(stray.events, received)
    alerts = list_alerts(store)
    alerts.sort(key=lambda a: a["type"] != "unknown_tag")  # the stray first
    due = truth["tally"]["missed"] + truth["tally"]["no_access"] + 1
    assert len(alerts) == due >= 4
    desk = Actor("mo", "monitor")
    for alert, after_s in zip(alerts, (30, 120, 400), strict=False):
        store.move_alert(alert["id"], Acknowledge(), desk,
                         received + timedelta(seconds=after_s))
    store.move_alert(alerts[0]["id"], Resolve(outcome="false_alarm", note="x"), desk,
                     received + timedelta(minutes=10))
    report = alert_response_report(list_alerts(store), date(2026, 3, 9), date(2026, 3, 10))
    overall = report["all"]
    assert (overall["alerts"], overall["to_answer"], overall["unanswered"]) == (due, due,
                                                                               due - 3)
    within = {entry["within_s"]: entry for entry in overall["standard"]}
    assert (within[60]["answered"], within[180]["answered"]) == (1, 2)
    assert within[60]["share"] == 1 / due and within[60]["met"] is False
    assert overall["answer_s_median"] == 120 and overall["resolve_s_median"] == 600
    assert set(report["by_shift"]) == {"night"}  # midnight in London
    assert report["by_month"]["2026-03"]["alerts"] == due
    assert sum(g["alerts"] for g in report["by_type"].values()) == due
    # outside the period: nothing counted
    assert alert_response_report(list_alerts(store), MONDAY, MONDAY + timedelta(days=7),
                                 )["all"]["alerts"] == 0


def test_a_weeks_visits_still_count_after_next_weeks_plan_replaces_it(
    store: Store,  # noqa: F811
) -> None:
    """Coordinators send each week's plan: last week's visits (attended or missed) stay in
    its report and bill; a visit still to come that the new plan drops is gone."""
    truth = generate(store)
    before = visits_between(store, MONDAY, MONDAY + timedelta(days=7), None)
    next_monday = MONDAY + timedelta(days=7)
    store.save_plan(PlanDocument.parse({
        "gateway": "gw-rep-00", "service_users": ["su-0"], "carers": [{"id": "c-0"}],
        "visits": [{"id": "next-1", "service_user": "su-0",
                    "start": f"{next_monday.isoformat()}T08:00", "duration_min": 30}]}),
        datetime(2026, 3, 9, 6, tzinfo=UTC), "test")
    after = visits_between(store, MONDAY, MONDAY + timedelta(days=7), None)
    assert after == before and len(after) == 12 * 14
    text = billing_csv(after)
    billed = {f"{r['gateway']}/{r['visit_id']}": int(r["actual_minutes"])
              for r in csv.DictReader(io.StringIO(text)) if r["actual_minutes"]}
    assert billed == truth["lengths"]
    assert [v["id"] for v in visits_between(store, next_monday,
                                            next_monday + timedelta(days=7), None)] == ["next-1"]
    # a visit planned ahead, then dropped from the plan before it was due, is not counted
    store.save_plan(PlanDocument.parse({
        "gateway": "gw-rep-00", "service_users": ["su-0"], "carers": [{"id": "c-0"}],
        "visits": []}), datetime(2026, 3, 9, 7, tzinfo=UTC), "test")
    assert visits_between(store, next_monday, next_monday + timedelta(days=7), None) == []
