"""Plan import from a rostering system's CSV export: one row a visit.

The columns are documented in ``docs/plan-import.md``. Each row is checked on its own (times,
duration, window, the service user and carers it names, a visit id not seen before in the
file); a bad row is rejected with its line number, the column at fault and why, and the rest
go ahead. Accepted rows are grouped by the household their service user lives in, and each
such household gets a new plan version holding exactly the imported visits (the household's
registered service users, the named carers with their registered tags, and the policy and
time zone of its current plan, if any).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time

from pydantic import ValidationError

from central.people.repository import NotFound, People, Scope
from homecall.plan import DocumentCarer, PlanDocument, PlanError, Visit

REQUIRED_COLUMNS = ("visit_id", "service_user_id", "date", "start", "duration_min")
OPTIONAL_COLUMNS = ("carers", "carers_required", "window_start", "window_end", "status")
MAX_ROWS = 20_000


class CsvFileError(PlanError):
    """The file as a whole cannot be read (encoding, header, size)."""


@dataclass(frozen=True)
class RejectedRow:
    line: int
    visit_id: str | None
    column: str | None
    reason: str


@dataclass
class CsvImport:
    """The outcome of reading a file: plan documents to save, and the rows rejected."""

    rows: int = 0
    documents: list[PlanDocument] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(len(d.visits) for d in self.documents)


class _RowError(ValueError):
    def __init__(self, column: str | None, reason: str) -> None:
        super().__init__(reason)
        self.column = column


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise _RowError("date", f"{text!r} is not a date (YYYY-MM-DD)") from err


def _parse_time(column: str, text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError as err:
        raise _RowError(column, f"{text!r} is not a local time (HH:MM)") from err


def _parse_int(column: str, text: str) -> int:
    try:
        return int(text)
    except ValueError as err:
        raise _RowError(column, f"{text!r} is not a whole number") from err


def _split_carers(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.replace(",", ";").replace(" ", ";").split(";") if part)


def read_csv(payload: bytes) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and (line number, row) pairs; raises CsvFileError for an unreadable file."""
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CsvFileError(f"the file is not UTF-8 text (byte {err.start})") from err
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        raise CsvFileError("the file is empty (a header row is required)")
    header = [name.strip().lower() for name in reader.fieldnames]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CsvFileError(f"missing column(s): {', '.join(missing)} "
                           f"(the header row names: {', '.join(header) or 'nothing'})")
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise CsvFileError(f"unknown column(s): {', '.join(unknown)}")
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for raw in reader:
            if len(rows) >= MAX_ROWS:
                raise CsvFileError(f"more than {MAX_ROWS} rows: split the file")
            values = {k.strip().lower(): (v or "").strip()
                      for k, v in raw.items() if k is not None}
            if None in raw:
                values["__extra__"] = "yes"
            if any(values.values()):
                rows.append((reader.line_num, values))
    except csv.Error as err:
        raise CsvFileError(f"line {reader.line_num}: {err}") from err
    return header, rows


def _visit(values: dict[str, str]) -> Visit:
    if values.get("__extra__"):
        raise _RowError(None, "more fields than the header has columns")
    for column in REQUIRED_COLUMNS:
        if not values.get(column):
            raise _RowError(column, "is empty")
    day = _parse_date(values["date"])
    start = datetime.combine(day, _parse_time("start", values["start"]))
    carers = _split_carers(values.get("carers", ""))
    required = (_parse_int("carers_required", values["carers_required"])
                if values.get("carers_required") else max(1, len(carers)))
    window = None
    if values.get("window_start") or values.get("window_end"):
        if not (values.get("window_start") and values.get("window_end")):
            missing = "window_end" if values.get("window_start") else "window_start"
            raise _RowError(missing, "window_start and window_end go together")
        window = (datetime.combine(day, _parse_time("window_start", values["window_start"])),
                  datetime.combine(day, _parse_time("window_end", values["window_end"])))
        if window[1] <= window[0]:
            raise _RowError("window_end", "the window must end after it starts (same day)")
    status = values.get("status") or "planned"
    if status not in ("planned", "cancelled"):
        raise _RowError("status", f"{status!r} is not 'planned' or 'cancelled'")
    try:
        return Visit.model_validate({
            "id": values["visit_id"], "service_user": values["service_user_id"],
            "start": start, "duration_min": _parse_int("duration_min", values["duration_min"]),
            "window": window, "carers_required": required, "carers": carers,
            "status": status,
        })
    except ValidationError as err:
        first = err.errors()[0]
        loc = str(first["loc"][0]) if first["loc"] else None
        at = {"id": "visit_id", "service_user": "service_user_id", "window": "window_end",
                  "duration_min": "duration_min", "carers": "carers",
                  "carers_required": "carers_required"}.get(loc or "")
        raise _RowError(at, str(first["msg"]).removeprefix("Value error, ")) from err


def import_csv(payload: bytes, people: People, scope: Scope,
               current: dict[str, PlanDocument]) -> CsvImport:
    """Check every row of ``payload``; ``current`` maps gateway -> its current plan document
    (for the policy and time zone to carry over)."""
    _, rows = read_csv(payload)
    result = CsvImport(rows=len(rows))
    seen: set[str] = set()
    by_gateway: dict[str, list[Visit]] = defaultdict(list)
    household_cache: dict[str, tuple[str, set[str], dict[str, set[str]]]] = {}
    for line, values in rows:
        visit_id = values.get("visit_id") or None
        try:
            visit = _visit(values)
            if visit.id in seen:
                raise _RowError("visit_id", f"visit id {visit.id!r} appears earlier in the file")
            try:
                service_user = people.get_service_user(visit.service_user, scope)
            except NotFound as err:
                raise _RowError("service_user_id", str(err)) from err
            if service_user.household_id not in household_cache:
                household = people.get_household(service_user.household_id, None)
                residents, carers = people.plan_people(household)
                household_cache[household.id] = (household.gateway_id, residents, carers)
            gateway, _, carers = household_cache[service_user.household_id]
            unknown = [c for c in visit.carers if c not in carers]
            if unknown:
                raise _RowError("carers", f"no carer {unknown[0]!r} in the household's "
                                "organisation")
        except _RowError as err:
            result.rejected.append(RejectedRow(line, visit_id, err.column, str(err)))
            continue
        seen.add(visit.id)
        by_gateway[gateway].append(visit)
    for gateway, residents, carers in household_cache.values():
        visits = by_gateway.get(gateway)
        if not visits:
            continue
        named = sorted({c for v in visits for c in v.carers})
        before = current.get(gateway)
        document = PlanDocument(
            gateway=gateway,
            timezone=before.timezone if before else "Europe/London",
            service_users=tuple(sorted(residents)),
            carers=tuple(DocumentCarer(id=c, tags=tuple(sorted(carers[c]))) for c in named),
            policy=dict(before.policy) if before else {},
            service_user_policy={k: v for k, v in (before.service_user_policy if before
                                                   else {}).items() if k in residents},
            visits=tuple(visits),
        )
        result.documents.append(document)
    return result
