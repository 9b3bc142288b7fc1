"""Byte-level simulator of the home's devices, and the scenario player that drives it.

Each device module encodes its frames with its own code (never the gateway's parsers) and
speaks through a pseudo-terminal (``pty_device``), so the gateway's real drivers read it
exactly as they would the hardware.
"""


from homecall import HomeCallError


class SimulatorError(HomeCallError):
    """Root of the simulator's errors."""
