"""The top of the program: what runs the parts together.

``demo`` plays a scenario on the whole product; ``stack`` starts and stops its processes
(Mosquitto through ``broker``, central, the simulator, gateways, and the network cuts of
``netem``); ``benchmarks`` measures them. Imports run one way: this package uses ``gateway``,
``central``, ``firmware_sim`` and the shared seams in ``homecall``, and none of those import
it.
"""

from homecall import HomeCallError


class OrchestrationError(HomeCallError):
    """Root of the errors the demo, the process stack and the benchmarks raise."""
