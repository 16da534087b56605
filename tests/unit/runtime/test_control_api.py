"""The control plane's typed API end to end: the server sends the models of
:mod:`canarymesh.runtime.local.api_models`, the client parses the same models, bad bodies are
refused naming the field, and errors come back as the matching error class."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from canarymesh.errors import CanaryMeshError, ConfigError
from canarymesh.runtime.local import control
from canarymesh.runtime.local.api_client import ApiClient
from canarymesh.runtime.local.api_models import DocumentText, MeshStatus, Pod
from tests.unit.runtime.control_plane import LocalControlPlane

SERVICE = """apiVersion: v1
kind: Service
metadata: {name: reviews}
spec: {ports: [{port: 9080, name: http}], selector: {app: reviews}}
"""
POD_ROW: dict[str, object] = {
    "name": "reviews-v1-1",
    "namespace": "default",
    "deployment": "reviews-v1",
    "ready": "2/2",
    "status": "Running",
    "restarts": 0,
    "age": 12.5,
    "containers": [
        {
            "name": "reviews-v1-1",
            "pid": 10,
            "phase": "Running",
            "ready": True,
            "restarts": 0,
            "last_exit_code": None,
            "error": None,
        },
    ],  # fmt: skip
    "labels": {"app": "reviews", "version": "v1"},
    "service_account": "bookinfo-reviews",
    "ports": {"admin": 15000, "outbound_http": 15001, "inbound": {9080: 15006}, "app": {9080: 9}},
}


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[LocalControlPlane]:
    with LocalControlPlane(tmp_path) as served:
        yield served


def test_apply_answers_kubectls_lines_and_resources_read_back(plane: LocalControlPlane) -> None:
    document = DocumentText(source="svc.yaml", text=SERVICE, namespace="webapps")
    assert plane.api.apply([document]).lines == ("service/reviews created",)
    assert plane.api.apply([document]).lines == ("service/reviews unchanged",)
    (stored,) = plane.api.resources(["service"], "webapps")
    assert stored["metadata"] == {"name": "reviews", "namespace": "webapps"}
    assert plane.api.delete([document]).lines == ("service/reviews deleted",)
    assert plane.api.resources(["service"], "webapps") == ()


def test_status_says_which_network_the_pods_use(plane: LocalControlPlane) -> None:
    status = plane.api.status()
    assert isinstance(status, MeshStatus)
    assert (status.pid, status.network, status.ingress_url) == (
        4242,
        "host",
        plane.info["ingress_url"],
    )
    assert [c.name for c in status.components] == ["control-plane"]
    plane.info["network"] = "pod"
    assert plane.api.status().network == "pod"


def test_status_drops_no_fact_of_the_daemon(plane: LocalControlPlane) -> None:
    """Every key of the daemon's info has a field: a new one fails loudly, never vanishes."""
    plane.info["keeper"] = 41
    assert plane.api.status().keeper == 41
    plane.info["new_fact"] = 1
    with pytest.raises(CanaryMeshError, match=r"MeshStatus has no field for \['new_fact'\]"):
        plane.api.status()


def test_pods_are_typed_rows_with_an_ip_only_in_their_own_network(
    plane: LocalControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rows as the pod runner's status view makes them (tested with it); here: their types.
    rows = [POD_ROW, {**POD_ROW, "name": "reviews-v1-2", "ip": "10.244.0.7"}]
    monkeypatch.setattr(control, "pod_rows", lambda runner: rows)
    first, second = plane.api.pods()
    assert isinstance(first, Pod)
    assert first.ports.inbound == {9080: 15006}  # int keys again after JSON's strings
    assert (first.ip, second.ip) == (None, "10.244.0.7")
    assert first.containers[0].pid == 10


def test_proxy_status_is_typed(plane: LocalControlPlane) -> None:
    plane.reconciler.add_proxy("reviews-v1-1", "default")
    (proxy,) = plane.api.proxy_status()
    assert (proxy.name, proxy.namespace, proxy.connected, proxy.synced) == (
        "reviews-v1-1", "default", True, True,
    )  # fmt: skip
    assert proxy.types == {"RouteConfiguration": "SYNCED"}


def test_a_bad_body_is_refused_naming_the_field(plane: LocalControlPlane) -> None:
    with pytest.raises(ConfigError, match=r"bad request body: documents\.0\.text: Field required"):
        plane.api.post("/v1/apply", {"documents": [{"source": "x"}]})
    with pytest.raises(ConfigError, match="wiat: Extra inputs are not permitted"):
        plane.api.post("/v1/apply", {"documents": [], "wiat": True})
    with pytest.raises(ConfigError, match="timeout: Input should be greater than 0"):
        plane.api.post("/v1/wait", {"timeout": -1})


def test_a_wrong_token_is_refused(plane: LocalControlPlane) -> None:
    intruder = ApiClient(plane.api.port, "not-the-token", timeout=5.0)
    with pytest.raises(CanaryMeshError, match="401: missing or wrong bearer token"):
        intruder.status()
