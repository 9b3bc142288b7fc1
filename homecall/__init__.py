"""HomeCall: electronic call monitoring for home care.

This package holds the seams shared by every part of the product: the clock, the wire
schema, plans and tags, device observations, the scenario format, the demo orchestrator and
the ``homecall`` command line. The gateway daemon is in ``gateway``, the central service in
``central``, the byte-level device simulator in ``firmware_sim``.
"""

__version__ = "0.1.0"


class HomeCallError(Exception):
    """Root of every error the project raises.

    Each package has its own root beneath it (``gateway.GatewayError``,
    ``central.CentralError``, ``firmware_sim.SimulatorError``,
    ``orchestration.OrchestrationError``); the shared seams here raise subclasses of it that
    are also ``ValueError`` where the fault is a bad value. Each package translates errors from
    the libraries it uses at its boundary (``raise ... from err``), so the command line can
    report any of them as one line saying what was wrong.
    """
