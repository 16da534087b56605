"""Test helpers: Bookinfo meshes built from Istio's sample YAML (plus inline YAML), snapshots,
and the golden-case loader shared by the unit goldens and the Envoy validation tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from canarymesh.api.loader import load_text
from canarymesh.mesh.build import SequentialAddresses, build_mesh
from canarymesh.mesh.model import MeshSettings, MeshSnapshot
from canarymesh.xds.generate import generate
from canarymesh.xds.snapshot import XdsSnapshot

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "tests" / "data" / "istio" / "samples" / "bookinfo"
GOLDEN = ROOT / "tests" / "golden" / "xds"
BOOKINFO = "platform/kube/bookinfo.yaml"


def sample(relative: str) -> str:
    return (SAMPLES / relative).read_text(encoding="utf-8")


# Pod-network cases: the runtime's Unix sockets and host namespace, at fixed paths.
POD_SOCKETS = {
    "telemetry_socket": "/run/canarymesh/golden/als.sock",
    "tracing_socket": "/run/canarymesh/golden/zipkin.sock",
    "host_netns": "/run/netns/cm-golden-host",
}


def mesh_from_text(
    text: str,
    settings: MeshSettings | None = None,
    tolerate: frozenset[str] = frozenset(),
    pods: bool = False,
) -> MeshSnapshot:
    """``pods``: every pod in a network of its own (addresses from ``SequentialAddresses``)."""
    result = load_text(text, "test.yaml")
    errors = [d for d in result.diagnostics if d.level == "error" and d.code not in tolerate]
    assert not errors, "\n".join(str(d) for d in errors)
    if not pods:
        return build_mesh(result.resources, settings=settings)
    settings = dataclasses.replace(
        settings or MeshSettings(), telemetry_port=None, tracing_port=None, **POD_SOCKETS
    )
    return build_mesh(result.resources, settings=settings, addresses=SequentialAddresses())


def bookinfo(*files: str, extra: str = "", settings: MeshSettings | None = None) -> MeshSnapshot:
    """Bookinfo's platform manifest plus the named sample files and inline YAML."""
    texts = [sample(BOOKINFO), *(sample(f) for f in files)]
    if extra:
        texts.append(extra)
    return mesh_from_text("\n---\n".join(texts), settings)


def snapshot(mesh: MeshSnapshot, proxy_id: str) -> XdsSnapshot:
    snap = generate(mesh, mesh.proxy(proxy_id))
    snap.check_consistent()
    return snap


def inbound_port(mesh: MeshSnapshot, proxy_id: str, container_port: int = 9080) -> int:
    port = mesh.proxy(proxy_id).ports.inbound_port(container_port)
    assert port is not None
    return port


def golden_cases() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if (p / "in.yaml").is_file())


def case_header(case: Path, key: str) -> list[str]:
    """A header line of a case's in.yaml: ``# proxies: a b`` or ``# samples: x.yaml``."""
    for line in (case / "in.yaml").read_text(encoding="utf-8").splitlines()[:4]:
        if line.startswith(f"# {key}:"):
            return line.removeprefix(f"# {key}:").split()
    if key in ("tolerate", "network"):
        return []
    raise AssertionError(f"{case}/in.yaml has no '# {key}:' header line")


def case_proxies(case: Path) -> list[str]:
    return case_header(case, "proxies")


def case_mesh(case: Path, settings: MeshSettings | None = None) -> MeshSnapshot:
    """The case's mesh: the Istio samples its header names, then its own documents."""
    texts = [sample(name) for name in case_header(case, "samples")]
    texts.append((case / "in.yaml").read_text(encoding="utf-8"))
    # ``# tolerate: CM0204`` lets a case keep documents our validator refuses but Istio
    # accepts (a delegate VirtualService has no hosts).
    tolerate = frozenset(case_header(case, "tolerate"))
    # ``# network: pod`` puts every pod in a network of its own (the local mesh's default).
    pods = case_header(case, "network") == ["pod"]
    return mesh_from_text("\n---\n".join(texts), settings, tolerate, pods)
