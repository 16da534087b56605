"""Golden-file comparison shared by the api tests: unified diff on mismatch, refresh on purpose.

``CANARYMESH_REFRESH_GOLDEN=1 pytest`` rewrites the expected files; a normal run never writes.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest


def refreshing() -> bool:
    return os.environ.get("CANARYMESH_REFRESH_GOLDEN") == "1"


def compare_golden(actual: str, expected_path: Path) -> None:
    if refreshing():
        expected_path.write_text(actual, encoding="utf-8")
        return
    if not expected_path.exists():
        pytest.fail(f"{expected_path} is missing; run with CANARYMESH_REFRESH_GOLDEN=1")
    expected = expected_path.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=str(expected_path),
            tofile="actual",
        )
        pytest.fail("golden mismatch:\n" + "".join(diff), pytrace=False)
