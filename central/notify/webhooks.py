"""Webhook notifications: the JSON body for a new or escalated alert, its HMAC-SHA256
signature header, and the retry schedule.

This module owns :class:`AlertNotification` (the body: ids, type, severity, state, tier and
times only, no personal data), :func:`body_bytes` (canonical JSON, the exact bytes signed and
sent), :func:`signature_header` / :func:`verify_signature` (header ``X-HomeCall-Signature:
t=<unix seconds>,v1=<hex>``, the HMAC-SHA256 of ``"<t>." + body`` under the organisation's
secret, so a receiver can reject both forged and replayed deliveries), and
:class:`RetrySchedule` (exponential back-off as a pure function of the attempt number, and
which HTTP outcomes are worth retrying). A delivery log stores each attempt and asks
:meth:`RetrySchedule.next_attempt_at` when to try again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from central.notify import NotifyError

SIGNATURE_HEADER = "X-HomeCall-Signature"
EVENT_HEADER = "X-HomeCall-Event"
DELIVERY_HEADER = "X-HomeCall-Delivery"
CONTENT_TYPE = "application/json"
SIGNATURE_TOLERANCE_S = 300

NotificationEvent = Literal["alert.raised", "alert.escalated"]


class NotifiedAlert(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    type: str
    severity: Literal["low", "medium", "high", "critical"]
    state: Literal["open", "acknowledged", "escalated", "resolved", "superseded"]
    tier: str
    household_id: str
    gateway_id: str | None = None
    visit_id: str | None = None
    service_user_id: str | None = None  # pseudonymous id, never a name
    raised_at: datetime
    received_at: datetime | None = None
    raised_by: Literal["gateway", "central"] = "gateway"
    escalations: int = Field(0, ge=0)


class AlertNotification(BaseModel):
    """The webhook body. ``delivery_id`` is the same on every retry of one notification, so a
    receiver can drop duplicates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    event: NotificationEvent
    delivery_id: str = Field(min_length=1, max_length=64)
    organisation_id: str
    occurred_at: datetime
    alert: NotifiedAlert
    escalated_to: str | None = None  # for alert.escalated
    link: str | None = None  # the alert's page on the dashboard


def body_bytes(notification: AlertNotification) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8): the bytes signed and sent."""
    data: dict[str, Any] = notification.model_dump(mode="json")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, body: bytes, at: datetime) -> str:
    """The ``X-HomeCall-Signature`` value for ``body`` sent at ``at``."""
    if len(secret) < 16:
        raise NotifyError("a webhook secret must be at least 16 bytes")
    timestamp = int(at.timestamp())
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: bytes, header: str, body: bytes, now: datetime,
    tolerance_s: int = SIGNATURE_TOLERANCE_S,
) -> None:
    """What a receiver does: raise :class:`NotifyError` unless ``header`` signs ``body`` and
    was made within ``tolerance_s`` of ``now``."""
    parts: dict[str, str] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise NotifyError(f"malformed signature header item {item!r}")
        parts[name] = value
    if "t" not in parts or "v1" not in parts:
        raise NotifyError("signature header needs t=<unix seconds> and v1=<hex>")
    try:
        timestamp = int(parts["t"])
    except ValueError as err:
        raise NotifyError(f"signature timestamp is not an integer: {parts['t']!r}") from err
    if abs(now.timestamp() - timestamp) > tolerance_s:
        raise NotifyError(f"signature timestamp {timestamp} is more than {tolerance_s} s "
                          "from now (replayed or clock skew)")
    if not hmac.compare_digest(_mac(secret, timestamp, body), parts["v1"]):
        raise NotifyError("signature does not match the body")


AttemptResult = Literal["delivered", "retry", "give_up"]


class RetrySchedule(BaseModel):
    """Exponential back-off: the wait before attempt n (n >= 2) is
    ``min(first_retry_s * factor**(n-2), max_delay_s)``; after ``max_attempts`` it stops."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_retry_s: float = Field(30.0, gt=0)
    factor: float = Field(2.0, ge=1)
    max_delay_s: float = Field(3600.0, gt=0)
    max_attempts: int = Field(12, ge=1, le=100)

    def delay_before(self, attempt: int) -> timedelta | None:
        """The wait between attempt ``attempt - 1`` and ``attempt`` (attempt 1: none);
        None when ``attempt`` is beyond ``max_attempts``."""
        if attempt < 1:
            raise NotifyError(f"attempts are numbered from 1, not {attempt}")
        if attempt > self.max_attempts:
            return None
        if attempt == 1:
            return timedelta(0)
        seconds = min(self.first_retry_s * self.factor ** (attempt - 2), self.max_delay_s)
        return timedelta(seconds=seconds)

    def next_attempt_at(self, attempt_done: int, finished_at: datetime) -> datetime | None:
        """After attempt ``attempt_done`` failed at ``finished_at``: when to try again."""
        delay = self.delay_before(attempt_done + 1)
        return None if delay is None else finished_at + delay

    def classify(self, attempt: int, status_code: int | None) -> AttemptResult:
        """``status_code`` None: no HTTP answer (connection refused, timeout, TLS error)."""
        if status_code is not None and 200 <= status_code < 300:
            return "delivered"
        retryable = status_code is None or status_code in (408, 425, 429) or status_code >= 500
        if not retryable or attempt >= self.max_attempts:
            return "give_up"
        return "retry"
