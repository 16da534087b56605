"""Golden files: each ``tests/golden/xds/<case>/in.yaml`` translates to its ``out.<type>.yaml``.

A mismatch prints a unified diff; ``CANARYMESH_REFRESH_GOLDEN=1 pytest`` rewrites the files
(review the diff before committing). A normal run never writes.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
import yaml

from canarymesh.cli.render import PlainDumper
from canarymesh.mesh.model import MeshSettings
from canarymesh.xds import names
from canarymesh.xds.generate import generate
from tests.unit.xds.meshes import case_mesh, case_proxies, golden_cases

# Every golden mesh runs with a telemetry server, so access-log config is covered too.
SETTINGS = MeshSettings(telemetry_port=15999, tracing_port=15998)
TYPES = {
    "listeners": names.LISTENER,
    "routes": names.ROUTE,
    "clusters": names.CLUSTER,
    "endpoints": names.ENDPOINT,
    "secrets": names.SECRET,
}


def render_case(case: Path) -> dict[str, str]:
    mesh = case_mesh(case, SETTINGS)
    outputs: dict[str, dict[str, object]] = {kind: {} for kind in TYPES}
    for proxy_id in case_proxies(case):
        snapshot = generate(mesh, mesh.proxy(proxy_id))
        snapshot.check_consistent()
        for kind, type_url in TYPES.items():
            resources = list(snapshot.of(type_url))
            if resources:
                outputs[kind][proxy_id] = resources
    return {
        f"out.{kind}.yaml": yaml.dump(by_proxy, Dumper=PlainDumper, sort_keys=True, width=100)
        for kind, by_proxy in outputs.items()
        if by_proxy
    }


@pytest.mark.parametrize("case", golden_cases(), ids=lambda p: p.name)
def test_golden(case: Path) -> None:
    rendered = render_case(case)
    if os.environ.get("CANARYMESH_REFRESH_GOLDEN") == "1":
        for stale in case.glob("out.*.yaml"):
            if stale.name not in rendered:
                stale.unlink()
        for name, text in rendered.items():
            (case / name).write_text(text, encoding="utf-8")
        return
    expected_files = sorted(p.name for p in case.glob("out.*.yaml"))
    assert expected_files == sorted(rendered), "output files differ; refresh the goldens"
    for name, text in rendered.items():
        expected = (case / name).read_text(encoding="utf-8")
        if expected != text:
            diff = difflib.unified_diff(
                expected.splitlines(),
                text.splitlines(),
                f"{case.name}/{name}",
                "generated",
                lineterm="",
            )
            pytest.fail("\n".join(diff))


def test_goldens_cover_every_translation_module() -> None:
    """Each xds module leaves a mark in at least one golden file (guideline 7)."""
    text = "".join(
        p.read_text(encoding="utf-8") for p in Path(golden_cases()[0]).parent.glob("*/out.*.yaml")
    )
    marks = {
        "routes": "outbound_http_proxy",
        "actions": "request_mirror_policies",
        "clusters": "circuit_breakers",
        "endpoints": "lb_endpoints",
        "listeners": "inbound_9080",
        "tls": "UpstreamTlsContext",
        "rbac": "ns[default]-policy[productpage-viewer]-rule[0]",
        "gateway": "http.8080",
        "gateway_api": "path_separated_prefix",
        "tcp": "envoy.filters.network.tcp_proxy",
        "telemetry": "envoy.access_loggers.http_grpc",
    }
    missing = [module for module, mark in marks.items() if mark not in text]
    assert not missing
