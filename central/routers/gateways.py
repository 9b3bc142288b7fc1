"""Gateways: health, delivery position, and commands to a gateway. Staff see their
organisation's gateways only."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from central.auth.deps import (
    AllowedGateways,
    AnyStaff,
    HomeEditor,
    UserManager,
    require_visible,
)
from central.deps import ClockDep, IngestDep, Seq, StoreDep
from central.ingest.events import StoreError
from central.views import list_conflicts, list_gateways
from homecall.wire import CommandMessage, WireError, validate_gateway_id

router = APIRouter(prefix="/api/gateways", tags=["gateways"])


@router.get("")
def gateways(store: StoreDep, user: AnyStaff, allowed: AllowedGateways) -> list[dict[str, Any]]:
    return list_gateways(store, gateways=allowed)


@router.get("/{gateway_id}/conflicts")
def conflicts(gateway_id: str, store: StoreDep, user: AnyStaff,
              allowed: AllowedGateways) -> list[dict[str, Any]]:
    """Seqs two different events claim: the stored event and the other claimants, side by
    side (the gateway's ack stays below the lowest until staff resolve it)."""
    require_visible(allowed, gateway_id, "gateway")
    return list_conflicts(store, gateway_id)


class ConflictResolution(BaseModel):
    """Which claim to a seq is the gateway's real event, and why staff think so."""

    model_config = ConfigDict(extra="forbid")
    keep_hash: str = Field(pattern=r"^[0-9a-f]{64}$",
                           description="the hash of the claim to keep (stored or conflicting)")
    reason: str = Field(min_length=1, max_length=512)


@router.post("/{gateway_id}/conflicts/{seq}/resolve")
def resolve_conflict(
    gateway_id: str, seq: Seq, resolution: ConflictResolution, store: StoreDep,
    ingest: IngestDep, clock: ClockDep, user: UserManager, allowed: AllowedGateways,
) -> dict[str, Any]:
    """A manager settles a conflict: the chosen claim becomes the stored event, the other is
    kept as resolved, the ``gateway_integrity`` alert is auto-resolved, all audited; the
    gateway's ack moves on (sent at once when central is on the broker)."""
    require_visible(allowed, gateway_id, "gateway")
    try:
        contiguous = store.resolve_conflict(gateway_id, seq, resolution.keep_hash,
                                            user.username, resolution.reason, clock.now())
    except StoreError as err:
        raise HTTPException(status_code=409, detail=str(err)) from err
    if ingest is not None and ingest.connected.is_set():
        ingest.publish_ack(gateway_id)
    return {"gateway": gateway_id, "seq": seq, "kept": resolution.keep_hash,
            "contiguous_seq": contiguous, "conflicts": list_conflicts(store, gateway_id)}


@router.post("/{gateway_id}/commands", status_code=202)
def send_command(
    gateway_id: str, command: CommandMessage, store: StoreDep, ingest: IngestDep,
    clock: ClockDep, user: HomeEditor, allowed: AllowedGateways,
) -> dict[str, Any]:
    """Send a command (``identify``); 202 with its id. The gateway reports what it did in
    its next status, shown as ``last_command`` on ``GET /api/gateways`` (matched by id)."""
    try:
        validate_gateway_id(gateway_id)
    except WireError as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    require_visible(allowed, gateway_id, "gateway")
    if not any(g["id"] == gateway_id for g in list_gateways(store, gateways=[gateway_id])) \
            and store.household_gateway(gateway_id) is None:
        raise HTTPException(status_code=404, detail=f"no gateway {gateway_id!r}")
    if ingest is None or not ingest.connected.is_set():
        raise HTTPException(status_code=503, detail="central is not connected to the broker")
    sent = command.model_copy(update={"id": command.id or uuid.uuid4().hex[:16]})
    ingest.publish_command(gateway_id, sent)
    store.audit(clock.now(), user.username, f"gateway.{sent.command}",
                f"gateway:{gateway_id}", {"id": sent.id, **sent.args})
    return {"gateway": gateway_id, "command": sent.command, "id": sent.id}
