"""Commissioning a gateway in the home: the walk-test's steps as a pure machine fed device
observations (``steps``), and the installer's command with its live display (``walk_test``)."""
