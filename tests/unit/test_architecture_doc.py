"""docs/architecture.md stays true: every module it names exists, and its picture lists the
layers of pyproject.toml's layers contract, in the contract's order (the contract is what
import-linter enforces, so the picture is the code's)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "architecture.md").read_text()
NAME_COLUMN = 45  # in the picture, layer names stand left of this column, captions right of it


def _named_modules() -> set[str]:
    return set(re.findall(r"`((?:canarymesh|bookinfo)(?:\.[a-z_]+)*)`", DOC))


def test_every_module_the_page_names_exists() -> None:
    names = _named_modules()
    assert len(names) > 40  # the tables are there, and the pattern still finds them
    missing = sorted(n for n in names if importlib.util.find_spec(n) is None)
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_path_the_page_names_exists() -> None:
    paths = set(re.findall(r"`((?:tests|docs|scripts|src|bench)/[^`\s<]*)`", DOC))
    paths.add("pyproject.toml")
    assert not sorted(p for p in paths if not (REPO / p.rstrip("/")).exists())


def test_the_picture_lists_the_contracts_layers_in_order() -> None:
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layered,) = [c for c in contracts["contracts"] if c["type"] == "layers"]
    picture = DOC.split("## The picture", 1)[1].split("```")[1].splitlines()
    drawn = [line[:NAME_COLUMN].split() for line in picture]  # each row's names, no captions
    rows = []
    for layer in layered["layers"]:
        parts = [p.strip() for p in layer.split("|")]
        found = [i for i, names in enumerate(drawn) if all(p in names for p in parts)]
        assert found, f"the picture does not show the layer {layer!r}"
        rows.append(found[0])
    assert rows == sorted(rows), "the picture's layers are not in the contract's order"
