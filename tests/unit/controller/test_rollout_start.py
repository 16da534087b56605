"""What ``rollout start`` applies: our Canary as written, Flagger's translated with a warning per
field that does not map, and nothing at all for a file without a Canary."""

from __future__ import annotations

from pathlib import Path

import pytest

from canarymesh.cli.canary_documents import canary_documents
from canarymesh.errors import ConfigError

MANIFESTS = Path(__file__).parents[3] / "canary-manifests"


def test_our_canary_is_applied_as_written() -> None:
    text = (MANIFESTS / "canary-reviews.yaml").read_text()
    docs, warnings = canary_documents(text, "canary-reviews.yaml")
    assert [d["metadata"]["name"] for d in docs] == ["reviews"]
    assert docs[0]["spec"]["target"]["canarySubset"] == "v3"
    assert warnings == []


def test_a_flagger_canary_is_translated_with_warnings() -> None:
    text = (
        (MANIFESTS / "canary-reviews-flagger.yaml")
        .read_text()
        .replace(
            "spec:\n",
            "spec:\n  autoscalerRef: {apiVersion: autoscaling/v2, kind: HPA, name: r}\n",
            1,
        )
    )
    docs, warnings = canary_documents(text, "flagger.yaml")
    assert docs[0]["apiVersion"] == "canarymesh.io/v1alpha1"
    assert docs[0]["spec"]["target"]["stableSubset"] == "v1"
    assert docs[0]["spec"]["analysis"]["judge"] == "threshold"
    assert any("spec.autoscalerRef" in w for w in warnings)
    assert all(w.startswith("warning: flagger.yaml: Flagger Canary: ") for w in warnings)


def test_a_file_without_a_canary_is_refused() -> None:
    with pytest.raises(ConfigError, match="no Canary"):
        canary_documents("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", "svc.yaml")
