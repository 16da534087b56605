"""The bad-input corpus through the real CLI: ``validate``, ``analyze`` and ``apply`` each refuse
every case with one line naming the file, the object and the field, and no traceback; ``apply``
exits 1 (kubectl's code for a failure), ``validate`` and ``analyze`` 2 (their 0/1/2 contract,
where 1 means warnings under ``--fail-on warning``).

The cases are tests/golden/bad-inputs/cases.txt plus those built in bad_input_corpus.py;
expected.txt holds the line for each (``CANARYMESH_REFRESH_GOLDEN=1`` rewrites it). ``apply``
runs against a state directory with no mesh: it must refuse before it looks for one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from canarymesh.cli.main import cli
from tests.unit.api.bad_input_corpus import EXPECTED, Case, all_cases, expected
from tests.unit.api.golden import compare_golden, refreshing

CASES = all_cases()
# The line after the diagnostic: validate's and analyze's count, apply's refusal.
SUMMARY = {
    "validate": re.compile(r"^checked \d+ resources?: 1 error, 0 warnings, 0 info$"),
    "analyze": re.compile(r"^checked \d+ resources?: 1 error, 0 warnings, 0 info$"),
    "apply": re.compile(r"^error: nothing applied: fix the errors$"),
}
EXIT = {"validate": 2, "analyze": 2, "apply": 1}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bad-inputs")
    for case in CASES:
        if not case.stdin:
            case.write(directory)
    return directory


def run(command: str, case: Case, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.chdir(corpus)
    args = [command, "-f", "-" if case.stdin else case.filename]
    if command == "apply":
        args += ["--state-dir", str(corpus / "no-mesh")]
    return CliRunner().invoke(cli, args, input=case.build() if case.stdin else None)


def the_line(result: Result, command: str) -> str:
    """The one diagnostic line of a refusal, after checking everything around it."""
    assert result.exit_code == EXIT[command], result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    diagnostics = [line for line in lines if line.startswith("CM")]
    assert len(diagnostics) == 1, result.output
    others = [line for line in lines if not line.startswith("CM")]
    assert len(others) == 1 and SUMMARY[command].match(others[0]), result.output
    return diagnostics[0]


def test_the_corpus_holds_over_100_distinct_cases() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) >= 100


def test_expected_lines(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [f"{case.name}: {the_line(run('validate', case, corpus, monkeypatch), 'validate')}"
             for case in CASES]  # fmt: skip
    compare_golden("\n".join(lines) + "\n", EXPECTED)


@pytest.mark.parametrize("command", ["validate", "analyze", "apply"])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_refused_with_one_line(
    command: str, case: Case, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = the_line(run(command, case, corpus, monkeypatch), command)
    words = line.split()
    # Istio's code, where there is one, stands between ours and the severity.
    assert (words[2] if words[1].startswith("[IST") else words[1]) == "error"
    assert f" {case.filename}:" in line
    if not refreshing():
        assert line == expected()[case.name]
