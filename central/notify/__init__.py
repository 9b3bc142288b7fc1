"""Notifications to the outside: per-organisation webhooks for new and escalated alerts.

Pure parts only here (the body, its signature, the retry schedule); the delivery log and the
HTTP client belong to the storage/API layer that uses them.
"""

from central import CentralError


class NotifyError(CentralError):
    """Root of the notification errors (bad signature header, bad webhook settings)."""


__all__ = ["NotifyError"]
