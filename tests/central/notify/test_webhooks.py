"""Webhook body, HMAC-SHA256 signature (checked with the standard library's hmac, as a
receiver would), and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from central.notify import NotifyError
from central.notify.webhooks import (
    AlertNotification,
    NotifiedAlert,
    RetrySchedule,
    body_bytes,
    signature_header,
    verify_signature,
)

SECRET = b"org-1-webhook-secret-0123"
AT = datetime(2026, 3, 2, 11, 0, 5, tzinfo=UTC)


def notification(event: str = "alert.escalated") -> AlertNotification:
    return AlertNotification(
        event=event,  # type: ignore[arg-type]
        delivery_id="d-42",
        organisation_id="org-1",
        occurred_at=AT,
        escalated_to="duty_team",
        alert=NotifiedAlert(id="a-7", type="visit_missed", severity="critical",
                            state="escalated", tier="duty_team", household_id="hh-1",
                            gateway_id="gw-demo-1", visit_id="v-1", service_user_id="su-1",
                            raised_at=AT - timedelta(minutes=5), raised_by="central",
                            escalations=1),
    )


def test_body_is_canonical_json_with_ids_only() -> None:
    body = body_bytes(notification())
    data = json.loads(body)
    assert data["event"] == "alert.escalated" and data["escalated_to"] == "duty_team"
    assert data["alert"]["raised_at"] == "2026-03-02T10:55:05Z"
    assert data["alert"]["raised_by"] == "central"
    assert body == json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    assert body_bytes(notification()) == body  # the same bytes on every retry


def test_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    body = body_bytes(notification())
    header = signature_header(SECRET, body, AT)
    timestamp = int(AT.timestamp())
    expected = hmac.new(SECRET, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={timestamp},v1={expected}"
    verify_signature(SECRET, header, body, AT + timedelta(seconds=30))


@pytest.mark.parametrize("tamper,message", [
    (lambda h, b: (h, b.replace(b"critical", b"low")), "does not match"),
    (lambda h, b: (h.replace("v1=", "v1=0"), b), "does not match"),
    (lambda h, b: ("v1=abc", b), "needs t="),
    (lambda h, b: ("t=x,v1=abc", b), "not an integer"),
    (lambda h, b: ("garbage", b), "malformed"),
])
def test_tampered_deliveries_are_refused(tamper, message) -> None:  # type: ignore[no-untyped-def]
    body = body_bytes(notification())
    header, body = tamper(signature_header(SECRET, body, AT), body)
    with pytest.raises(NotifyError, match=message):
        verify_signature(SECRET, header, body, AT)


def test_replayed_delivery_is_refused_and_wrong_secret_too() -> None:
    body = body_bytes(notification())
    header = signature_header(SECRET, body, AT)
    with pytest.raises(NotifyError, match="replayed"):
        verify_signature(SECRET, header, body, AT + timedelta(minutes=6))
    with pytest.raises(NotifyError, match="does not match"):
        verify_signature(b"another-secret-of-16+", header, body, AT)
    with pytest.raises(NotifyError, match="at least 16 bytes"):
        signature_header(b"short", body, AT)


def test_retry_schedule_backs_off_exponentially_to_a_cap_then_stops() -> None:
    schedule = RetrySchedule()
    delays = [schedule.delay_before(n) for n in range(1, 14)]
    assert [None if d is None else int(d.total_seconds()) for d in delays] == [
        0, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600, None]
    assert schedule.next_attempt_at(1, AT) == AT + timedelta(seconds=30)
    assert schedule.next_attempt_at(12, AT) is None
    with pytest.raises(NotifyError, match="numbered from 1"):
        schedule.delay_before(0)


def test_which_outcomes_are_retried() -> None:
    schedule = RetrySchedule(max_attempts=3)
    assert schedule.classify(1, 204) == "delivered"
    assert schedule.classify(1, None) == "retry"  # no answer at all
    assert schedule.classify(1, 503) == "retry"
    assert schedule.classify(1, 429) == "retry"
    assert schedule.classify(1, 404) == "give_up"  # a wrong URL will not fix itself
    assert schedule.classify(1, 401) == "give_up"
    assert schedule.classify(3, 503) == "give_up"  # out of attempts
