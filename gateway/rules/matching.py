"""Arrival detection: who tapped, and which visits that tap checks them in to.

This module owns the answer to "a tag was read at ``now``: whose is it, is it a repeat of
the last read, and which visits does it check the carer in to?" (the visit rules' "matching a tap").

* Carer: a verified signed NFC token names the carer directly (if the plan knows that
  carer); otherwise the tag's salted digest is looked up in the plan.
* Debounce: reads of the same tag closer together than ``debounce_s`` (the organisation's
  policy) are one tap; the interval slides, so a tag held on the reader stays one tap.
* Candidates: a visit of the household, not cancelled, not ended by ``no_access``, whose
  match horizon (window start - 2 h … window end + 4 h by default) contains ``now``, that
  the carer has not already attended, and that either lists the carer as assigned or still
  has a slot that no assigned carer holds and no unassigned carer has taken.
* One visit per service user: among one person's candidates the carer's assigned visit
  wins, then the nearest window (zero inside it), then the earlier window, then the visit
  id. A tap checks in to the chosen visit of every service user in the household, so two
  people at one address are served by one tap; sequential visits for one person are not
  merged.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from gateway.rules.state import PlanIndex, VisitState
from gateway.rules.windows import VisitTimes
from homecall.observations import TagRead
from homecall.plan import GatewayPlan
from homecall.tags import TagError, pseudonym


def tag_key(tag: str, salt: str = "") -> str:
    """A short salted digest for debouncing: the state never stores a tag UID, and keys
    are kept only for ``debounce_s`` after the last read. A tag and its
    :func:`~homecall.tags.pseudonym` under the same salt give the same key."""
    return pseudonym(salt, tag).partition("#")[2][:20]


def resolve_carer(plan: GatewayPlan | None, read: TagRead) -> tuple[str | None, bool]:
    """Return ``(carer_id, by_token)``; ``carer_id`` is None for a tag no carer holds."""
    if plan is None:
        return None, False
    if read.carer_token is not None and any(c.id == read.carer_token for c in plan.carers):
        return read.carer_token, True
    try:
        return plan.carer_for_tag(read.tag), False
    except TagError:
        return None, False


def is_repeat(tag_seen: Mapping[str, datetime], key: str, now: datetime, debounce_s: int) -> bool:
    """True if this read is part of the previous tap of the same tag."""
    last = tag_seen.get(key)
    return last is not None and timedelta(0) <= now - last < timedelta(seconds=debounce_s)


def slot_open(times: VisitTimes, visit: VisitState, carer_id: str) -> bool:
    """Whether ``carer_id`` may check in to this visit (assigned, or an unreserved slot)."""
    if carer_id in times.carers:
        return True
    unassigned_arrived = sum(1 for c in visit.carers_arrived if c not in times.carers)
    return times.carers_required - len(times.carers) - unassigned_arrived > 0


def candidate_visits(
    index: PlanIndex, visits: Mapping[str, VisitState], carer_id: str, now: datetime
) -> list[str]:
    """Visit ids the carer's tap checks in to, nearest window first."""
    best: dict[str, tuple[tuple[bool, timedelta, datetime, str], str]] = {}
    for visit_id, times in index.times.items():
        state = visits.get(visit_id)
        if state is None or times.cancelled or state.status in ("cancelled", "no_access"):
            continue
        if not times.in_horizon(now) or carer_id in state.carers_arrived:
            continue
        if not slot_open(times, state, carer_id):
            continue
        key = (carer_id not in times.carers, times.distance(now), times.window_start, visit_id)
        current = best.get(times.service_user_id)
        if current is None or key < current[0]:
            best[times.service_user_id] = (key, visit_id)
    return [visit_id for _, visit_id in sorted(best.values())]
