"""docs/alert-desk.md describes the tables the code uses: every lifecycle row, outcome code
and checklist step appears there, so the page cannot drift from the code unnoticed."""

from __future__ import annotations

from pathlib import Path

from central.alerts.incidents import NO_RESPONSE_CHECKLIST
from central.alerts.lifecycle import LIFECYCLE
from central.alerts.outcomes import DEFAULT_OUTCOMES

DOC = (Path(__file__).parents[3] / "docs" / "alert-desk.md").read_text()


def test_every_lifecycle_row_is_documented() -> None:
    for (state, action), move in LIFECYCLE.items():
        assert f"| `{state}` | `{action}` | `{move.to}` |" in DOC, (state, action)


def test_every_default_outcome_code_is_documented() -> None:
    for outcome in DEFAULT_OUTCOMES:
        assert f"| `{outcome.code}` | {outcome.label} |" in DOC, outcome.code


def test_every_checklist_step_is_documented_in_order() -> None:
    for number, step in enumerate(NO_RESPONSE_CHECKLIST.steps, 1):
        assert f"| {number} | `{step.id}` | {step.by} |" in DOC, step.id
