"""Analysis rules the golden corpus does not pin down: scoping, name forms, last-wins."""

from __future__ import annotations

from canarymesh.api.analyze import analyze, fqdn
from canarymesh.api.loader import load_text

GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
  namespace: istio-system
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
"""
VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo
spec:
  hosts: ["*"]
  gateways: [{gateway}]
  http:
  - route:
    - destination: {{host: productpage}}
"""


def codes(text: str) -> list[str]:
    result = load_text(text, "t.yaml")
    return [d.code for d in result.diagnostics + analyze(result.resources)]


def test_short_names_resolve_in_the_config_namespace() -> None:
    assert fqdn("reviews", "bookinfo") == "reviews.bookinfo.svc.cluster.local"
    assert fqdn("reviews.other.svc.cluster.local", "bookinfo") == "reviews.other.svc.cluster.local"
    assert fqdn("*", "bookinfo") == "*"


def test_gateways_are_found_by_every_name_form() -> None:
    for reference in ("istio-system/bookinfo-gateway", "bookinfo-gateway.istio-system.svc"):
        assert codes(GATEWAY + "---\n" + VS.format(gateway=reference)) == []
    # As istioctl analyze: an unknown gateway serves none of the hosts either.
    assert codes(GATEWAY + "---\n" + VS.format(gateway="bookinfo-gateway")) == ["CM1005", "CM1017"]
    assert codes(GATEWAY + "---\n" + VS.format(gateway="mesh")) == ["CM0214"]


KUBE_GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: web
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, hostname: shop.example.com, port: 80, protocol: HTTP}
"""


def test_a_gateway_api_gateway_serves_its_listeners_hostnames() -> None:
    bound = VS.format(gateway="web")
    assert codes(KUBE_GATEWAY + "---\n" + bound.replace('["*"]', "[shop.example.com]")) == []
    # Istio's IST0132 (virtualServiceKubernetesGateways): a host no listener serves.
    assert codes(KUBE_GATEWAY + "---\n" + bound.replace('["*"]', "[wrong.example.com]")) == [
        "CM1017"
    ]
    # A listener without a hostname serves every host.
    anything = KUBE_GATEWAY.replace("hostname: shop.example.com, ", "")
    assert codes(anything + "---\n" + bound.replace('["*"]', "[wrong.example.com]")) == []


def test_references_are_checked_only_when_their_kind_is_in_the_input() -> None:
    # No Gateway, Service or DestinationRule in the input: nothing to resolve against.
    text = VS.format(gateway="missing").replace("productpage}", "productpage, subset: v9}")
    assert codes(text) == []


def test_the_later_definition_is_the_one_analysed() -> None:
    rule = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: {subset}
    labels: {{version: {subset}}}
"""
    route = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
"""
    before = rule.format(subset="v2") + "---\n" + rule.format(subset="v1")
    after = rule.format(subset="v1") + "---\n" + rule.format(subset="v2")
    assert codes(before + "---\n" + route) == ["CM0009", "CM1001"]
    assert codes(after + "---\n" + route) == ["CM0009"]


def test_strict_mtls_in_the_namespace_conflicts_with_tls_disabled_on_a_port() -> None:
    text = """\
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: shop}
spec:
  selector: {app: ratings}
  ports: [{port: 9080, name: http}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings-strict, namespace: shop}
spec:
  selector: {matchLabels: {app: ratings}}
  mtls: {mode: STRICT}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: shop}
spec:
  host: ratings
  trafficPolicy:
    portLevelSettings:
    - port: {number: 9080}
      tls: {mode: DISABLE}
"""
    result = load_text(text, "t.yaml")
    [conflict] = analyze(result.resources)
    assert conflict.code == "CM1008"
    assert conflict.field == "spec.trafficPolicy.portLevelSettings[0].tls.mode"
    assert "PeerAuthentication shop/ratings-strict is STRICT" in conflict.reason
