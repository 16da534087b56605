"""Edits of manifest text the tests need: what a user would write in their own copy."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["with_pod_annotations"]


def with_pod_annotations(text: str, deployment: str, annotations: dict[str, str]) -> str:
    """``text`` with ``annotations`` added to Deployment ``deployment``'s pod template."""
    documents: list[Any] = [d for d in yaml.safe_load_all(text) if d is not None]
    found = [
        d for d in documents
        if d.get("kind") == "Deployment" and d["metadata"]["name"] == deployment
    ]  # fmt: skip
    assert len(found) == 1, f"{deployment}: {len(found)} Deployments of that name"
    metadata = found[0]["spec"]["template"].setdefault("metadata", {})
    metadata.setdefault("annotations", {}).update(annotations)
    return yaml.safe_dump_all(documents, sort_keys=False)
