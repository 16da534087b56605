"""The Canary documents of a file for ``rollout start`` and ``rollout simulate``: ours as they
are, Flagger's translated, all checked as ``validate`` would."""

from __future__ import annotations

from typing import Any

import yaml

from canarymesh.api.flagger import FLAGGER_API_VERSION, translate_flagger
from canarymesh.api.loader import load_text
from canarymesh.errors import ConfigError

__all__ = ["canary_documents"]


def canary_documents(text: str, source: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Our Canary documents in ``text`` (Flagger's translated) and the warnings to print."""
    docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    ours, warnings = [], []
    for doc in docs:
        if doc.get("apiVersion") == FLAGGER_API_VERSION:
            translation = translate_flagger(doc)
            warnings += [f"warning: {source}: Flagger Canary: {w}" for w in translation.warnings]
            ours.append(translation.to_manifest())
        elif doc.get("kind") == "Canary":
            ours.append(doc)
    if not ours:
        raise ConfigError(f"{source}: no Canary (canarymesh.io/v1alpha1 or {FLAGGER_API_VERSION})")
    checked = load_text(yaml.safe_dump_all(ours, sort_keys=False), source)
    if checked.diagnostics.has_errors:
        raise ConfigError("\n".join(checked.diagnostics.lines()))
    warnings += checked.diagnostics.lines()
    return ours, warnings
