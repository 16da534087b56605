"""A config canary on the local mesh's config: the chosen share of the clients runs the changed
rules, the rest the current ones (proved by simulating requests over the generated Envoy
config), the share survives a restart, and a rollback is exactly the current config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from canarymesh.api.loader import load_text
from canarymesh.mesh.build import build_mesh
from canarymesh.mesh.model import MeshSnapshot
from canarymesh.routing.config_split import CANARY, LABEL, STABLE
from canarymesh.runtime.local.config_canaries import ConfigCanaries
from canarymesh.runtime.local.store import Document, Key, key_of
from canarymesh.xds.simulate import Request, simulate
from tests.unit.xds.meshes import sample, snapshot

DETAILS = "details.default.svc.cluster.local"
FAULT = "networking/fault-injection-details-v1.yaml"


def _documents(*texts: str) -> dict[Key, Document]:
    docs = [d for text in texts for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        doc.setdefault("metadata", {}).setdefault("namespace", "default")
    return {key_of(d): d for d in docs}


def _canary(changed: list[dict[str, Any]]) -> Document:
    return {
        "apiVersion": "canarymesh.io/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "details-config", "namespace": "default"},
        "spec": {"target": {"host": DETAILS}, "config": {"resources": changed}},
    }


def _bookinfo(replicas: int) -> str:
    return sample("platform/kube/bookinfo.yaml").replace("replicas: 1", f"replicas: {replicas}")


def _mesh(
    canaries: ConfigCanaries, documents: dict[Key, Document], callers: set[str]
) -> tuple[MeshSnapshot, dict[str, tuple[str, str]]]:
    rewritten = canaries.rewrite(documents)
    loaded = load_text("\n---\n".join(yaml.safe_dump(d) for d in rewritten.values()), "t.yaml")
    assert not loaded.diagnostics.has_errors, loaded.diagnostics.lines()
    return canaries.label(documents, build_mesh(loaded.resources), lambda host: set(callers))


def _details_call(mesh: MeshSnapshot, proxy: str) -> int | None:
    result = simulate(snapshot(mesh, proxy), Request(host="details:9080", path="/details/0"))
    assert result.error is None
    return result.fault.abort_status if result.fault else None


def _setup(tmp_path: Path) -> tuple[ConfigCanaries, dict[Key, Document], list[str]]:
    changed = list(yaml.safe_load_all(sample(FAULT)))
    for doc in changed:
        doc["metadata"]["namespace"] = "default"
    documents = _documents(_bookinfo(4), sample("networking/destination-rule-all.yaml"))
    documents[key_of(_canary(changed))] = _canary(changed)
    clients = [f"productpage-v1-{i}" for i in range(4)]
    return ConfigCanaries(tmp_path / "config-canaries.json"), documents, clients


def test_a_quarter_of_the_clients_take_the_fault_and_the_rest_do_not(tmp_path: Path) -> None:
    canaries, documents, clients = _setup(tmp_path)
    canaries.set_share("default/details-config", 25)
    mesh, members = _mesh(canaries, documents, set(clients))
    on_canary = [p for p in clients if members[p] == ("default/details-config", CANARY)]
    assert len(on_canary) == 1
    assert {members[p][1] for p in clients} == {CANARY, STABLE}
    # Only the sidecars that called details were split; details itself was not.
    assert "details-v1-0" not in members
    for proxy in clients:
        expected = 555 if proxy in on_canary else None
        assert _details_call(mesh, proxy) == expected, proxy
    assert mesh.proxy(on_canary[0]).label_map[LABEL] == CANARY

    # The share is kept on disk (a restarted control plane reads it) and widens monotonically.
    again = ConfigCanaries(tmp_path / "config-canaries.json")
    again.set_share("default/details-config", 50)
    _, wider = _mesh(again, documents, set(clients))
    chosen = {p for p in clients if wider[p][1] == CANARY}
    assert len(chosen) == 2 and set(on_canary) <= chosen


def test_a_rollback_leaves_exactly_the_current_config(tmp_path: Path) -> None:
    canaries, documents, clients = _setup(tmp_path)
    canaries.set_share("default/details-config", 50)
    canaries.set_share("default/details-config", None)
    assert canaries.rewrite(documents) == documents
    mesh, members = _mesh(canaries, documents, set(clients))
    assert members == {}
    assert all(_details_call(mesh, p) is None for p in clients)
    assert all(LABEL not in mesh.proxy(p).label_map for p in clients)


def test_a_destination_rule_with_a_workload_selector_applies_to_its_clients_first() -> None:
    selected = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details-selected, namespace: default}
spec:
  host: details
  workloadSelector: {matchLabels: {app: productpage}}
  subsets: [{name: v1, labels: {version: v1}}]
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
"""
    plain = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: details}\n"
    plain += "spec: {host: details, subsets: [{name: v1, labels: {version: v1}}]}\n"
    text = "\n---\n".join([_bookinfo(1), plain, selected])
    mesh = build_mesh(load_text(text, "t.yaml").resources)
    cluster = f"outbound|9080||{DETAILS}"
    clusters = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    at_productpage = snapshot(mesh, "productpage-v1-0").named(clusters)[cluster]
    at_reviews = snapshot(mesh, "reviews-v1-0").named(clusters)[cluster]
    assert at_productpage["lb_policy"] == "RANDOM"  # type: ignore[index]
    assert at_reviews.get("lb_policy") != "RANDOM"  # type: ignore[union-attr]
