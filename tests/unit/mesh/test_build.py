"""``build_mesh``: Deployments become sidecars with allocated ports, Services their endpoints,
ServiceEntries external hosts, Gateways gateway proxies, TLS Secrets credentials."""

from __future__ import annotations

import base64

from canarymesh.mesh.build import SequentialPorts
from canarymesh.mesh.index import MeshIndex, qualify_gateway
from canarymesh.mesh.model import StatsInclusion, protocol_of, resolve_host
from tests.unit.xds.meshes import bookinfo, mesh_from_text

NAMED_PORT = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports:
  - {name: http-web, port: 80, targetPort: web}
  - {name: tcp-admin, port: 9000}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-v1, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, version: v1}}
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: example/web
        ports: [{name: web, containerPort: 8080}]
"""


def test_replicas_become_sidecars_and_named_target_ports_resolve() -> None:
    mesh = mesh_from_text(NAMED_PORT)
    sidecars = [p for p in mesh.proxies if p.kind == "sidecar"]
    # Outside default the namespace is part of the id: the same Deployment may run in several.
    assert [p.id for p in sidecars] == ["web-v1-0.shop", "web-v1-1.shop"]
    assert {p.service_account for p in sidecars} == {"web"}
    service = next(s for s in mesh.services if s.name == "web")
    assert service.hostname == "web.shop.svc.cluster.local"
    assert [(p.port, p.target_port, p.protocol) for p in service.ports] == [
        (80, 8080, "http"),
        (9000, 9000, "tcp"),
    ]
    endpoints = MeshIndex.of(mesh).endpoints(service, 80)
    assert [e.port for e in endpoints] == sorted(p.ports.inbound_port(8080) for p in sidecars)  # type: ignore[type-var]
    # the TCP port gets an outbound listener port on every sidecar
    assert all(p.ports.tcp_port("web.shop.svc.cluster.local", 9000) for p in sidecars)


def test_sequential_ports_are_deterministic_and_distinct() -> None:
    first, second = bookinfo(), bookinfo()
    assert [p.ports for p in first.proxies] == [p.ports for p in second.proxies]
    allocate = SequentialPorts(base=20000)
    assert [allocate(("a", "x", "")), allocate(("b", "x", "")), allocate(("a", "x", ""))] == [
        20000,
        20001,
        20000,
    ]


def test_ingress_gateway_exists_and_listens_on_gateway_server_ports() -> None:
    mesh = bookinfo("networking/bookinfo-gateway.yaml")
    gateway = mesh.proxy("istio-ingressgateway")
    assert (gateway.kind, gateway.namespace) == ("gateway", "istio-system")
    assert dict(gateway.labels)["istio"] == "ingressgateway"
    assert gateway.ports.gateway_port(8080) is not None


def test_gateway_api_gateway_gets_its_own_proxy() -> None:
    mesh = bookinfo("gateway-api/bookinfo-gateway.yaml")
    proxy = mesh.proxy("bookinfo-gateway-istio")
    assert dict(proxy.labels) == {"gateway.networking.k8s.io/gateway-name": "bookinfo-gateway"}
    assert proxy.ports.gateway_port(80) is not None


def test_service_entry_hosts_are_external_services() -> None:
    mesh = bookinfo("networking/egress-rule-google-apis.yaml")
    google = next(s for s in mesh.services if s.hostname == "www.googleapis.com")
    assert (google.resolution, google.external) == ("DNS", True)
    assert [p.port for p in google.ports] == [80, 443]


def test_tls_secrets_are_decoded_for_gateway_credentials() -> None:
    crt, key = base64.b64encode(b"CERT").decode(), base64.b64encode(b"KEY").decode()
    mesh = mesh_from_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: cred, namespace: istio-system}\n"
        f"type: kubernetes.io/tls\ndata: {{tls.crt: {crt}, tls.key: {key}}}\n"
    )
    assert [(s.name, s.cert_chain, s.private_key) for s in mesh.secrets] == [
        ("cred", "CERT", "KEY")
    ]


def test_hosts_and_gateway_names_resolve_like_istio() -> None:
    assert resolve_host("reviews", "default") == "reviews.default.svc.cluster.local"
    assert resolve_host("reviews.prod", "default") == "reviews.prod.svc.cluster.local"
    assert resolve_host("reviews.prod.svc", "default") == "reviews.prod.svc.cluster.local"
    assert resolve_host("www.googleapis.com", "default") == "www.googleapis.com"
    assert resolve_host("*.example.com", "default") == "*.example.com"
    assert qualify_gateway("bookinfo-gateway", "default") == "default/bookinfo-gateway"
    assert qualify_gateway("istio-system/gw", "default") == "istio-system/gw"
    assert qualify_gateway("gw.istio-system", "default") == "istio-system/gw"
    assert qualify_gateway("mesh", "default") == "mesh"
    assert protocol_of("http-web") == "http"
    assert protocol_of("web", "grpc") == "grpc"
    assert protocol_of("metrics") == "unknown"


def test_a_pods_stats_inclusion_annotations_reach_its_sidecars() -> None:
    annotated = NAMED_PORT.replace(
        "metadata: {labels: {app: web, version: v1}}",
        "metadata:\n      labels: {app: web, version: v1}\n      annotations:\n"
        "        sidecar.istio.io/statsInclusionPrefixes: 'cluster.outbound, http.'\n"
        "        sidecar.istio.io/statsInclusionSuffixes: upstream_rq_time\n"
        "        sidecar.istio.io/statsInclusionRegexps: 'listener\\..*'",
    )
    mesh = mesh_from_text(annotated)
    sidecars = [p for p in mesh.proxies if p.workload == "web-v1"]
    assert len(sidecars) == 2
    for sidecar in sidecars:
        assert sidecar.stats_inclusion.prefixes == ("cluster.outbound", "http.")
        assert sidecar.stats_inclusion.suffixes == ("upstream_rq_time",)
        assert sidecar.stats_inclusion.regexps == (r"listener\..*",)
    plain = mesh_from_text(NAMED_PORT)
    assert all(not p.stats_inclusion.prefixes for p in plain.proxies)


def test_proxy_config_stats_matcher_is_read_as_istio_agent_reads_it() -> None:
    # The annotation of Istio's circuit-breaking sample client (samples/httpbin/sample-client).
    annotated = NAMED_PORT.replace(
        "metadata: {labels: {app: web, version: v1}}",
        "metadata:\n      labels: {app: web, version: v1}\n      annotations:\n"
        "        proxy.istio.io/config: |-\n"
        "          proxyStatsMatcher:\n"
        "            inclusionPrefixes:\n"
        "            - cluster.outbound\n"
        "            - cluster_manager\n"
        "            inclusionRegexps: ['.*circuit_breakers.*']\n",
    )
    sidecar = next(p for p in mesh_from_text(annotated).proxies if p.workload == "web-v1")
    assert sidecar.stats_inclusion.prefixes == ("cluster.outbound", "cluster_manager")
    assert sidecar.stats_inclusion.regexps == (".*circuit_breakers.*",)
    broken = annotated.replace("proxyStatsMatcher:", "proxyStatsMatcher: [")
    unreadable = next(p for p in mesh_from_text(broken).proxies if p.workload == "web-v1")
    assert unreadable.stats_inclusion == StatsInclusion()
