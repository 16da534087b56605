"""Translation speed on a large mesh: 1,000 services x 3 subsets, a VirtualService and a
DestinationRule each, 3,000 sidecars.

Measures (median of several runs, printed as a table):
  * index: building the shared ``MeshIndex`` once for the mesh;
  * full: ``generate`` of one sidecar's complete snapshot (4,000 clusters, 4,000 endpoint sets,
    1,000 virtual hosts) -- goal < 1 s;
  * incremental: after one VirtualService changes, ``update_virtual_services`` for one affected
    proxy (only the changed virtual hosts are rebuilt) -- goal < 50 ms; the baseline is a full
    ``generate`` of the same proxy, and the ratio between the two is the claim;
  * affected: how many proxies ``affected_proxies`` says the change touches, the time per
    proxy over 100 of them (virtual-host routes are shared per namespace through the index),
    and that time multiplied out to all of them.

Run: ``.venv/bin/python bench/translate.py [--services 1000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable

from canarymesh.api.istio_networking import DestinationRule, VirtualService
from canarymesh.mesh.index import MeshIndex, affected_proxies
from canarymesh.mesh.model import (
    Config,
    MeshService,
    MeshSnapshot,
    ProxyNode,
    ProxyPorts,
    ServicePort,
    fqdn,
)
from canarymesh.xds.generate import generate, update_virtual_services

NAMESPACE = "bench"
VERSIONS = ("v1", "v2", "v3")


def virtual_service(name: str, weights: tuple[int, int, int]) -> Config[VirtualService]:
    spec = VirtualService.model_validate(
        {
            "hosts": [name],
            "http": [
                {
                    "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                    "route": [{"destination": {"host": name, "subset": "v2"}}],
                },
                {
                    "route": [
                        {"destination": {"host": name, "subset": v}, "weight": w}
                        for v, w in zip(VERSIONS, weights, strict=True)
                    ]
                },
            ],
        }
    )
    return Config("VirtualService", name, NAMESPACE, spec)


def destination_rule(name: str) -> Config[DestinationRule]:
    spec = DestinationRule.model_validate(
        {
            "host": name,
            "trafficPolicy": {"connectionPool": {"http": {"http1MaxPendingRequests": 100}}},
            "subsets": [{"name": v, "labels": {"version": v}} for v in VERSIONS],
        }
    )
    return Config("DestinationRule", name, NAMESPACE, spec)


def build(services: int) -> MeshSnapshot:
    mesh_services = []
    proxies = []
    next_port = 20000
    for i in range(services):
        name = f"svc-{i:04d}"
        port = ServicePort("http", 9080, 9080, "http")
        mesh_services.append(
            MeshService(name, NAMESPACE, fqdn(name, NAMESPACE), (port,), (("app", name),))
        )
        for version in VERSIONS:
            ports = ProxyPorts(
                admin=next_port,
                outbound_http=next_port + 1,
                inbound=((9080, next_port + 2),),
                app=((9080, next_port + 3),),
            )
            next_port += 4
            labels = (("app", name), ("version", version))
            workload = f"{name}-{version}"
            proxies.append(
                ProxyNode(f"{workload}-0", "sidecar", NAMESPACE, workload, labels, name, ports)
            )
    return MeshSnapshot(
        services=tuple(mesh_services),
        proxies=tuple(proxies),
        virtual_services=tuple(virtual_service(s.name, (80, 15, 5)) for s in mesh_services),
        destination_rules=tuple(destination_rule(s.name) for s in mesh_services),
    )


def timed(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    mesh = build(args.services)
    proxy = mesh.proxies[0]

    index_s = timed(lambda: MeshIndex.of(mesh), args.repeat)
    index = MeshIndex.of(mesh)
    generate(mesh, proxy, index)  # warm the index's lazy endpoint cache, as a server would
    full_s = timed(lambda: generate(mesh, proxy, index), args.repeat)
    previous = generate(mesh, proxy, index)

    changed = virtual_service(mesh.services[-1].name, (50, 0, 50))
    kept = tuple(v for v in mesh.virtual_services if v.name != changed.name)
    new_mesh = dataclasses.replace(mesh, virtual_services=(*kept, changed))
    new_index = index.with_virtual_services(new_mesh)
    hosts = {fqdn(changed.name, NAMESPACE)}

    def incremental() -> object:
        return update_virtual_services(previous, new_mesh, proxy, new_index, hosts)

    incremental_s = timed(incremental, args.repeat)
    updated = incremental()
    expected = generate(new_mesh, proxy, new_index)
    assert updated.to_json() == expected.to_json(), "incremental result differs from a full run"

    affected = affected_proxies(new_mesh, changed)
    sample = affected[:100]
    snapshots = {p.id: generate(mesh, p, index) for p in sample}

    def fan_out() -> None:
        for p in sample:
            update_virtual_services(snapshots[p.id], new_mesh, p, new_index, hosts)

    per_proxy_s = timed(fan_out, args.repeat) / len(sample)
    fan_out_s = per_proxy_s * len(affected)

    clusters, routes = len(previous.clusters), len(previous.routes[0]["virtual_hosts"])  # type: ignore[arg-type]
    print(f"mesh: {args.services} services x {len(VERSIONS)} subsets, {len(mesh.proxies)} sidecars")
    print(f"one sidecar snapshot: {clusters} clusters, {routes} virtual hosts")
    print(f"{'measure':<44}{'time':>12}")
    print(f"{'index build (once per mesh)':<44}{index_s * 1000:>10.1f}ms")
    print(f"{'full generate, one proxy (baseline)':<44}{full_s * 1000:>10.1f}ms  goal < 1000 ms")
    print(f"{'incremental VS update, one proxy':<44}{incremental_s * 1000:>10.1f}ms  goal < 50 ms")
    print(f"{'ratio full / incremental':<44}{full_s / incremental_s:>11.1f}x")
    print(f"{'proxies affected by the VS change':<44}{len(affected):>12}")
    print(f"{'incremental, per affected proxy (100 timed)':<44}{per_proxy_s * 1000:>10.2f}ms")
    print(f"{'incremental, all affected proxies (est.)':<44}{fan_out_s * 1000:>10.1f}ms")


if __name__ == "__main__":
    main()
