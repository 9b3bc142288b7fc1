"""The fleet bench's one exception, :class:`FleetError` (an
:class:`~orchestration.OrchestrationError`): the bench could not set up or run. Raised by
every module of the package; kept apart so that none of them imports another for it.
"""

from __future__ import annotations

from orchestration import OrchestrationError


class FleetError(OrchestrationError):
    """The fleet bench could not set up or run."""
