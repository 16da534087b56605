"""The observability addons: Prometheus' config and Grafana's dashboards are valid and coherent.

Prometheus' scrape config and every dashboard query are checked by Prometheus' own ``promtool``
(Debian's build lacks Kubernetes service discovery, so those blocks are swapped for static
targets first); dashboard queries use only Istio's standard label names; every Service the seed
README port-forwards to exists and reaches a container port.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.runtime.local.telemetry_metrics import HTTP_LABELS
from tests.unit.test_manifests import REPO, Doc, by_name, containers, docs_in, documents, of_kind

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian: prometheus) absent")

CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding"}

# Istio's standard metric labels (istio_stats.cc, as the local mesh exports them), plus le.
ISTIO_LABELS = {*HTTP_LABELS, "le"}
CANARY_LABELS = {"namespace", "canary", "phase", "decision"}


def addon_files() -> list[Path]:
    return sorted((REPO / "addons").rglob("*.yaml"))


def dashboards() -> dict[str, Doc]:
    docs = docs_in("addons/grafana.yaml")
    found: dict[str, Doc] = {}
    for cm in of_kind(docs, "ConfigMap"):
        for key, text in cm["data"].items():
            if key.endswith(".json"):
                found[key] = json.loads(text)
    return found


def dashboard_queries() -> list[tuple[str, str]]:
    """(dashboard title, PromQL) of every panel target and every templating variable."""
    queries = []
    for board in dashboards().values():
        for panel in board["panels"]:
            queries += [(board["title"], t["expr"]) for t in panel["targets"]]
    return queries


def _concrete(expr: str) -> str:
    """A Grafana query with its variables replaced by values, so that PromQL tools accept it."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$\w+", "x", expr)


def _selector_labels(expr: str) -> set[str]:
    """The label names inside {...} selectors and by (...) / without (...) clauses."""
    names: set[str] = set()
    for body in re.findall(r"\{([^}]*)\}", expr):
        names |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", body))
    for body in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        names |= {n.strip() for n in body.split(",") if n.strip()}
    return names


# --------------------------------------------------------------------------------------------
# Prometheus


def _scrape_config() -> dict[str, Any]:
    cm = by_name(docs_in("addons/prometheus.yaml"), "ConfigMap")["prometheus"]
    config: dict[str, Any] = yaml.safe_load(cm["data"]["prometheus.yml"])
    return config


def test_prometheus_scrapes_istio_envoy_and_the_canary_controller() -> None:
    jobs = {job["job_name"]: job for job in _scrape_config()["scrape_configs"]}
    assert {"kubernetes-pods", "envoy-stats", "istiod", "canarymesh-controller"} <= set(jobs)
    pods = jobs["kubernetes-pods"]["relabel_configs"]
    assert {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        "action": "keep",
        "regex": "true",
    } in pods
    envoy = jobs["envoy-stats"]
    assert envoy["metrics_path"] == "/stats/prometheus"
    # Pods the kubernetes-pods job already scrapes (merged metrics on 15020) are dropped here.
    assert {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        "action": "drop",
        "regex": "true",
    } in envoy["relabel_configs"]
    canary = jobs["canarymesh-controller"]["relabel_configs"]
    assert {
        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
        "action": "keep",
        "regex": "canarymesh-controller",
    } in canary
    assert {
        "source_labels": ["__meta_kubernetes_pod_container_port_name"],
        "action": "keep",
        "regex": "metrics",
    } in canary


def test_prometheus_address_relabel_takes_the_annotated_port() -> None:
    """The relabel regex that builds host:port, applied as Prometheus would (fully anchored)."""
    rule = next(
        r
        for job in _scrape_config()["scrape_configs"]
        if job["job_name"] == "kubernetes-pods"
        for r in job["relabel_configs"]
        if r.get("target_label") == "__address__"
    )
    regex = re.compile(rf"^(?:{rule['regex']})$")
    replacement = rule["replacement"].replace("$1", r"\1").replace("$2", r"\2")
    for address, port, expected in [
        ("10.1.2.3:9080", "15020", "10.1.2.3:15020"),
        ("10.1.2.3", "9080", "10.1.2.3:9080"),
        ("[fd00::1]:9080", "15020", "[fd00::1]:15020"),
    ]:
        assert regex.sub(replacement, f"{address};{port}") == expected


@needs_promtool
def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    config = _scrape_config()
    swapped = 0
    for job in config["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
            swapped += 1
    assert swapped == 4
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [str(PROMTOOL), "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The judge can fail: a broken relabel regex is refused.
    config["scrape_configs"][1]["relabel_configs"][0]["regex"] = "(unclosed"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    bad = subprocess.run(
        [str(PROMTOOL), "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode != 0


# --------------------------------------------------------------------------------------------
# Grafana


def test_grafana_provisions_the_four_dashboards() -> None:
    titles = {board["title"] for board in dashboards().values()}
    assert titles == {
        "Istio Mesh Dashboard",
        "Istio Service Dashboard",
        "Istio Workload Dashboard",
        "Canary Mesh Rollouts",
    }
    uids = [board["uid"] for board in dashboards().values()]
    assert len(set(uids)) == len(uids)


def test_every_panel_has_a_promql_target() -> None:
    for board in dashboards().values():
        assert board["panels"], board["title"]
        ids = [panel["id"] for panel in board["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in board["panels"]:
            assert panel["targets"], f"{board['title']}: {panel['title']}"
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "prometheus", "uid": "prometheus"}
                assert target["expr"].strip()


def test_dashboard_variables_are_defined_where_used() -> None:
    for board in dashboards().values():
        defined = {v["name"] for v in board["templating"]["list"]}
        for panel in board["panels"]:
            for target in panel["targets"]:
                used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval", "__range"}
                assert used <= defined, f"{board['title']}: {used - defined}"


def test_dashboards_query_istio_standard_metrics_and_labels() -> None:
    for title, expr in dashboard_queries():
        metrics = set(re.findall(r"\b(istio_\w+|canarymesh_\w+)", expr))
        assert metrics, f"{title}: {expr}"
        allowed = ISTIO_LABELS | (CANARY_LABELS if "canarymesh_" in expr else set())
        assert _selector_labels(expr) <= allowed, f"{title}: {_selector_labels(expr) - allowed}"
    mesh_metrics = {m for _, e in dashboard_queries() for m in re.findall(r"\bistio_\w+", e)}
    assert {"istio_requests_total", "istio_request_duration_milliseconds_bucket"} <= mesh_metrics


def test_canary_dashboard_shows_weight_phase_decisions_and_per_version_health() -> None:
    (board,) = [b for b in dashboards().values() if b["title"] == "Canary Mesh Rollouts"]
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    for metric in (
        "canarymesh_rollout_weight",
        "canarymesh_rollout_phase",
        "canarymesh_rollout_decisions_total",
    ):
        assert metric in exprs
    per_version = [
        t["expr"]
        for p in board["panels"]
        for t in p["targets"]
        if "by (destination_version)" in t["expr"] or "by (le, destination_version)" in t["expr"]
    ]
    assert any("histogram_quantile(0.99" in e for e in per_version)
    assert any('response_code!~"5.."' in e for e in per_version)


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    queries = dashboard_queries()
    rules = [
        {"record": f"dashboard:query{i}", "expr": _concrete(e)} for i, (_, e) in enumerate(queries)
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(queries)} rules found" in result.stdout
    path.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "g", "rules": [{"record": "r", "expr": "sum(rate(x[1m])"}]}]}
        )
    )
    bad = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)], capture_output=True, timeout=60
    )
    assert bad.returncode != 0


def test_grafana_wiring_data_sources_providers_and_mounts() -> None:
    docs = docs_in("addons/grafana.yaml")
    config = by_name(docs, "ConfigMap")["grafana"]["data"]
    sources = {s["name"]: s for s in yaml.safe_load(config["datasources.yaml"])["datasources"]}
    assert sources["Prometheus"]["url"] == "http://prometheus:9090"
    assert sources["Prometheus"]["uid"] == "prometheus" and sources["Prometheus"]["isDefault"]
    assert sources["Loki"]["url"] == "http://loki:3100"
    providers = yaml.safe_load(config["dashboardproviders.yaml"])["providers"]
    (container,) = containers(by_name(docs, "Deployment")["grafana"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {
        v["name"]: v["configMap"]["name"]
        for v in by_name(docs, "Deployment")["grafana"]["spec"]["template"]["spec"]["volumes"]
        if "configMap" in v
    }
    dashboard_maps = by_name(docs, "ConfigMap")
    for provider in providers:
        volume = mounts[provider["options"]["path"]]
        assert any(k.endswith(".json") for k in dashboard_maps[volumes[volume]]["data"])


# --------------------------------------------------------------------------------------------
# Every addon


@pytest.mark.parametrize("path", addon_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_addons_live_in_istio_system_and_are_self_consistent(path: Path) -> None:
    docs = documents(path)
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"]["namespace"] == "istio-system", doc["metadata"]["name"]
    accounts = set(by_name(docs, "ServiceAccount"))
    config_maps = set(by_name(docs, "ConfigMap"))
    for dep in of_kind(docs, "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        assert pod.get("serviceAccountName", "default") in accounts | {"default"}
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
        for container in containers(dep):
            assert "readinessProbe" in container and "livenessProbe" in container
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert ":" in container["image"] and not container["image"].endswith(":latest")
    for svc in of_kind(docs, "Service"):
        pods = [
            c
            for d in of_kind(docs, "Deployment")
            if all(
                d["spec"]["template"]["metadata"]["labels"].get(k) == v
                for k, v in svc["spec"]["selector"].items()
            )
            for c in containers(d)
        ]
        assert pods, f"Service {svc['metadata']['name']} selects nothing"
        exposed = {p["containerPort"] for c in pods for p in c["ports"]}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in exposed, (svc["metadata"]["name"], port)


@pytest.mark.parametrize(
    ("service", "port"),
    [("prometheus", 9090), ("grafana", 3000), ("kiali", 20001), ("jaeger", 16686)],
)
def test_the_seed_readmes_port_forwards_reach_their_service(service: str, port: int) -> None:
    """`kubectl port-forward -n istio-system svc/<service> <port>:<port>`, as the README says."""
    found = [
        svc
        for path in sorted((REPO / "addons").glob("*.yaml"))
        for svc in of_kind(documents(path), "Service")
        if svc["metadata"]["name"] == service
    ]
    assert len(found) == 1, service
    assert port in [p["port"] for p in found[0]["spec"]["ports"]]


def test_jaeger_receives_zipkin_and_otlp_and_serves_the_ui_as_tracing() -> None:
    services = by_name(docs_in("addons/jaeger.yaml"), "Service")

    def ports(name: str) -> dict[int, int]:
        return {p["port"]: p["targetPort"] for p in services[name]["spec"]["ports"]}

    assert ports("tracing")[80] == 16686
    assert ports("zipkin") == {9411: 9411}
    assert {4317, 4318, 9411, 14268, 14250} <= set(ports("jaeger-collector"))


def test_top_level_addons_do_not_collide() -> None:
    """`kubectl apply -f addons/` applies the top level: no two objects may share a name."""
    seen: dict[tuple[str, str], str] = {}
    for path in sorted((REPO / "addons").glob("*.yaml")):
        for doc in documents(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in seen, f"{key} in {path.name} and {seen[key]}"
            seen[key] = path.name


def test_loki_and_kiali_configs_parse_and_point_at_the_other_addons() -> None:
    loki = yaml.safe_load(
        by_name(docs_in("addons/loki.yaml"), "ConfigMap")["loki"]["data"]["loki.yaml"]
    )
    assert loki["server"]["http_listen_port"] == 3100 and loki["auth_enabled"] is False
    kiali = yaml.safe_load(
        by_name(docs_in("addons/kiali.yaml"), "ConfigMap")["kiali"]["data"]["config.yaml"]
    )
    assert kiali["external_services"]["prometheus"]["url"] == "http://prometheus.istio-system:9090"
    assert kiali["server"]["port"] == 20001
    assert len(kiali["login_token"]["signing_key"]) in {16, 24, 32}
