"""Egress (ServiceEntry + TLS origination), Gateway API and GAMMA routes, simulated."""

from __future__ import annotations

from canarymesh.xds import clusters, names
from canarymesh.xds.simulate import Request, simulate
from canarymesh.xds.types import JsonValue
from tests.unit.xds.meshes import GOLDEN, bookinfo, case_mesh, snapshot

GAMMA = ("platform/kube/bookinfo-versions.yaml", "gateway-api/bookinfo-gateway.yaml")


def dig(node: JsonValue, *keys: str) -> JsonValue:
    for key in keys:
        assert isinstance(node, dict), f"no mapping at {key}"
        node = node[key]
    return node


def test_details_v2_plain_http_to_google_is_upgraded_to_tls_on_443() -> None:
    mesh = bookinfo(
        "platform/kube/bookinfo-details-v2.yaml",
        "networking/destination-rule-all.yaml",
        "networking/virtual-service-details-v2.yaml",
        "networking/egress-rule-google-apis.yaml",
    )
    snap = snapshot(mesh, "details-v2-0")
    result = simulate(snap, Request("www.googleapis.com", "/books/v1/volumes?q=isbn:0486424618"))
    assert result.cluster == "outbound|443||www.googleapis.com"
    cluster = snap.named(names.CLUSTER)["outbound|443||www.googleapis.com"]
    assert cluster["type"] == "STRICT_DNS"
    # As istiod: no fixed SNI; Envoy takes it (and the name the certificate must carry) from
    # the request's host, and checks the server against the system's roots.
    tls_context = dig(cluster, "transport_socket", "typed_config")
    assert isinstance(tls_context, dict) and "sni" not in tls_context
    assert dig(tls_context, "common_tls_context", "validation_context") == {
        "trusted_ca": {"filename": "/etc/ssl/certs/ca-certificates.crt"}
    }
    options = dig(cluster, "typed_extension_protocol_options", clusters.HTTP_OPTIONS)
    upstream = dig(options, "upstream_http_protocol_options")
    assert upstream == {"auto_sni": True, "auto_san_validation": True}


def test_gamma_route_splits_reviews_90_10_between_version_services() -> None:
    snap = snapshot(bookinfo(*GAMMA, "gateway-api/route-reviews-90-10.yaml"), "productpage-v1-0")
    assert simulate(snap, Request("reviews:9080", "/reviews/0")).clusters == (
        ("outbound|9080||reviews-v1.default.svc.cluster.local", 90),
        ("outbound|9080||reviews-v2.default.svc.cluster.local", 10),
    )


def test_gateway_api_prefix_matches_whole_segments_only() -> None:
    snap = snapshot(bookinfo(*GAMMA), "bookinfo-gateway-istio")
    productpage = "outbound|9080||productpage.default.svc.cluster.local"
    assert simulate(snap, Request("bookinfo.local", "/static/x.css")).cluster == productpage
    assert simulate(snap, Request("bookinfo.local", "/static")).cluster == productpage
    assert simulate(snap, Request("bookinfo.local", "/staticx")).error == "NoRoute"
    assert simulate(snap, Request("bookinfo.local", "/productpage")).cluster == productpage


def test_https_gateway_terminates_tls_and_redirects_plain_http() -> None:
    mesh = case_mesh(GOLDEN / "gateway-https")
    gateway = mesh.proxy("istio-ingressgateway")
    snap = snapshot(mesh, "istio-ingressgateway")
    https, http = gateway.ports.gateway_port(8443), gateway.ports.gateway_port(8080)
    secure = simulate(snap, Request("bookinfo.example.com", "/productpage", port=https, tls=True))
    assert secure.cluster == "outbound|9080||productpage.default.svc.cluster.local"
    assert simulate(snap, Request("bookinfo.example.com", "/", port=http)).status == 301
    assert simulate(snap, Request("other.example.com", "/", port=https, tls=True)).error == (
        "NoFilterChain"
    )
    assert snap.named(names.SECRET)["kubernetes://istio-system/bookinfo-credential"]


MIRROR = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: default}
spec:
  parentRefs:
  - {group: "", kind: Service, name: reviews, port: 9080}
  rules:
  - filters:
    - type: RequestMirror
      requestMirror:
        backendRef: {name: reviews-v2, port: 9080}
        percent: 25
    backendRefs:
    - {name: reviews-v1, port: 9080}
"""


def test_gamma_request_mirror_copies_a_share_to_another_backend() -> None:
    mesh = bookinfo("platform/kube/bookinfo-versions.yaml", extra=MIRROR)
    snap = snapshot(mesh, "productpage-v1-0")
    assert simulate(snap, Request("reviews:9080")).cluster == (
        "outbound|9080||reviews-v1.default.svc.cluster.local"
    )
    config = snap.named(names.ROUTE)[names.OUTBOUND_HTTP_ROUTE]
    vhost = next(v for v in config["virtual_hosts"] if v["name"].startswith("reviews.default"))  # type: ignore[index,union-attr]
    assert vhost["routes"][0]["route"]["request_mirror_policies"] == [  # type: ignore[index]
        {
            "cluster": "outbound|9080||reviews-v2.default.svc.cluster.local",
            "runtime_fraction": {"default_value": {"numerator": 25, "denominator": "HUNDRED"}},
            "trace_sampled": False,
        }
    ]


GRPC = """
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{name: grpc, port: 7070}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-v1, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo, version: v1}}
    spec:
      containers: [{name: echo, image: echo, ports: [{containerPort: 7070}]}]
"""


def test_grpc_ports_speak_http2_on_both_sides_of_the_mesh() -> None:
    mesh = bookinfo(extra=GRPC)
    inbound = snapshot(mesh, "echo-v1-0").named(names.CLUSTER)["inbound|7070||"]
    outbound = snapshot(mesh, "productpage-v1-0").named(names.CLUSTER)[
        "outbound|7070||echo.default.svc.cluster.local"
    ]
    for cluster in (inbound, outbound):
        assert "http2_protocol_options" in str(cluster["typed_extension_protocol_options"])
    assert (
        "typed_extension_protocol_options"
        not in snapshot(mesh, "reviews-v1-0").named(names.CLUSTER)["inbound|9080||"]
    )


def test_ignore_uri_case_covers_prefix_matches_but_not_a_regex_as_on_istio() -> None:
    # istiod sets case_sensitive: false on every path matcher, and Envoy ignores it on a
    # safe_regex: an upper-case path misses the regex rule on Istio too.
    vs = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match:
    - {uri: {prefix: /Loud}, ignoreUriCase: true}
    - {uri: {regex: "/shout/[a-z]+"}, ignoreUriCase: true}
    route:
    - destination: {host: reviews, subset: v3}
  - route:
    - destination: {host: reviews, subset: v1}
"""
    snap = snapshot(bookinfo("networking/destination-rule-all.yaml", extra=vs), "productpage-v1-0")
    v3 = "outbound|9080|v3|reviews.default.svc.cluster.local"
    for path in ("/loud", "/LOUD/x", "/shout/hey"):
        assert simulate(snap, Request("reviews:9080", path)).cluster == v3, path
    for path in ("/quiet", "/shout/HEY"):
        assert simulate(snap, Request("reviews:9080", path)).cluster != v3, path
