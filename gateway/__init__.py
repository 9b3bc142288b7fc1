"""The home gateway: drivers read devices, the rules engine decides, the journal keeps, the
outbox delivers. ``gateway.daemon`` wires them together."""


from homecall import HomeCallError


class GatewayError(HomeCallError):
    """Root of every error the gateway raises."""
