"""Central's API world (two organisations, staff of each role) for the plan checks, shared
with tests/central."""

from tests.central.conftest import light_password_hashing, world  # noqa: F401
