"""Sans-IO device protocols: parsers take bytes and return events, encoders return bytes.

Nothing here opens a port or a socket; drivers in ``gateway.drivers`` own the I/O.
"""
