"""HomeCall: electronic call monitoring for home care.

This package holds the seams shared by every part of the product: the clock, the wire
schema, plans and tags, carer tokens and signing, device observations and the scenario
format, plus the ``homecall`` command's dispatcher (which imports a command's module by name
only when that command runs). It imports none of the other packages. The gateway daemon is
in ``gateway``, the central service in ``central``, the byte-level device simulator in
``firmware_sim``, and the demo, the process stack and the benchmarks in ``orchestration``.
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
