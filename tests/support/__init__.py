"""Test infrastructure shared by several suites (real servers started privately)."""
