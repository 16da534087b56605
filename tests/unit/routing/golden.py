"""The route writer's golden cases (``tests/golden/routes/<case>.in.yaml``: a Canary spec and
its name (``reviews`` unless ``name`` says otherwise), the user's VirtualService or HTTPRoute,
the weights, apply or finalize; ``<case>.out.yaml``: the managed object). Shared by the
writer's own test and by each runtime's router test, so both runtimes are held to the same
files."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.api.canary import Canary
from canarymesh.rollout.actions import Weights
from canarymesh.routing.http_route import finalized_http_route, managed_http_route
from canarymesh.routing.virtual_service import (
    finalized_virtual_service,
    managed_virtual_service,
)

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "routes"
CASES = sorted(p.name.removesuffix(".in.yaml") for p in GOLDEN.glob("*.in.yaml"))
DEFAULT_NAME = "reviews"


def load_case(case: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((GOLDEN / f"{case}.in.yaml").read_text())
    return data


def cases_of(kind: str) -> list[str]:
    return [c for c in CASES if load_case(c)["object"]["kind"] == kind]


def name_of(data: dict[str, Any]) -> str:
    return str(data.get("name", DEFAULT_NAME))


def canary_of(data: dict[str, Any]) -> Canary:
    return Canary.model_validate(data["canary"])


def weights_of(data: dict[str, Any]) -> Weights:
    w = data["weights"]
    return Weights(
        w["canary"],
        w["stableSubset"],
        mirror=float(w.get("mirror", 0)),
        match=w.get("match", False),
    )


def written(data: dict[str, Any]) -> dict[str, Any]:
    """What the pure writer makes of a case."""
    canary, obj, w = canary_of(data), data["object"], weights_of(data)
    finalize, name = data["op"] == "finalize", name_of(data)
    if obj["kind"] == "VirtualService":
        if finalize:
            return finalized_virtual_service(obj, canary, name, w.stable_subset)
        return managed_virtual_service(obj, canary, name, w)
    if finalize:
        return finalized_http_route(obj, canary, name, w.stable_subset)
    return managed_http_route(obj, canary, name, w)


def dump(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False)


def expected(case: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((GOLDEN / f"{case}.out.yaml").read_text())
    return data


def check(case: str, got: dict[str, Any], who: str) -> None:
    """``got`` must be the case's managed object; ``CANARYMESH_REFRESH_GOLDEN=1`` rewrites the
    file from the pure writer (review the diff), never from a runtime."""
    path = GOLDEN / f"{case}.out.yaml"
    if who == "writer" and os.environ.get("CANARYMESH_REFRESH_GOLDEN") == "1":
        path.write_text(dump(got))
    want = path.read_text()
    if dump(got) != want:
        diff = difflib.unified_diff(
            want.splitlines(), dump(got).splitlines(), "expected", "got", lineterm=""
        )
        pytest.fail(f"{case}: {who} differs from golden\n" + "\n".join(diff))
