"""People and homes: organisations, households, service users and carers (central only;
the gateway knows service users and carers by pseudonymous id)."""
