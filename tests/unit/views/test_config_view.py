"""The config view: resources sorted, analyze findings kept, proxies ACKed or NACKed (why)."""

from __future__ import annotations

from canarymesh.api.analyze import analyze
from canarymesh.api.loader import load_text
from canarymesh.views.config import config_view

VS_WITHOUT_SUBSET = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v9}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
"""


def test_findings_resources_and_nacked_proxies() -> None:
    loaded = load_text(VS_WITHOUT_SUBSET, "applied")
    diagnostics = [*loaded.diagnostics, *analyze(loaded.resources)]
    documents = [
        {"kind": "VirtualService", "metadata": {"name": "reviews", "namespace": "default"}},
        {"kind": "Deployment", "metadata": {"name": "details-v1"}},
    ]
    proxies = [
        {
            "name": "reviews-v1-abc",
            "namespace": "default",
            "connected": True,
            "synced": False,
            "types": {"Listener": "NACKED", "Cluster": "SYNCED"},
            "errors": {"Listener": "Proto constraint validation failed"},
        },
        {
            "name": "details-v1-x",
            "namespace": "default",
            "connected": True,
            "synced": True,
            "types": {"Cluster": "SYNCED"},
            "errors": {},
        },
        {"name": "ratings-v1-y", "connected": False, "types": {}, "errors": {}},
    ]
    view = config_view(documents, diagnostics, proxies)
    assert [(r.kind, r.namespace, r.name) for r in view.resources] == [
        ("Deployment", "default", "details-v1"),
        ("VirtualService", "default", "reviews"),
    ]
    # The DestinationRule's v1 selects no pod (no Deployment applied): a warning of its own.
    assert [(f.code, f.istio_code) for f in view.findings] == [
        ("CM1001", "IST0101"),
        ("CM1015", "IST0173"),
    ]
    finding = view.findings[0]
    assert (finding.code, finding.level, finding.resource) == (
        "CM1001",
        "error",
        "VirtualService default/reviews",
    )
    assert finding.field == "spec.http[0].route[0].destination.subset"
    assert "subset v9 of host reviews" in finding.reason
    assert [p.status for p in view.proxies] == ["NACKED", "SYNCED", "DISCONNECTED"]
    assert view.proxies[0].errors == {"Listener": "Proto constraint validation failed"}
    assert view.nacked == 1
