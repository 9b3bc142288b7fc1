"""The alert desk's pure core: the alert lifecycle (one transition table), escalation
policy, outcome codes, and incident records with the no-response checklist.

Nothing here touches a database, the broker or the clock: every function is given the
current state and ``now`` and returns the new state plus what to record. The storage and
API layers call these functions and persist what they return; an error raised here is a
refusal the API reports as a conflict (409) or a validation failure (422).
"""

from central import CentralError


class AlertDeskError(CentralError):
    """Root of every refusal the alert desk's core raises."""


__all__ = ["AlertDeskError"]
