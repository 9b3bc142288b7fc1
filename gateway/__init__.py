"""The home gateway: drivers read devices, the rules engine decides, the journal keeps, the
outbox delivers. ``gateway.daemon`` wires them together."""


class GatewayError(Exception):
    """Root of every error the gateway raises."""
