"""Contract reports over the visits central holds: punctuality (arrival against the planned
window, by carer and by person), non-attendance, the share of visits recorded
electronically in the home, and the weekly billing export. ``visits`` selects a period's
visits, ``punctuality`` and ``billing`` compute, ``router`` serves JSON and CSV."""
