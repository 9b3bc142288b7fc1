"""Manual adjustments: a coordinator corrects one carer's attendance at a visit (a
forgotten tap-out, a reader fault) with a reason code from the list below and a note. The
correction is a new row beside what the gateway recorded, which is never changed; the
latest correction of a (visit, carer) is what billing uses, flagged with its reason code.
Every adjustment is audited with who and when."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from central import CentralError
from central.db.engine import Database
from central.db.tables import attendance_adjustments, attendances, audit
from homecall.clock import format_utc

#: Reason codes (in the style of council call-monitoring exception codes).
REASON_CODES: dict[str, str] = {
    "missed_tap_in": "carer did not tap in",
    "missed_tap_out": "carer did not tap out",
    "reader_fault": "reader or gateway fault",
    "no_device_signal": "gateway offline or no power in the home",
    "wrong_fob": "carer used a colleague's or a spare fob",
    "visit_moved": "visit moved with the person's agreement",
    "other": "other (say what in the note)",
}


class AdjustmentError(CentralError, ValueError):
    """An adjustment refused (the message says why)."""


def add_adjustment(db: Database, gateway_id: str, visit_id: str, carer_id: str,
                   arrived_at: datetime, departed_at: datetime, reason_code: str, note: str,
                   who: str, now: datetime) -> int:
    if reason_code not in REASON_CODES:
        raise AdjustmentError(f"reason_code: unknown {reason_code!r}; use one of "
                              f"{', '.join(REASON_CODES)}")
    if departed_at <= arrived_at:
        raise AdjustmentError("departed_at: must be after arrived_at")
    if not note.strip():
        raise AdjustmentError("note: say what happened")
    with db.write() as conn:
        original = conn.execute(sa.select(attendances.c.arrived_at, attendances.c.departed_at)
                                .where(attendances.c.gateway_id == gateway_id,
                                       attendances.c.visit_id == visit_id,
                                       attendances.c.carer_id == carer_id)
                                .order_by(attendances.c.arrived_at)).first()
        adjustment_id = conn.execute(sa.insert(attendance_adjustments).values(
            gateway_id=gateway_id, visit_id=visit_id, carer_id=carer_id,
            arrived_at=format_utc(arrived_at), departed_at=format_utc(departed_at),
            original_arrived_at=original.arrived_at if original else None,
            original_departed_at=original.departed_at if original else None,
            reason_code=reason_code, note=note.strip(), made_by=who, made_at=format_utc(now),
        ).returning(attendance_adjustments.c.id)).scalar_one()
        conn.execute(sa.insert(audit).values(
            at=format_utc(now), who=who, action="attendance.adjusted",
            target=f"visit:{gateway_id}/{visit_id}",
            detail=json.dumps({"adjustment": int(adjustment_id), "carer": carer_id,
                               "reason_code": reason_code})))
    return int(adjustment_id)


def adjustments_for(db: Database, gateway_ids: list[str] | None = None,
                    ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(gateway, visit) -> its adjustments (latest per carer last), oldest first."""
    query = sa.select(attendance_adjustments).order_by(attendance_adjustments.c.id)
    if gateway_ids is not None:
        query = query.where(attendance_adjustments.c.gateway_id.in_(sorted(gateway_ids)))
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with db.read() as conn:
        for row in conn.execute(query):
            out.setdefault((row.gateway_id, row.visit_id), []).append(dict(row._mapping))
    return out
