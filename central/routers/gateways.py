"""Gateways: health, delivery position, and commands to a gateway. Staff see their
organisation's gateways only."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from central.auth.deps import (
    AllowedGateways,
    AnyStaff,
    HomeEditor,
    UserManager,
    require_visible,
)
from central.deps import ClockDep, IngestDep, Seq, StoreDep
from central.ingest import StoreError
from central.views import gateway_page, list_conflicts, list_gateways
from homecall.wire import CommandMessage, WireError, validate_gateway_id

router = APIRouter(prefix="/api/gateways", tags=["gateways"])


#: Most gateways one page may hold.
MAX_PAGE = 1000


@router.get("")
def gateways(
    store: StoreDep, user: AnyStaff, allowed: AllowedGateways, response: Response,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description=(
        "at most this many gateways (by id); X-Next-Cursor names the next page"))] = None,
    cursor: Annotated[str | None, Query(max_length=64, description=(
        "the previous page's X-Next-Cursor"))] = None,
    state: Annotated[Literal["online", "offline"] | None, Query(description=(
        "only gateways in this state"))] = None,
) -> list[dict[str, Any]]:
    """The gateways this user may see, by id: state, last seen, delivery position and
    counts, the last status. Without ``limit`` every one is listed; a large fleet pages with
    ``limit`` and passes each page's ``X-Next-Cursor`` header back as ``?cursor=`` until the
    header is absent (as ``GET /api/alerts`` does)."""
    page, next_cursor = gateway_page(store, gateways=allowed, after=cursor, limit=limit,
                                     state=state)
    if next_cursor is not None:
        response.headers["X-Next-Cursor"] = next_cursor
    return page


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
