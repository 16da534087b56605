"""Renders docs/diagnostics.md from the catalog and the golden corpus (one section per code).

The page is compared like a golden file (tests/unit/api/test_diagnostics.py), so it cannot drift
from the catalog; ``CANARYMESH_REFRESH_GOLDEN=1 pytest`` rewrites it. Examples are the first
line of the corpus that shows each code.
"""

from __future__ import annotations

from pathlib import Path

from canarymesh.api.diagnostics import CATALOG
from canarymesh.api.limits import LIMITS

GOLDEN = Path(__file__).parents[2] / "golden" / "validate"
# The bad-input corpus (tests/unit/api/test_bad_inputs.py): "<case>: <line>" per case.
BAD_INPUTS = Path(__file__).parents[2] / "golden" / "bad-inputs" / "expected.txt"

RANGES = {
    "CM00": "Reading input (CM00xx)",
    "CM01": "Field values (CM01xx)",
    "CM02": "VirtualService (CM02xx)",
    "CM03": "DestinationRule (CM03xx)",
    "CM04": "Gateway and ServiceEntry (CM04xx)",
    "CM05": "Security policies (CM05xx)",
    "CM06": "Gateway API, Kubernetes objects and Canary (CM06xx)",
    "CM07": "Limits (CM07xx)",
    "CM10": "Analysis (CM1xxx, `canarymesh analyze` only)",
}
INTRO = """\
# Diagnostics

Every problem `canarymesh validate`, `canarymesh analyze` and `canarymesh apply` report carries a
stable code. A code never changes meaning; a retired code stays listed here, marked retired, and
is never reused. The catalog lives in `src/canarymesh/api/diagnostics.py` (in code order); this
page is generated from it and from the bad-input corpora in `tests/golden/validate/` and
`tests/golden/bad-inputs/` (`CANARYMESH_REFRESH_GOLDEN=1 pytest tests/unit/api` rewrites it).
Each line of output reads:

```
CODE LEVEL FILE:LINE [KIND NAMESPACE/NAME] [FIELD PATH][: VALUE]: REASON
{example}
```

Levels: **error** (the input is refused: `validate` and `analyze` exit with 2, `apply` with 1
as kubectl does, and `apply` changes nothing), **warning** (accepted, but probably not what you
meant; `analyze --fail-on warning` exits with 1), **info** (worth knowing, never fails a command).

Where a rule comes from Istio it follows Istio's own validation (`pkg/config/validation`) and
analyzers (`istioctl analyze`); where it comes from Kubernetes it follows the API server. A
finding that `istioctl analyze` reports too carries Istio's code next to ours, so that Istio's
documentation can be searched for it: `CM1015 [IST0173] warning ...` on a line, `"istioCode":
"IST0173"` in `-o json` (null otherwise). Each section below names the code and the Istio
analyzer that reports it; every field error (CM01xx-CM05xx) about one of Istio's own kinds is an
Istio schema validation error, IST0106. How closely the analysis matches Istio's is measured
against Istio's own analyzer tests: see `docs/istio-fidelity.md`.

A document that does not fit its schema (CM0101-CM0105, or CM0107 on a value that is not text)
is still checked without the offending fields, so one run shows every problem; only a missing
required field or a bad list item stops the other checks of that document.

Analysis checks a reference only when the input holds objects of the referenced kind (a
VirtualService analysed alone is not told that its hosts have no Service); a Gateway's selector
is always checked, as the mesh's ingress gateway always exists.
"""
LIMITS_INTRO = [
    "Input that breaks a limit is refused in milliseconds with bounded memory, before the step the",
    "limit protects: a file over the input limit is not read, a document over the document limit",
    "is not parsed, an alias bomb is measured and never expanded. The object limits are those of",
    "the Kubernetes API server and Istio's validation, so that what the local mesh accepts a",
    "cluster accepts too. They live in `src/canarymesh/api/limits.py`; the control plane's API",
    "applies them as well (a refused apply stores nothing).",
    "",
    "| Limit | Value | What it bounds |",
    "|---|---|---|",
]
# Codes the corpus cannot show (they are about paths, not documents).
EXTRA_EXAMPLES = {"CM0010": "CM0010 error missing.yaml:0: no such file or directory"}


def render_doc() -> str:
    examples: dict[str, tuple[str, str]] = {}
    for path in sorted(GOLDEN.glob("*.errors.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            examples.setdefault(line.split()[0], (path.name.removesuffix(".errors.txt"), line))
    example = (
        "CM0201 [IST0106] error reviews.yaml:14 VirtualService default/reviews "
        "spec.http[0].route[1].weight: -5: must not be negative"
    )
    bad_inputs: dict[str, tuple[str, str]] = {}
    for row in BAD_INPUTS.read_text(encoding="utf-8").splitlines():
        case, line = row.split(": ", 1)
        bad_inputs.setdefault(line.split()[0], (case, line))
    out = [INTRO.format(example=example)]
    current = None
    for entry in CATALOG:
        if entry.code[:4] != current:
            current = entry.code[:4]
            out += [f"## {RANGES[current]}", ""]
            if current == "CM07":
                out += LIMITS_INTRO
                out += [f"| {name} | {value} | {why} |" for name, value, why in LIMITS]
                out += [""]
        retired = " (retired)" if entry.retired else ""
        out += [f"### {entry.code} {entry.title}", ""]
        istio = f" Istio: `{entry.istio}` ({entry.analyzer})." if entry.istio else ""
        out += [f"Level: **{entry.level}**{retired}.{istio} Message: `{entry.template}`", ""]
        out += [entry.description, ""]
        if entry.code in examples:
            case, line = examples[entry.code]
            out += [f"Example (`tests/golden/validate/{case}.yaml`):", "", "```", line, "```", ""]
        elif entry.code in bad_inputs:
            case, line = bad_inputs[entry.code]
            out += [f"Example (case `{case}` of `tests/golden/bad-inputs/`):", "", "```", line,
                    "```", ""]  # fmt: skip
        elif entry.code in EXTRA_EXAMPLES:
            out += ["Example:", "", "```", EXTRA_EXAMPLES[entry.code], "```", ""]
    return "\n".join(out)
