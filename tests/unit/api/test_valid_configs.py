"""Valid configurations using most features must pass without a word (no false positives).

The manifests are written for this test after Istio's task pages (timeouts, retries, mirroring,
circuit breaking, secure gateways, egress, authorization); Istio's CRD schemas accept them too.
"""

from __future__ import annotations

import pytest
import yaml

from canarymesh.api.analyze import analyze
from canarymesh.api.loader import load_text
from tests.unit.api.test_crd_judge import judge

FEATURES = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - name: jason
    match:
    - headers:
        end-user: {exact: jason}
        x-canary: {}
      uri: {prefix: /reviews}
      queryParams:
        debug: {regex: "^(1|true)$"}
    route:
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
      headers:
        response:
          set: {x-served-by: v2}
    timeout: 0.5s
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "gateway-error,connect-failure,503"}
    fault:
      delay: {fixedDelay: 7s, percentage: {value: 0.1}}
  - name: moved
    match:
    - uri: {exact: /old}
    redirect: {uri: /reviews, redirectCode: 301}
  - name: teapot
    match:
    - uri: {exact: /teapot}
    directResponse: {status: 418, body: {string: "short and stout"}}
  - name: default
    route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews, subset: v3}
      weight: 10
    mirror: {host: reviews, subset: v3}
    mirrorPercentage: {value: 50}
    corsPolicy:
      allowOrigins: [{exact: "https://example.com"}, {regex: "https://.*\\\\.example\\\\.org"}]
      allowMethods: [GET, POST]
      maxAge: 24h
    rewrite: {uri: /}
    headers:
      request:
        add: {x-mesh: canarymesh}
        remove: [x-debug]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1, connectTimeout: 30ms}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
    loadBalancer:
      consistentHash:
        httpCookie: {name: user, ttl: 0s}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: LEAST_REQUEST}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - name: v3
    labels: {version: v3}
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: secure-gateway
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [bookinfo.example.com]
    tls: {mode: SIMPLE, credentialName: bookinfo-credential}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*/bookinfo.example.com"]
    tls: {httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-db
spec:
  hosts: [db.example.com]
  location: MESH_EXTERNAL
  ports:
  - {number: 3306, name: tcp, protocol: TCP}
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: external-db
spec:
  hosts: [db.example.com]
  tcp:
  - match: [{port: 3306}]
    route:
    - destination: {host: db.example.com, port: {number: 3306}}
  tls:
  - match: [{sniHosts: [db.example.com], port: 443}]
    route:
    - destination: {host: db.example.com}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: ratings
spec:
  selector: {matchLabels: {app: ratings}}
  mtls: {mode: STRICT}
  portLevelMtls:
    9090: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: reviews-viewer
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: [cluster.local/ns/default/sa/bookinfo-productpage]}
    to:
    - operation: {methods: [GET], paths: ["/reviews/*"], ports: ["9080"]}
    when:
    - key: request.headers[x-canary]
      values: ["true"]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
spec:
  selector: {matchLabels: {app: productpage}}
  jwtRules:
  - issuer: testing@secure.istio.io
    jwksUri: https://example.com/jwks.json
---
apiVersion: canarymesh.io/v1alpha1
kind: Canary
metadata:
  name: reviews
spec:
  target: {host: reviews, virtualService: reviews, stableSubset: v1, canarySubset: v3}
  strategy:
    canary:
      steps:
      - {setWeight: 10}
      - {pause: {duration: 30s}}
      - {setWeight: 50}
      - {analysis: {duration: 1m}}
      - {setWeight: 100}
"""


def test_a_manifest_using_most_features_is_accepted_without_a_word() -> None:
    result = load_text(FEATURES, "features.yaml")
    assert result.diagnostics.lines() == []
    assert len(result.resources) == 10
    assert analyze(result.resources).lines() == []


@pytest.mark.parametrize("document", list(yaml.safe_load_all(FEATURES)), ids=lambda d: d["kind"])
def test_istio_schemas_accept_the_same_manifest(document: dict[str, object]) -> None:
    assert judge(document) is None
