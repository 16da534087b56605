"""``canarymesh rollout … --context NAME`` reads and steers the Canaries of a cluster (here the
fake API server, reached through a kubeconfig context as a user's would be) and prints what the
same rollout prints locally.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from kubernetes import client

from canarymesh.cli.main import cli
from canarymesh.ports import state_of
from canarymesh.runtime.kube.backend import CLI_FIELD_MANAGER
from canarymesh.runtime.kube.client import COMMAND_ANNOTATION, KubeApi
from canarymesh.runtime.kube.rollout_store import KubeStateStore
from canarymesh.runtime.kube.router import KubeRouter
from canarymesh.views.rollout import rollout_view
from tests.fakes import FakeClock, FakeRouter, MemoryStore
from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.unit.kube.test_adapters import seed_bookinfo
from tests.unit.kube.test_same_rollout import ITEM, SPEC, drive

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    fake = FakeApiServer()
    fake.start()
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": fake.url}}],
        "users": [{"name": "me", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}],
        "current-context": "",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("CANARYMESH_STATE_DIR", str(tmp_path / "mesh"))
    try:
        yield fake
    finally:
        fake.stop()


def run_on_cluster(server: FakeApiServer) -> None:
    seed_bookinfo(server)
    with client.ApiClient(client.Configuration(host=server.url)) as api_client:
        api = KubeApi(api_client)
        drive(KubeRouter(api, "webapps", "reviews"), KubeStateStore(api, "t"), FakeClock(), 0.0)


def test_get_prints_the_same_view_as_the_local_rollout(cluster: FakeApiServer) -> None:
    clock, store = FakeClock(), MemoryStore()
    drive(FakeRouter(clock, apply_delay=0.0), store, clock, 0.0)
    local_state = state_of(store.load(ITEM.key))
    assert local_state is not None
    expected = rollout_view(local_state, SPEC).to_json()

    run_on_cluster(cluster)
    # The cluster's Canary is the shipped file; give it the spec the scripted rollout ran.
    canary = cluster.object("canarymesh.io", "canaries", "webapps", "reviews")
    canary["spec"] = SPEC.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    cluster.put("canarymesh.io", "canaries", canary)

    result = CliRunner().invoke(
        cli, ["rollout", "get", "reviews", "--context", "fake", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(json.dumps(expected))

    listed = CliRunner().invoke(cli, ["rollout", "list", "--context", "fake"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[1].split()[:4] == ["webapps", "reviews", "Succeeded", "0%"]


def test_commands_become_an_annotation_the_controller_takes(cluster: FakeApiServer) -> None:
    run_on_cluster(cluster)
    result = CliRunner().invoke(
        cli, ["rollout", "pause", "reviews", "-n", "webapps", "--context", "fake"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == "rollout webapps/reviews: pause sent\n"
    meta = cluster.object("canarymesh.io", "canaries", "webapps", "reviews")["metadata"]
    assert meta["annotations"][COMMAND_ANNOTATION] == "pause"


def test_start_applies_the_canary_as_the_cli(cluster: FakeApiServer) -> None:
    path = REPO / "canary-manifests/canary-reviews.yaml"
    result = CliRunner().invoke(cli, ["rollout", "start", "-f", str(path), "--context", "fake"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [
        "canary.canarymesh.io/reviews started (webapps/reviews)",
        "  follow it: canarymesh rollout get reviews -n webapps --watch --context fake",
    ]
    manager, plural, status_only, body = cluster.applies[-1]
    assert (manager, plural, status_only) == (CLI_FIELD_MANAGER, "canaries", False)
    assert body["spec"]["target"]["canarySubset"] == "v3"
    stored = cluster.object("canarymesh.io", "canaries", "webapps", "reviews")
    assert stored["metadata"]["annotations"]["canarymesh.io/rollout-id"]


def test_an_unknown_context_is_a_config_error(cluster: FakeApiServer) -> None:
    result = CliRunner().invoke(cli, ["rollout", "list", "--context", "nope"])
    assert result.exit_code == 1
    assert "cannot use the Kubernetes config" in result.output
