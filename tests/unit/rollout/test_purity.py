"""The canary core reads no clock and no randomness: time is a parameter (import-linter keeps
``time``/``random`` out; this catches ``datetime.now()`` and friends, which it cannot)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).parents[3] / "src" / "canarymesh"
PURE = sorted(p for pkg in ("analysis", "rollout", "views") for p in (SRC / pkg).rglob("*.py"))
CLOCK = re.compile(r"\b(?:datetime\.now|datetime\.utcnow|date\.today|\.now\(\)|time\.time)\b")


@pytest.mark.parametrize("path", PURE, ids=[p.name for p in PURE])
def test_no_clock_reads(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert CLOCK.findall(text) == []
    assert text.startswith('"""'), "every module opens with a docstring"


def test_the_scan_covers_the_packages() -> None:
    assert {p.parent.name for p in PURE} == {"analysis", "rollout", "views"}
    assert CLOCK.search("x = datetime.now(tz)") is not None
