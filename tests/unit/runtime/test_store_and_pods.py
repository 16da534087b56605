"""The local mesh's store (kubectl-like outcomes), pod planning (names, env, TCP rewrite), the
ingress port mapping and the port book, without starting anything."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import BaseModel

from canarymesh.api.loader import load_text
from canarymesh.api.objects import Resource
from canarymesh.errors import ConfigError
from canarymesh.mesh.build import build_mesh
from canarymesh.runtime.local import launcher, prometheus
from canarymesh.runtime.local.gateway import primary_server_port
from canarymesh.runtime.local.pods import app_env, plan_pods
from canarymesh.runtime.local.reconcile import PortBook
from canarymesh.runtime.local.store import Store, display_name, split_documents

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: ratings-v2-mysql}
spec:
  replicas: 2
  selector: {matchLabels: {app: ratings}}
  template:
    metadata: {labels: {app: ratings, version: v2-mysql}}
    spec:
      containers:
      - name: ratings
        image: docker.io/istio/examples-bookinfo-ratings-v2:1.20.1
        ports: [{containerPort: 9080}]
        readinessProbe: {httpGet: {path: /health, port: 9080}}
        env:
        - {name: DB_TYPE, value: mysql}
        - {name: MYSQL_DB_HOST, value: mysqldb}
        - {name: MYSQL_DB_PORT, value: "3306"}
        - name: MYSQL_DB_PASSWORD
          valueFrom: {secretKeyRef: {name: mysql-credentials, key: rootpasswd}}
"""
SECRET = f"""\
apiVersion: v1
kind: Secret
metadata: {{name: mysql-credentials}}
data: {{rootpasswd: {base64.b64encode(b"s3cret").decode()}}}
"""
MYSQL_SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: mysqldb}
spec:
  selector: {app: mysqldb}
  ports: [{name: tcp, port: 3306}]
"""


def test_display_names_follow_kubectl() -> None:
    assert display_name("Deployment", "apps/v1") == "deployment.apps"
    assert display_name("Service", "v1") == "service"
    assert display_name("Gateway", "networking.istio.io/v1") == "gateway.networking.istio.io"
    assert display_name("Gateway", "gateway.networking.k8s.io/v1") == (
        "gateway.gateway.networking.k8s.io"
    )


def test_split_documents_fills_namespaces_and_expands_lists() -> None:
    text = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop, namespace: ignored}}
- {apiVersion: v1, kind: Service, metadata: {name: a}}
---
{apiVersion: v1, kind: Service, metadata: {name: b, namespace: prod}}
"""
    docs = split_documents(text, "t.yaml", namespace="dev")
    assert [d["metadata"] for d in docs] == [
        {"name": "shop"},
        {"name": "a", "namespace": "dev"},
        {"name": "b", "namespace": "prod"},
    ]
    with pytest.raises(ConfigError, match=r"^CM0004 error t.yaml:1 apiVersion: is required$"):
        split_documents("kind: Service\n", "t.yaml")


def test_split_documents_refuses_what_validate_refuses() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcde", "bcdef", strict=True)
    )
    with pytest.raises(ConfigError, match=r"^CM0704 error bomb.yaml:\d+ .*more than 10,000"):
        split_documents(bomb, "bomb.yaml")
    with pytest.raises(ConfigError, match=r"^CM0010 error s.yaml:1: U\+DCE9 .* lone surrogate"):
        split_documents("kind: \udce9\n", "s.yaml")
    with pytest.raises(ConfigError, match=r"^CM0003 error l.yaml:1: a manifest must be a mapping"):
        split_documents("- a\n- b\n", "l.yaml")


def test_store_outcomes_and_persistence(tmp_path: Path) -> None:
    store = Store.load(tmp_path / "store.json")
    docs = split_documents(MYSQL_SERVICE, "s.yaml")
    after, changes = store.plan_apply(docs)
    assert [c.line for c in changes] == ["service/mysqldb created"]
    assert store.documents == {}  # planning changes nothing
    store.commit(after)
    assert [c.line for c in store.plan_apply(docs)[1]] == ["service/mysqldb unchanged"]
    changed = split_documents(MYSQL_SERVICE.replace("3306", "3307"), "s.yaml")
    assert [c.line for c in store.plan_apply(changed)[1]] == ["service/mysqldb configured"]
    reloaded = Store.load(tmp_path / "store.json")
    assert reloaded.documents == store.documents
    gone, deleted = reloaded.plan_delete(docs + split_documents(SECRET, "x.yaml"))
    assert [c.line for c in deleted] == [
        "service/mysqldb deleted",
        "secret/mysql-credentials not found",
    ]
    assert gone == {}


def _resources(*texts: str) -> tuple[Resource[BaseModel], ...]:
    loaded = load_text("---\n".join(texts), "t.yaml")
    assert not loaded.diagnostics.has_errors, loaded.diagnostics.lines()
    return loaded.resources


def test_pod_names_are_stable_per_template_and_change_with_it() -> None:
    plans = plan_pods(_resources(DEPLOYMENT, SECRET))
    again = plan_pods(_resources(DEPLOYMENT, SECRET))
    assert [p.name for p in plans] == [p.name for p in again]
    assert len({p.name for p in plans}) == 2
    name = plans[0].name
    assert name.startswith("ratings-v2-mysql-") and len(name.split("-")[-1]) == 5
    assert len(name.split("-")[-2]) == 10
    assert sorted(p.replica_id for p in plans) == ["ratings-v2-mysql-0", "ratings-v2-mysql-1"]
    # The runtime names a pod's proxy as Istio does: <pod>.<namespace>.
    assert {p.proxy_id for p in plans} == {f"{p.name}.default" for p in plans}
    changed = plan_pods(_resources(DEPLOYMENT.replace("v2-mysql}", "v2-mysql, x: y}"), SECRET))
    assert not {p.name for p in changed} & {p.name for p in plans}


def test_env_reads_secrets_and_tcp_services_go_through_the_sidecar() -> None:
    resources = _resources(DEPLOYMENT, SECRET, MYSQL_SERVICE)
    plan = plan_pods(resources)[0]
    assert dict(plan.env)["MYSQL_DB_PASSWORD"] == "s3cret"
    assert plan.readiness_path == "/health"
    mesh = build_mesh(resources)
    proxy = mesh.proxy(plan.replica_id)
    env = app_env(plan, proxy, {"PATH": "/bin"})
    tcp = proxy.ports.tcp_port("mysqldb.default.svc.cluster.local", 3306)
    assert (env["MYSQL_DB_HOST"], env["MYSQL_DB_PORT"]) == ("127.0.0.1", str(tcp))
    assert env["HTTP_PROXY"] == f"http://127.0.0.1:{proxy.ports.outbound_http}"
    assert env["HOSTNAME"] == plan.name
    assert env["SERVICE_VERSION"] == "v2"  # from the image catalog
    assert env["DB_TYPE"] == "mysql"  # the Deployment's env over the image's


def test_a_missing_secret_or_unknown_image_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Secret default/mysql-credentials, which is not"):
        plan_pods(_resources(DEPLOYMENT))
    with pytest.raises(ConfigError, match="no local equivalent"):
        plan_pods(
            _resources(DEPLOYMENT.replace("docker.io/istio/examples-bookinfo", "x/y"), SECRET)
        )


def test_ingress_port_goes_to_8080_then_80_then_the_lowest() -> None:
    assert primary_server_port([80, 443, 8080]) == 8080
    assert primary_server_port([80, 9000]) == 80
    assert primary_server_port([9000, 9443]) == 9000
    assert primary_server_port([]) is None


def test_port_book_is_stable_per_key_and_never_repeats() -> None:
    book = PortBook(fixed={("gateway", "istio-ingressgateway", "8080"): 18080})
    book.pods = {"web-0": "web-abc-x"}
    first = book(("admin", "web-0", ""))
    assert book(("admin", "web-0", "")) == first
    assert book(("admin", "web-abc-x", "")) == first  # keyed by the pod name
    assert book(("gateway", "istio-ingressgateway", "8080")) == 18080
    ports = {book(("app", f"p{i}", "")) for i in range(50)}
    assert len(ports) == 50 and first not in ports


def test_port_book_is_kept_for_a_control_plane_that_adopts_and_dropped_otherwise(
    tmp_path: Path,
) -> None:
    path = tmp_path / "local-ports.json"
    book = PortBook.load(path, keep=True)  # nothing kept yet
    outbound, app = book(("outbound", "web-abc-x", "")), book(("app", "web-abc-x", ""))
    again = PortBook.load(path, keep=True)  # a restarted control plane adopting the pods
    assert again(("outbound", "web-abc-x", "")) == outbound
    assert again(("app", "web-abc-x", "")) == app
    assert again(("app", "new-pod", "")) not in (outbound, app)  # kept ports are taken
    fresh = PortBook.load(path, keep=False)  # nothing to adopt: a new start
    assert fresh.assigned == {} and not path.exists()
    path.write_text("not json")
    assert PortBook.load(path, keep=True).assigned == {}


def test_missing_binaries_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus, "PROMETHEUS_BINARY", Path("/nonexistent/prometheus"))
    with pytest.raises(ConfigError, match="apt-get install prometheus"):
        launcher.check_binaries(prometheus=True)
    launcher.check_binaries(prometheus=False)
