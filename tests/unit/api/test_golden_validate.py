"""The bad-input corpus: tests/golden/validate/<case>.yaml against <case>.errors.txt.

Each expected file holds the exact lines ``canarymesh analyze`` prints for the case (validation
and analysis, every level), with the file shown by its base name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from canarymesh.api.analyze import analyze
from canarymesh.api.loader import load_text
from tests.unit.api.golden import compare_golden

GOLDEN = Path(__file__).parents[2] / "golden" / "validate"
CASES = sorted(GOLDEN.glob("*.yaml"))


def diagnose(case: Path) -> list[str]:
    result = load_text(case.read_text(encoding="utf-8"), case.name)
    return (result.diagnostics + analyze(result.resources)).lines()


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_case_reports_exactly_the_expected_diagnostics(case: Path) -> None:
    lines = diagnose(case)
    assert lines, f"{case.name} is in the bad-input corpus but reports nothing"
    compare_golden("\n".join(lines) + "\n", case.with_suffix(".errors.txt"))


def test_every_expected_file_has_its_case() -> None:
    expected = {p.name.removesuffix(".errors.txt") for p in GOLDEN.glob("*.errors.txt")}
    assert expected == {c.stem for c in CASES}
