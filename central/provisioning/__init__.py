"""Enrolling a gateway: central's certificate authority (``ca``), one-time enrolment codes
(``codes``), and the API an installer and a new gateway use (``router``). A gateway's
private key is made on the device and never leaves it; central signs its CSR with the
gateway id (the household's) as the certificate's common name, which the broker then uses as
its username, so no gateway can speak for another."""

from central import CentralError


class ProvisioningError(CentralError):
    """Enrolment refused (the message says why)."""
