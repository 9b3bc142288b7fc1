"""JSON form of the engine's inputs, so a step can be journalled and replayed exactly.

The gateway journals each input it feeds the engine (with the ``now`` it was given) in the
same transaction as the events that input produced, and snapshots the engine state only now
and then; after a crash it replays the inputs since the snapshot. Because ``step`` is pure,
the replay rebuilds exactly the state the crashed process had. A plan update is not encoded:
the gateway snapshots right after applying one, so a replay never crosses a plan change.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway import GatewayError
from gateway.rules.inputs import ClockStatus, EngineInput
from homecall.clock import format_utc, parse_utc
from homecall.observations import ButtonPress, ContactChange, TagRead


class InputCodecError(GatewayError, ValueError):
    """A journalled engine input that cannot be read back."""


def encode_input(item: EngineInput | None, now: datetime) -> str:
    """``item`` (None: a deadline wake-up) at ``now`` as one line of JSON."""
    body: dict[str, Any] = {"now": format_utc(now)}
    if item is None:
        body["k"] = "tick"
    elif isinstance(item, TagRead):
        body.update(k="tag", tag=item.tag, at=format_utc(item.at), source=item.source,
                    token=item.carer_token)
    elif isinstance(item, ContactChange):
        body.update(k="contact", kind=item.kind, sensor=item.sensor, open=item.open,
                    at=format_utc(item.at))
    elif isinstance(item, ButtonPress):
        body.update(k="button", name=item.name, at=format_utc(item.at))
    elif isinstance(item, ClockStatus):
        body.update(k="clock", ok=item.ok)
    else:
        raise InputCodecError(f"{type(item).__name__} is not journalled as an input")
    return json.dumps(body, separators=(",", ":"))


def decode_input(text: str) -> tuple[EngineInput | None, datetime]:
    """Inverse of :func:`encode_input`."""
    try:
        body = json.loads(text)
        now = parse_utc(body["now"])
        kind = body["k"]
        if kind == "tick":
            return None, now
        if kind == "tag":
            return TagRead(tag=body["tag"], at=parse_utc(body["at"]), source=body["source"],
                           carer_token=body["token"]), now
        if kind == "contact":
            return ContactChange(kind=body["kind"], sensor=body["sensor"], open=body["open"],
                                 at=parse_utc(body["at"])), now
        if kind == "button":
            return ButtonPress(name=body["name"], at=parse_utc(body["at"])), now
        if kind == "clock":
            return ClockStatus(bool(body["ok"])), now
    except (ValueError, KeyError, TypeError) as err:
        raise InputCodecError(f"unreadable engine input {text[:80]!r}: {err}") from err
    raise InputCodecError(f"unknown engine input kind {kind!r}")
