"""The release group writer's golden cases (``tests/golden/release-groups/<case>.in.yaml``: a
Canary spec with ``group`` and its name, the user's VirtualServices (the ingress, then one per
member in the group's order), the weights; ``<case>.out.yaml``: every VirtualService as written,
in the order they are applied). Shared by the writer's test and both runtimes' router tests."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.api.canary import Canary, GroupMember
from canarymesh.rollout.actions import Weights
from canarymesh.routing.release_group import group_objects

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "release-groups"
CASES = sorted(p.name.removesuffix(".in.yaml") for p in GOLDEN.glob("*.in.yaml"))


def load_case(case: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((GOLDEN / f"{case}.in.yaml").read_text())
    return data


def canary_of(data: dict[str, Any]) -> Canary:
    return Canary.model_validate(data["canary"])


def weights_of(data: dict[str, Any]) -> Weights:
    return Weights(data["weights"]["canary"], data["weights"]["stableSubset"])


def members_of(data: dict[str, Any]) -> list[tuple[GroupMember, dict[str, Any]]]:
    group = canary_of(data).group
    assert group is not None
    return list(zip(group.members, data["objects"][1:], strict=True))


def written(data: dict[str, Any]) -> list[dict[str, Any]]:
    ingress = data["objects"][0]
    return group_objects(ingress, members_of(data), canary_of(data), data["name"],
                         weights_of(data))  # fmt: skip


def dump(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=True, default_flow_style=False)


def check(case: str, got: list[dict[str, Any]], who: str) -> None:
    """``got`` must be the case's objects; ``CANARYMESH_REFRESH_GOLDEN=1`` rewrites the file
    from the pure writer (review the diff), never from a runtime."""
    path = GOLDEN / f"{case}.out.yaml"
    if who == "writer" and os.environ.get("CANARYMESH_REFRESH_GOLDEN") == "1":
        path.write_text(dump(got))
    want = path.read_text()
    if dump(got) != want:
        diff = difflib.unified_diff(
            want.splitlines(), dump(got).splitlines(), "expected", "got", lineterm=""
        )
        pytest.fail(f"{case}: {who} differs from golden\n" + "\n".join(diff))
