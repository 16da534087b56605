"""The diagnostic catalog: stable, ordered, documented, exercised; and how a line reads."""

from __future__ import annotations

import re
from pathlib import Path

from canarymesh.api.diagnostics import CATALOG, Diagnostic, Diagnostics, make, message
from tests.unit.api.diagnostics_doc import render_doc
from tests.unit.api.golden import compare_golden

ROOT = Path(__file__).parents[3]
DOCS = ROOT / "docs" / "diagnostics.md"


def test_codes_are_unique_and_in_code_order() -> None:
    codes = [m.code for m in CATALOG]
    assert codes == sorted(set(codes))
    assert all(re.fullmatch(r"CM\d{4}", code) for code in codes)


def test_the_docs_page_is_the_rendered_catalog() -> None:
    compare_golden(render_doc(), DOCS)


def test_every_code_has_its_section_in_the_docs() -> None:
    text = render_doc()
    sections = re.findall(r"^### (CM\d{4}) (.+)$", text, flags=re.MULTILINE)
    assert sections == [(m.code, m.title) for m in CATALOG]
    for entry in CATALOG:
        assert entry.description in text, entry.code


def test_every_code_is_exercised_by_a_test() -> None:
    used = set()
    for path in [
        *ROOT.glob("tests/golden/validate/*.errors.txt"),
        ROOT / "tests" / "golden" / "bad-inputs" / "expected.txt",
        *ROOT.glob("tests/unit/**/*.py"),
    ]:
        if path.name != "test_diagnostics.py":
            used.update(re.findall(r"CM\d{4}", path.read_text(encoding="utf-8")))
    assert [m.code for m in CATALOG if not m.retired and m.code not in used] == []


def test_a_line_names_file_resource_field_value_and_reason() -> None:
    full = make(
        "CM0201",
        file="reviews.yaml",
        line=14,
        resource="VirtualService default/reviews",
        field="spec.http[0].route[1].weight",
        value="-5",
    )
    assert str(full) == (
        "CM0201 error reviews.yaml:14 VirtualService default/reviews "
        "spec.http[0].route[1].weight: -5: must not be negative"
    )
    bare = make("CM0001", file="x.yaml", line=3, problem="mapping values are not allowed here")
    assert str(bare) == "CM0001 error x.yaml:3: mapping values are not allowed here"
    assert message("CM0203").level == "warning"


def test_diagnostics_are_ordered_deduplicated_and_know_their_levels() -> None:
    def at(line: int, code: str) -> Diagnostic:
        return make(code, file="f.yaml", line=line, problem="p", total=1, rule="#1", reason="r")

    found = Diagnostics.of([at(9, "CM0203"), at(2, "CM0001"), at(2, "CM0001"), at(5, "CM0213")])
    assert [(d.line, d.code) for d in found] == [(2, "CM0001"), (5, "CM0213"), (9, "CM0203")]
    assert found.has_errors
    assert [d.code for d in found.warnings] == ["CM0203"]
    assert not Diagnostics.of(found.warnings).has_errors
    assert found.items[0].to_json()["level"] == "error"
