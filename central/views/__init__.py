"""What central's users see, derived from the store (nothing here writes; routers, the
dashboard and the reports call these functions so that every screen and export agrees), one
module per thing read: :mod:`~central.views.visits` (visits with their derived status and
punctuality, a visit's window in UTC), :mod:`~central.views.alerts` (the alert list, the
desk's cursor-paged list, one alert's detail with its visit's timeline, the live stream's
changes), :mod:`~central.views.gateways` (gateway health and delivery counts, conflicting
claims to a seq), :mod:`~central.views.events` (raw events and gap rows for audit) and
:mod:`~central.views.report` (the scenario report, central's final view, with events lost,
duplicated and claimed but unverified); every function takes ``gateways`` (``None`` = all;
otherwise only these gateway ids), applied through :func:`~central.views.scope.scoped`, the
hook organisation scoping uses to show staff only their own households' gateways.
"""

from central.views.alerts import (
    SEVERITY_RANK,
    STREAM_KINDS,
    BadCursor,
    alert_changes,
    alert_detail,
    alert_page,
    list_alerts,
    stream_start,
)
from central.views.events import list_events
from central.views.gateways import gateway_page, list_conflicts, list_gateways
from central.views.report import CLAIM_AHEAD_COUNTED, delivery_counts, report
from central.views.visits import list_visits, visit_row, visit_status, window_utc

__all__ = [
    "CLAIM_AHEAD_COUNTED",
    "SEVERITY_RANK",
    "STREAM_KINDS",
    "BadCursor",
    "alert_changes",
    "alert_detail",
    "alert_page",
    "delivery_counts",
    "gateway_page",
    "list_alerts",
    "list_conflicts",
    "list_events",
    "list_gateways",
    "list_visits",
    "report",
    "stream_start",
    "visit_row",
    "visit_status",
    "window_utc",
]
