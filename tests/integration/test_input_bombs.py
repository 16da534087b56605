"""Parser bombs and oversized input cost milliseconds and megabytes, measured in a fresh process.

Each case of the bad-input corpus that attacks the reader (alias and merge-key bombs, deep
nesting, huge files and streams, bytes that are not UTF-8) runs through ``canarymesh
validate`` in its own Python process, which reports the CPU time and the growth of its peak
memory (VmHWM, reset after the imports) around the command itself. Before the limits a
"billion laughs" took a minute and 3.6 GB; the bounds here are generous (a loaded CI machine
must not fail them) and still three orders of magnitude below that.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from canarymesh.api.limits import MIB
from tests.unit.api.bad_input_corpus import Case, all_cases

pytestmark = pytest.mark.integration

# Runs one command in this process and prints what it cost: argv[1] is the input's path or "-".
MEASURE = """
import io, json, sys, time
from canarymesh.cli.main import cli
import canarymesh.cli.validate  # imported on first use: not part of the refusal's cost
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
source = sys.argv[1]
if source == "-":
    sys.stdin = io.TextIOWrapper(open(sys.argv[2], "rb"))
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # the peak (VmHWM) restarts from here: imports are not counted
rss = status("VmRSS")
cpu, wall = time.process_time(), time.perf_counter()
out = io.StringIO()
sys.stdout = out
try:
    cli.main(["validate", "-f", source], standalone_mode=False)
    code = 0
except SystemExit as exit:
    code = exit.code
sys.stdout = sys.__stdout__
print(json.dumps({
    "code": code,
    "cpu": time.process_time() - cpu,
    "wall": time.perf_counter() - wall,
    "growth_kib": status("VmHWM") - rss,
    "output": out.getvalue(),
}))
"""

BOMBS = [
    "billion-laughs",
    "billion-laughs-in-a-virtualservice",
    "merge-key-bomb",
    "aliases-repeat-a-100-kib-string",
    "alias-cycle",
    "nesting-101-levels",
    "nesting-100000-levels",
    "nesting-block-mappings",
    "configmap-of-20-mb",
    "annotation-of-2-mb",
    "file-beyond-the-input-limit",
    "stdin-beyond-the-input-limit",
    "latin1-name",
]
# What a case may hold in memory besides the refusal's own bookkeeping: the bytes it reads
# (a stream up to the input limit, a 20 MB document as bytes and as text).
READS = {"stdin-beyond-the-input-limit": 64 * MIB, "configmap-of-20-mb": 60 * MIB}


def measure(case: Case, directory: Path) -> dict[str, object]:
    path = case.write(directory)
    argv = ["-", str(path)] if case.stdin else [str(path)]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize("name", BOMBS)
def test_a_bomb_is_refused_in_milliseconds_with_bounded_memory(name: str, tmp_path: Path) -> None:
    case = next(c for c in all_cases() if c.name == name)
    result = measure(case, tmp_path)
    assert result["code"] == 2
    output = str(result["output"])
    assert output.count("\n") == 2 and "Traceback" not in output
    assert float(str(result["cpu"])) < 2.0, result
    growth = int(str(result["growth_kib"])) * 1024
    assert growth < 100 * MIB + READS.get(name, 0), result
    # Printed for the record (pytest -s): cost of the refusal itself.
    print(f"{name}: {float(str(result['wall'])) * 1000:.0f} ms, +{growth / MIB:.1f} MiB")
