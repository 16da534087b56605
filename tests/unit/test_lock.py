"""requirements.lock (written by scripts/lock, installed by scripts/setup and so by CI) pins every
package pyproject.toml asks for, each with hashes: a dependency added to pyproject.toml without
re-locking fails here, not on a fresh machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _locked() -> dict[str, str]:
    """Package name -> its pinned block in the lock."""
    text = (REPO / "requirements.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    found = {}
    for block in blocks:
        pin = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==\S+", block)
        if pin:
            found[_name(pin.group(1))] = block
    return found


def test_every_dependency_is_pinned_with_hashes() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = pyproject["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    wanted += [*project["optional-dependencies"]["bench"], *pyproject["build-system"]["requires"]]
    locked = _locked()
    missing = sorted({_name(r) for r in wanted} - set(locked))
    assert not missing, f"not in requirements.lock (run scripts/lock): {missing}"
    unhashed = sorted(name for name, block in locked.items() if "--hash=sha256:" not in block)
    assert not unhashed, f"pinned without hashes: {unhashed}"


def test_setup_installs_the_lock_with_hashes_checked() -> None:
    setup = (REPO / "scripts/setup").read_text()
    assert "--require-hashes -r requirements.lock" in setup
    assert "--no-deps --no-build-isolation -e ." in setup
