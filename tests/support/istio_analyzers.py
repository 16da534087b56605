"""Runs ``canarymesh analyze`` over Istio's own analyzer test cases and compares the messages.

Istio keeps its analyzer tests as data: ``pkg/config/analysis/analyzers/analyzers_test.go``
lists cases (input files under ``testdata/``, the analyzer under test, the messages expected
as ``{msg.Name, "Kind namespace/name"}``), and ``pkg/config/analysis/msg/messages.yaml`` maps
message names to codes. Nothing of Istio's is committed here: point ``ISTIO_SOURCE`` at a
checkout of istio/istio (a release branch, e.g. release-1.31) and run

    ISTIO_SOURCE=~/src/istio .venv/bin/python -m tests.support.istio_analyzers

which prints one row per case and the totals; ``tests/unit/api/test_istio_analyzer_cases.py``
runs the same comparison and fails on any miss or extra message.

A case is *covered* when its analyzer is one our catalog names (each CM code carries the Istio
code and analyzer it corresponds to). For a covered case, our findings of that analyzer are
compared with the expected messages as a multiset of (code, kind, name[, namespace]): the
namespace is compared only where Istio's expectation names one (it omits it when the input
did). ``found`` counts expected messages we report, ``missed`` those we do not, ``extra`` our
findings of that analyzer that Istio does not expect. Findings of other checks (validation
errors on Istio's deliberately broken inputs, other analyzers) are counted apart, as
``other errors``, and do not fail the comparison.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from canarymesh.api.analyze import analyze
from canarymesh.api.diagnostics import CATALOG, Diagnostic
from canarymesh.api.loader import load_paths

ENV = "ISTIO_SOURCE"
ANALYZERS = Path("pkg/config/analysis/analyzers")
MESSAGES = Path("pkg/config/analysis/msg/messages.yaml")
# Go type of an analyzer, as analyzers_test.go writes it -> its Metadata().Name.
ANALYZER_NAMES = {
    "destinationrule.PodNotSelectedAnalyzer": "destinationrule.SubsetSelectPodAnalyzer",
    "authz.AuthorizationPoliciesAnalyzer": "auth.AuthorizationPoliciesAnalyzer",
    "schemaValidation.CollectionValidationAnalyzer(collections.VirtualService)": (
        "schema.ValidationAnalyzer.VirtualService"
    ),
}
Key = tuple[str, str, str, str | None]  # (IST code, kind, name, namespace or None)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    inputs: tuple[str, ...]
    analyzer: str
    expected: tuple[tuple[str, str], ...]  # (message name, "Kind ns/name" or "Kind name")


@dataclass(slots=True)
class Outcome:
    case: Case
    covered: bool
    found: int = 0
    missed: list[Key] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    other_errors: list[str] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return len(self.case.expected)


def source_root() -> Path | None:
    value = os.environ.get(ENV)
    if not value:
        return None
    root = Path(value).expanduser()
    return root if (root / ANALYZERS / "analyzers_test.go").is_file() else None


def message_codes(root: Path) -> dict[str, str]:
    """Message name (``ReferencedResourceNotFound``) -> code (``IST0101``)."""
    data = yaml.safe_load((root / MESSAGES).read_text(encoding="utf-8"))
    return {m["name"]: m["code"] for m in data["messages"]}


def blocks(text: str) -> list[str]:
    """The top-level ``{...}`` entries of ``var testGrid = []testCase{ ... }``."""
    start = text.index("var testGrid = []testCase{") + len("var testGrid = []testCase{")
    depth, begin, found = 0, 0, []
    for i in range(start, len(text)):
        char = text[i]
        if char == "{":
            if depth == 0:
                begin = i
            depth += 1
        elif char == "}":
            if depth == 0:
                break
            depth -= 1
            if depth == 0:
                found.append(text[begin : i + 1])
    return found


def parse_cases(root: Path) -> list[Case]:
    text = (root / ANALYZERS / "analyzers_test.go").read_text(encoding="utf-8")
    cases = []
    for block in blocks(text):
        name = re.search(r'name:\s*"([^"]*)"', block)
        inputs = re.search(r"inputFiles:\s*\[\]string\{(.*?)\}", block, flags=re.DOTALL)
        analyzer = re.search(r"analyzer:\s*&?([\w.]+(?:\([\w.]+\))?)", block)
        if not (name and inputs and analyzer):
            continue
        files = tuple(re.findall(r'"([^"]+)"', inputs.group(1)))
        expected = tuple(re.findall(r'\{msg\.(\w+),\s*"([^"]*)"\}', block))
        go_type = analyzer.group(1).rstrip("{")
        cases.append(Case(name.group(1), files, ANALYZER_NAMES.get(go_type, go_type), expected))
    return cases


def covered_analyzers() -> set[str]:
    return {m.analyzer for m in CATALOG if m.analyzer}


def our_key(diagnostic: Diagnostic) -> Key:
    kind, _, full = (diagnostic.resource or "").partition(" ")
    namespace, _, name = full.rpartition("/")
    return (diagnostic.istio_code or "", kind, name, namespace or None)


def expected_key(codes: dict[str, str], message: str, origin: str) -> Key:
    kind, _, full = origin.partition(" ")
    namespace, slash, name = full.rpartition("/")
    return (codes.get(message, message), kind, name, namespace if slash else None)


def analyzer_of(diagnostic: Diagnostic) -> str | None:
    entry = next((m for m in CATALOG if m.code == diagnostic.code), None)
    if entry is not None and entry.analyzer:
        return entry.analyzer
    # Field errors of Istio's kinds are Istio's schema validation (IST0106).
    kind = (diagnostic.resource or "").split(" ")[0]
    return f"schema.ValidationAnalyzer.{kind}" if diagnostic.istio_code else None


def matches(ours: Key, theirs: Key) -> bool:
    return ours[:3] == theirs[:3] and (theirs[3] is None or ours[3] == theirs[3])


def run_case(root: Path, codes: dict[str, str], case: Case, covered: set[str]) -> Outcome:
    outcome = Outcome(case, covered=case.analyzer in covered)
    paths = [root / ANALYZERS / f for f in case.inputs]
    result = load_paths(paths)
    diagnostics = list(result.diagnostics) + list(analyze(result.resources))
    mine = [d for d in diagnostics if analyzer_of(d) == case.analyzer]
    outcome.other_errors = [str(d) for d in diagnostics if d.level == "error" and d not in mine]
    if not outcome.covered:
        return outcome
    pending = [our_key(d) for d in mine]
    texts = [str(d) for d in mine]
    for message, origin in case.expected:
        wanted = expected_key(codes, message, origin)
        hit = next((i for i, key in enumerate(pending) if matches(key, wanted)), None)
        if hit is None:
            outcome.missed.append(wanted)
        else:
            outcome.found += 1
            pending.pop(hit)
            texts.pop(hit)
    outcome.extra = texts
    return outcome


def run_all(root: Path) -> list[Outcome]:
    codes, covered = message_codes(root), covered_analyzers()
    return [run_case(root, codes, case, covered) for case in parse_cases(root)]


def table(outcomes: list[Outcome]) -> str:
    rows = [
        "| case | analyzer | expected | found | missed | extra | other errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        if o.covered:
            rows.append(
                f"| {o.case.name} | {o.case.analyzer} | {o.expected} | {o.found} | "
                f"{len(o.missed)} | {len(o.extra)} | {len(o.other_errors)} |"
            )
    covered = [o for o in outcomes if o.covered]
    totals = Counter(
        expected=sum(o.expected for o in covered),
        found=sum(o.found for o in covered),
        missed=sum(len(o.missed) for o in covered),
        extra=sum(len(o.extra) for o in covered),
    )
    rows.append(
        f"| **{len(covered)} cases** | {len({o.case.analyzer for o in covered})} analyzers | "
        f"{totals['expected']} | {totals['found']} | {totals['missed']} | {totals['extra']} | |"
    )
    skipped = sorted({o.case.analyzer for o in outcomes if not o.covered})
    rows.append("")
    rows.append(f"Not covered ({len(outcomes) - len(covered)} cases): {', '.join(skipped)}")
    return "\n".join(rows)


def details(outcomes: list[Outcome]) -> str:
    lines = []
    for o in outcomes:
        if o.covered and (o.missed or o.extra):
            lines.append(f"{o.case.name}:")
            lines += [f"  missed {key}" for key in o.missed]
            lines += [f"  extra  {text}" for text in o.extra]
    return "\n".join(lines)


def main() -> int:
    root = source_root()
    if root is None:
        print(f"set {ENV} to a checkout of istio/istio", file=sys.stderr)
        return 2
    outcomes = run_all(root)
    print(table(outcomes))
    extra = details(outcomes)
    if extra:
        print("\n" + extra)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
