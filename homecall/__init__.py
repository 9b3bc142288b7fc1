"""HomeCall: electronic call monitoring for home care.

This package holds the seams shared by every part of the product: the clock, the wire
schema, plans and tags, device observations, the scenario format, the demo orchestrator and
the ``homecall`` command line. The gateway daemon is in ``gateway``, the central service in
``central``, the byte-level device simulator in ``firmware_sim``.
"""

__version__ = "0.1.0"


class HomeCallError(Exception):
    """Root of the errors raised by the shared ``homecall`` package."""
