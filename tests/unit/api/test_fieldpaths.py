"""Field paths as users read them, both ways: what ``format_path`` prints, ``parse_path``
reads back (the Argo checks name their fields as text; the loader finds their lines)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from canarymesh.api.fieldpaths import format_path, parse_path

parts = st.one_of(
    st.integers(min_value=0, max_value=10_000),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
    st.text(min_size=1, max_size=12),
)


@given(st.lists(parts, min_size=1, max_size=6).filter(lambda p: not isinstance(p[0], int)))
def test_what_is_printed_is_read_back(path: list[str | int]) -> None:
    assert parse_path(format_path(tuple(path))) == tuple(path)


def test_examples() -> None:
    assert parse_path("spec.strategy.canary.steps[1].pause.duration") == (
        "spec", "strategy", "canary", "steps", 1, "pause", "duration")  # fmt: skip
    assert parse_path('metadata.labels["app.kubernetes.io/name"]') == (
        "metadata", "labels", "app.kubernetes.io/name")  # fmt: skip
    assert parse_path("spec.http[0] trailing words") == ("spec", "http", 0)
