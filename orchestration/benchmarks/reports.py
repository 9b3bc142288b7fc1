"""``homecall bench reports``: how long the contract reports take over a year of data.

A generated year (``--days``) for ``--households`` homes, each with one person and two
visits a day (08:00 and 17:00, 30 minutes), written straight into central's tables as
ingest and plan saving would leave them: the planned visits, an attendance for most visits
(on time, early or late by a random few minutes, a random stay), a ``visit_missed`` alert
for about 3 % and a ``no_access`` for 2 % (half of all alerts acknowledged after a random
10-240 s). Then each report of the API is timed ``--repeat`` times for the last full
calendar month and the last full week, for every home at once (an admin) and for one
organisation's tenth of them, on SQLite and on PostgreSQL (a private server from the tests'
helper, so run it from a checkout). Results are printed and, with ``--write-docs``, written
into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from orchestration.benchmarks import DOCS, write_section

SECTION = "## contract reports over a year"
LONDON = ZoneInfo("Europe/London")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")


def _generate(db: Any, households: int, first_day: date, days: int, seed: int = 11) -> int:
    """Write the year into the tables; returns how many visits were planned."""
    import sqlalchemy as sa

    from central.db.tables import alerts, attendances, planned_visits
    from homecall.clock import format_utc
    from homecall.plan import Visit

    rng = random.Random(seed)
    template = ('{{"id":"{id}","service_user":"{su}","start":"{start}","duration_min":30,'
                '"window":null,"carers_required":1,"carers":["{carer}"],"status":"planned",'
                '"agreed_window":null,"agreed_at":null,"policy":{{}}}}')
    Visit.model_validate_json(template.format(id="v", su="s", start="2026-01-01T08:00:00",
                                              carer="c"))  # the shape the store writes
    visits: list[dict[str, Any]] = []
    attended: list[dict[str, Any]] = []
    raised: list[dict[str, Any]] = []
    count = 0

    def flush(final: bool = False) -> None:
        nonlocal visits, attended, raised
        if len(visits) < 20_000 and not final:
            return
        with db.write() as conn:
            for table, rows in ((planned_visits, visits), (attendances, attended),
                                (alerts, raised)):
                if rows:
                    conn.execute(sa.insert(table), rows)
        visits, attended, raised = [], [], []

    for h in range(households):
        gateway, person, carer = f"gw-r-{h:04d}", f"su-r-{h:04d}", f"c-r-{h % 300:03d}"
        for d in range(days):
            day = first_day + timedelta(days=d)
            for hour in (8, 17):
                visit_id = f"v-{day.isoformat()}-{hour:02d}"
                start_local = datetime.combine(day, datetime.min.time()).replace(hour=hour)
                visits.append({
                    "gateway_id": gateway, "visit_id": visit_id, "service_user_id": person,
                    "day": day.isoformat(), "start_local": start_local.isoformat(),
                    "visit": template.format(id=visit_id, su=person,
                                             start=start_local.isoformat(), carer=carer),
                    "plan_version": 1, "removed_at": None})
                count += 1
                start = start_local.replace(tzinfo=LONDON).astimezone(UTC)
                roll = rng.random()
                if roll < 0.95:
                    arrive = start + timedelta(minutes=rng.randint(-20, 40))
                    attended.append({
                        "gateway_id": gateway, "visit_id": visit_id, "carer_id": carer,
                        "arrived_at": format_utc(arrive),
                        "departed_at": format_utc(arrive + timedelta(
                            minutes=rng.randint(10, 40))),
                        "punctuality": "on_time" if abs((arrive - start).total_seconds())
                        < 900 else ("early" if arrive < start else "late"),
                        "minutes_outside_window": 0, "data": "{}"})
                else:
                    kind = "visit_missed" if roll < 0.98 else "no_access"
                    seen = start + timedelta(minutes=60)
                    answered = rng.random() < 0.5
                    raised.append({
                        "gateway_id": gateway, "event_seq": None, "type": kind,
                        "severity": "critical", "visit_id": visit_id,
                        "service_user_id": person, "raised_at": format_utc(seen),
                        "received_at": format_utc(seen), "raised_by": "central",
                        "status": "acknowledged" if answered else "open",
                        "acknowledged_by": "desk" if answered else None,
                        "acknowledged_at": format_utc(seen + timedelta(
                            seconds=rng.randint(10, 240))) if answered else None})
            flush()
    flush(final=True)
    return count


def _time(call: Callable[[], Any], repeat: int) -> dict[str, float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return {"p50": statistics.median(seconds), "max": max(seconds)}


def measure(url: str, households: int, days: int, repeat: int) -> dict[str, Any]:
    from central.db.engine import Database
    from central.db.migrate import upgrade
    from central.reports.adjustments import adjustments_for
    from central.reports.alert_response import alert_response_report
    from central.reports.billing import billing_csv
    from central.reports.care import continuity_report, durations_report
    from central.reports.punctuality import punctuality_report
    from central.reports.visits import visits_between
    from central.store import Store
    from central.views import list_alerts

    db = Database(url)
    try:
        upgrade(db)
        last = date(2026, 3, 1)
        first = last - timedelta(days=days)
        started = time.perf_counter()
        planned = _generate(db, households, first, days)
        generated_s = time.perf_counter() - started
        store = Store(db)
        month_end = last.replace(day=1)
        month_start = (month_end - timedelta(days=1)).replace(day=1)
        week_start = last - timedelta(days=last.weekday() + 7)
        one_org = {f"gw-r-{h:04d}" for h in range(0, households, 10)}
        results: dict[str, Any] = {"planned": planned, "generated_s": generated_s,
                                   "month": f"{month_start:%B %Y}", "week": str(week_start)}
        for scope_name, scope in (("all homes", None), (f"one organisation ({len(one_org)})",
                                                        one_org)):
            def month() -> list[dict[str, Any]]:
                return visits_between(store, month_start, month_end, scope)  # noqa: B023

            reports: dict[str, Callable[[], Any]] = {
                "visits of the month (the query)": month,
                "punctuality, month": lambda: punctuality_report(month()),
                "length of stay, month": lambda: durations_report(
                    month(), adjustments_for(db, None if scope is None else sorted(scope))),  # noqa: B023
                "continuity, month": lambda: continuity_report(month()),
                "alert response, month": lambda: alert_response_report(
                    list_alerts(store, gateways=scope), month_start, month_end),  # noqa: B023
                "billing CSV, week": lambda: billing_csv(visits_between(
                    store, week_start, week_start + timedelta(days=7), scope)),  # noqa: B023
            }
            results[scope_name] = {name: _time(call, repeat) for name, call in reports.items()}
            results[scope_name]["visits in the month"] = len(month())
        return results
    finally:
        db.dispose()


def run(args: argparse.Namespace) -> int:
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="homecall-bench-reports-") as tmp, \
            ExitStack() as stack:
        for engine in engines:
            if engine == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'central.db'}"
            else:
                sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
                from tests.support.postgres import PrivatePostgres

                server = PrivatePostgres().start()
                stack.callback(server.stop)
                url = server.new_database()
            result = measure(url, args.households, args.days, args.repeat)
            results[engine] = result
            print(f"{engine}: {result['planned']} visits generated in "
                  f"{result['generated_s']:.0f} s", flush=True)
            for scope in (k for k in result if isinstance(result[k], dict)):
                for name, timing in result[scope].items():
                    if isinstance(timing, dict):
                        print(f"  {scope}: {name}: p50 {timing['p50'] * 1000:.0f} ms, max "
                              f"{timing['max'] * 1000:.0f} ms", flush=True)
    if args.write_docs:
        _write_docs(args, results)
    return 0


def _write_docs(args: argparse.Namespace, results: dict[str, Any]) -> None:
    command = (f"homecall bench reports --households {args.households} --days {args.days} "
               f"--engine {args.engine} --repeat {args.repeat} --write-docs")
    any_result = next(iter(results.values()))
    scopes = [k for k in any_result if isinstance(any_result[k], dict)]
    names = [n for n in any_result[scopes[0]] if isinstance(any_result[scopes[0]][n], dict)]
    header = "| report | " + " | ".join(
        f"{engine}, {scope}" for engine in results for scope in scopes) + " |"
    rule = "|---|" + "---:|" * (len(results) * len(scopes))
    rows = []
    for name in names:
        cells = [f"{results[e][s][name]['p50'] * 1000:.0f} / "
                 f"{results[e][s][name]['max'] * 1000:.0f}" for e in results for s in scopes]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    sizes = "; ".join(f"{e}: {results[e]['planned']:,} visits written in "
                      f"{results[e]['generated_s']:.0f} s" for e in results)
    month_visits = ", ".join(f"{s}: {any_result[s]['visits in the month']:,}" for s in scopes)
    text = f"""{SECTION}

`{command}` ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()};
other work was running on the machine).

A generated year for {args.households} homes (one person, two visits a day; 95 % attended,
3 % missed, 2 % no access; half the alerts answered) written into central's tables
({sizes}). Each report timed {args.repeat} times, p50 / max in ms, for
{any_result['month']} (visits in the month: {month_visits}) and for the week of
{any_result['week']} (billing); "all homes" is an admin's view, "one organisation" a tenth
of the homes.

{header}
{rule}
""" + "\n".join(rows) + """

What makes it fast: a report selects the period's visits from `planned_visits` by its
indexed local day (`planned_visits_day`), then joins their attendances and alerts by the
primary keys, three queries whatever the period; the time left is Python building each
visit's row (its plan JSON parsed once per visit). Alert response reads the organisation's
alerts and filters the period in Python.
"""
    write_section(DOCS, SECTION, text)
