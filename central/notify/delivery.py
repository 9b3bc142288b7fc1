"""Webhook delivery: sends the queued notifications (``webhook_deliveries``) to each
subscription's URL, signed, and records every attempt with its outcome.

This module owns :class:`WebhookSender`. Deliveries are queued in the same transaction as
the alert change they announce (:func:`central.ingest.alerts.enqueue_webhooks`); the sender
runs from the supervision job, posts each due one with ``httpx`` (the body bytes kept in the
log, the ``X-HomeCall-Signature`` HMAC header made at send time from the wall clock, since
the receiver checks it against its own), and applies :class:`RetrySchedule`: delivered,
retried later with back-off, or given up (``failed``). The log survives a restart, so
retries do too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx

from central.notify.webhooks import (
    CONTENT_TYPE,
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    RetrySchedule,
    signature_header,
)
from central.store import Store
from homecall.clock import Clock

log = logging.getLogger("homecall.central.webhooks")


class WebhookSender:
    def __init__(self, store: Store, clock: Clock, *, schedule: RetrySchedule | None = None,
                 timeout_s: float = 5.0) -> None:
        self.store = store
        self.clock = clock
        self.schedule = schedule or RetrySchedule()
        self.timeout_s = timeout_s

    def deliver_due(self) -> datetime | None:
        """Attempt every due delivery; returns when the next pending one is due."""
        for row in self.store.due_deliveries(self.clock.now()):
            attempt = int(row.attempts) + 1
            status: int | None = None
            error: str | None = None
            body = row.body.encode()
            try:
                reply = httpx.post(row.url, content=body, timeout=self.timeout_s, headers={
                    "Content-Type": CONTENT_TYPE, EVENT_HEADER: row.event,
                    DELIVERY_HEADER: str(row.id),
                    SIGNATURE_HEADER: signature_header(row.secret.encode(), body,
                                                       datetime.now(UTC)),
                })
                status = reply.status_code
            except httpx.HTTPError as err:
                error = f"{type(err).__name__}: {err}"[:500]
            outcome = self.schedule.classify(attempt, status)
            now = self.clock.now()
            next_at = self.schedule.next_attempt_at(attempt, now) if outcome == "retry" else None
            state = {"delivered": "delivered", "retry": "pending", "give_up": "failed"}[outcome]
            self.store.record_delivery(int(row.id), attempts=attempt, state=state,
                                       status=status, error=error, next_attempt_at=next_at,
                                       now=now)
            log.info("webhook delivery %s attempt %d: %s (%s)", row.id, attempt, state,
                     status if status is not None else error)
        return self.store.next_delivery_at()
