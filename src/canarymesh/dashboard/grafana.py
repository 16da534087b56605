"""Keep the Grafana dashboards of ``addons/grafana.yaml`` on the dashboard's own PromQL.

``python -m canarymesh.dashboard.grafana addons/grafana.yaml`` rewrites, in place, the ``expr``
of every panel target that :data:`canarymesh.analysis.panels.GRAFANA_PANELS` binds to a panel
query, rendered with Grafana's variables; ``--check`` only reports drift (exit 1). The rest of
each dashboard (layout, units, legends) stays as written. The rewrite is textual, so the file's
comments and formatting survive: each old expression, JSON-escaped as it sits in the ConfigMap,
is replaced by the new one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from canarymesh.analysis.panels import GRAFANA_PANELS, GRAFANA_VARIABLES, panel_query
from canarymesh.errors import ConfigError

__all__ = ["main", "sync_grafana"]


def _targets(text: str) -> dict[tuple[str, str, str], str]:
    found = {}
    for doc in yaml.safe_load_all(text):
        if not isinstance(doc, dict) or doc.get("kind") != "ConfigMap":
            continue
        for key, board_text in (doc.get("data") or {}).items():
            if not str(key).endswith(".json"):
                continue
            for panel in json.loads(board_text).get("panels", []):
                for target in panel.get("targets", []):
                    found[(str(key), panel["title"], target["refId"])] = target["expr"]
    return found


def sync_grafana(text: str) -> str:
    """``text`` with every bound panel target's expression rendered from the panel queries."""
    targets = _targets(text)
    for name, where in sorted(GRAFANA_PANELS.items()):
        if where not in targets:
            raise ConfigError(f"{name}: no panel target {where} in the Grafana dashboards")
        old, new = targets[where], panel_query(name, GRAFANA_VARIABLES)
        if old != new:
            text = text.replace(json.dumps(old), json.dumps(new))
    drift = [
        n
        for n, where in GRAFANA_PANELS.items()
        if _targets(text)[where] != panel_query(n, GRAFANA_VARIABLES)
    ]
    if drift:
        raise ConfigError(f"could not rewrite the expressions of {', '.join(drift)}")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m canarymesh.dashboard.grafana")
    parser.add_argument("path", type=Path)
    parser.add_argument("--check", action="store_true", help="Report drift; change nothing.")
    args = parser.parse_args(argv)
    text = args.path.read_text()
    synced = sync_grafana(text)
    if synced == text:
        print(f"{args.path}: the Grafana dashboards use the dashboard's queries")
        return 0
    if args.check:
        print(f"{args.path}: out of date; run python -m canarymesh.dashboard.grafana {args.path}")
        return 1
    args.path.write_text(synced)
    print(f"{args.path}: expressions rewritten from canarymesh.analysis.panels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
