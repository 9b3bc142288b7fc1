"""`homecall bench rules` runs and rewrites only its own section of the benchmarks file."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestration.benchmarks import rules as bench


def test_bench_writes_its_section_and_keeps_the_others(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## hardware\n\nkeep me\n\n## rules engine\n\nold\n")
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--days", "1", "--repeat", "1", "--write-docs", str(doc)])
    assert bench.run(args) == 0
    text = doc.read_text()
    assert "keep me" in text and "\nold\n" not in text
    assert text.count("## rules engine") == 1
    assert "homecall bench rules --days 1" in text
    assert "inputs/s" in text


def test_bench_week_has_the_planned_visits() -> None:
    plan, observations = bench.build_week(7, 2, 4)
    assert len(plan.visits) == 56
    assert [t for t, _ in observations] == sorted(t for t, _ in observations)
