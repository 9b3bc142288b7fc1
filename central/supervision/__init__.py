"""The safety net: whether each gateway is alive and trustworthy, and central's backup run of
the rules engine for households whose gateway is silent or has a bad clock.

Pure parts only: :mod:`central.supervision.liveness` turns status messages and heartbeat
times into online/offline changes and the ``gateway_offline`` severity;
:mod:`central.supervision.backup` runs the gateway's own rules engine (imported from
``gateway.rules``) over the events central has received and says which time-based alerts
central must raise, and when; :mod:`central.supervision.dedupe` keeps one alert per
(household, visit, type) whichever side raised it first.
"""

from central import CentralError


class SupervisionError(CentralError):
    """Root of the errors the supervision core raises."""


__all__ = ["SupervisionError"]
