"""A Canary with ``spec.group`` (a release group): what validation accepts and what it refuses,
each refusal naming the file, the resource and the field (CM0612)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.api.loader import load_text

REPO = Path(__file__).resolve().parents[3]
GROUP: dict[str, Any] = {
    "apiVersion": "canarymesh.io/v1alpha1",
    "kind": "Canary",
    "metadata": {"name": "reviews-ratings", "namespace": "default"},
    "spec": {
        "target": {"host": "productpage", "virtualService": "bookinfo"},
        "group": {
            "members": [
                {"host": "reviews", "virtualService": "reviews", "stableSubset": "v2",
                 "canarySubset": "v3"},
                {"host": "ratings", "virtualService": "ratings", "stableSubset": "v1",
                 "canarySubset": "v2"},
            ]
        },
        "strategy": {"canary": {"steps": [{"setWeight": 20}, {"analysis": {"duration": "1m"}}]}},
    },
}  # fmt: skip


def _problems(doc: dict[str, Any]) -> list[str]:
    loaded = load_text(yaml.safe_dump(doc), "group.yaml")
    return [str(d) for d in loaded.diagnostics if d.level == "error"]


def _with(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GROUP)
    node = doc["spec"]
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[keys[-1]] = value
    return doc


def test_a_group_needs_no_subsets_on_its_target() -> None:
    assert _problems(GROUP) == []


def test_the_example_in_canary_manifests_is_valid() -> None:
    text = (REPO / "canary-manifests" / "release-group" / "canary-release-group.yaml").read_text()
    loaded = load_text(text, "canary-release-group.yaml")
    assert [str(d) for d in loaded.diagnostics if d.level == "error"] == []
    assert loaded.resources[0].spec.group is not None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        ("target.stableSubset", "v1", "spec.target", "the target is the ingress"),
        ("group.members", [], "spec.group.members", "name at least one member"),
        ("group.members.1.host", "reviews", "spec.group.members[1].host", "same service"),
        ("group.members.1.host", "productpage", "spec.group.members[1].host", "cannot also be"),
        ("group.members.1.virtualService", "reviews", "spec.group.members[1].virtualService",
         "same VirtualService"),
        ("group.members.0.virtualService", "bookinfo", "spec.group.members[0].virtualService",
         "ingress's VirtualService"),
        ("group.members.0.canarySubset", "v2", "spec.group.members[0].canarySubset",
         "stable and canary are both v2"),
        ("group.cookieName", "a b", "spec.group.cookieName", "cookie name"),
        ("strategy.mirror", {}, "spec.strategy.mirror", "canary steps only"),
        ("strategy.sessionAffinity", {"cookieName": "x"}, "spec.strategy.sessionAffinity",
         "canary steps only"),
        ("strategy.canary.match", [{"headers": {"end-user": {"exact": "jason"}}}],
         "spec.strategy.canary.match", "by weight"),
        ("analysis.metrics", [{"name": "p95", "query": "sum(x)"}], "spec.analysis.metrics[0]",
         "built-in metrics only"),
    ],
)  # fmt: skip
def test_what_a_group_cannot_do_is_refused_by_field(
    path: str, value: Any, field: str, reason: str
) -> None:
    problems = _problems(_with(path, value))
    assert any(
        "CM0612" in p and "group.yaml" in p and "Canary default/reviews-ratings" in p
        and field in p and reason in p
        for p in problems
    ), problems  # fmt: skip


def test_a_bad_max_age_is_a_duration_error() -> None:
    problems = _problems(_with("group.maxAge", "soon"))
    assert any("spec.group.maxAge" in p and "CM0107" in p for p in problems), problems
