"""Plan intake: deciding whether a plan payload (from central, or a ``--plan`` file) may be
put in force, before it goes anywhere near the rules engine.

A payload is refused, with a ``plan_rejected`` event saying why and which version stays in
force, when it is too large, does not parse, is for another gateway, is not signed by
central's key (when one is configured), or cannot be run (unknown timezone, unknown policy
value, visits beyond the horizon, too many visits: :func:`homecall.plan.check_gateway_plan`,
the same check central runs before signing). The same refused payload again (a retained plan
after a reconnect) is reported once. A plan from central no newer than the one in force is
ignored; a plan from a file never outranks central's.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from homecall.plan import (
    GatewayPlan,
    PlanDocument,
    PlanError,
    check_gateway_plan,
    check_plan_size,
    verify_plan,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlanAccepted:
    plan: GatewayPlan
    source: str  # "central" | "file"


@dataclass(frozen=True, slots=True)
class PlanRefused:
    reason: str
    source: str
    sha256: str


def parse_plan(payload: bytes, gateway_id: str, now: datetime) -> GatewayPlan:
    """A :class:`GatewayPlan` (or a coordinator's :class:`PlanDocument`, hashed with a local
    salt) for this gateway that it can run; :class:`PlanError` says what is wrong."""
    check_plan_size(payload)
    try:
        plan = GatewayPlan.from_bytes(payload)
    except PlanError as first:
        try:
            document = PlanDocument.parse(payload)
        except PlanError:
            raise first from None
        plan = document.for_gateway(version=1, tag_salt=f"local-{gateway_id}")
    if plan.gateway_id != gateway_id:
        raise PlanError(f"plan is for gateway {plan.gateway_id!r}, this is {gateway_id!r}")
    check_gateway_plan(plan, now)
    return plan


class PlanIntake:
    """Judges plan payloads against the plan in force."""

    def __init__(self, gateway_id: str, public_key: bytes | None) -> None:
        self.gateway_id = gateway_id
        self.public_key = public_key
        self._rejected: str | None = None  # sha256 of the last payload refused

    def consider(self, payload: bytes, source: str, now: datetime, in_force: GatewayPlan | None,
                 in_force_source: str) -> PlanAccepted | PlanRefused | None:
        """Accept, refuse (once per payload), or ignore (None) a plan payload."""
        try:
            plan = parse_plan(payload, self.gateway_id, now)
            if source == "central" and self.public_key is not None:
                verify_plan(plan, self.public_key)
        except PlanError as err:
            return self.refuse(payload, source, str(err), in_force)
        if (
            source == "central"
            and in_force is not None
            and in_force_source == "central"  # a plan from a file never outranks central's
            and plan.version <= in_force.version
        ):
            return None
        return PlanAccepted(plan, source)

    def refuse(self, payload: bytes, source: str, reason: str,
               in_force: GatewayPlan | None) -> PlanRefused | None:
        digest = hashlib.sha256(payload).hexdigest()
        if digest == self._rejected:
            return None  # the same retained plan again (after a reconnect): reported once
        self._rejected = digest
        log.error("rejected plan from %s (keeping version %s): %s", source,
                  in_force.version if in_force else None, reason)
        return PlanRefused(reason, source, digest)
