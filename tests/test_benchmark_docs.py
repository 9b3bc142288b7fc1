"""Benchmarks rewrite only their own section of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

from orchestration.benchmarks import write_section


def test_section_replaced_others_kept(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## a\n\nold a\n\n## b\n\nhand-written b\n")
    write_section(doc, "## a", "## a\n\nnew a\n")
    assert doc.read_text() == "# Benchmarks\n\n## a\n\nnew a\n\n## b\n\nhand-written b\n"


def test_missing_section_is_appended(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    write_section(doc, "## c", "## c\n\nfigures\n")
    write_section(doc, "## d", "## d\n\nmore\n")
    assert doc.read_text() == "# Benchmarks\n\n## c\n\nfigures\n\n## d\n\nmore\n"
