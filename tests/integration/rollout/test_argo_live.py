"""Argo Rollouts' ``Rollout`` on a real local mesh (Envoys, Prometheus, the controller process),
with notifications to local receivers of every kind.

One mesh for the module runs ``canary-manifests/argo/rollouts-demo.yaml`` (the shape of Argo's
istio-subset example with a Prometheus AnalysisTemplate): a healthy revision is shifted 20%,
50%, 80% (measured on the requests themselves) and promoted as Argo promotes; a bad one fails
its analysis and is aborted back to the stable; a Rollout written like Argo's
``examples/istio/istio-subset-split.yaml`` (``pause: {}``) waits at its weight until promoted.

Every rollout notifies: Slack, Teams and Discord through the Rollout's own
``notifications.argoproj.io/subscribe.*`` annotations (configured per rollout), a signed
webhook and Alertmanager through mesh-wide AlertProviders (configured once for the mesh). Each
body is checked for its receiver's shape, the webhook's HMAC signature is verified, and Slack
answers its first request with a 500, which the notifier retries.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.api.argo import pod_template_hash
from canarymesh.ports import state_of
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.runtime.local.rollout_store import RolloutStore
from canarymesh.views.notification_payloads import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER
from tests.integration.mesh.conftest import REPO, LocalMesh, start_mesh
from tests.support.receivers import Received, Receiver, shape_problems

pytestmark = pytest.mark.integration

DEMO = REPO / "canary-manifests" / "argo" / "rollouts-demo.yaml"
HOST = "rollouts-demo.local"
KEY = "default/rollouts-demo"
HMAC_KEY = "integration-test-hmac-key"
# Per receiver kind: the path of its local receiver.
PATHS = {"slack": "/slack", "msteams": "/teams", "discord": "/discord", "webhook": "/hooks",
         "alertmanager": "/am/api/v2/alerts"}  # fmt: skip
# Argo's notification triggers, each subscribed for the per-rollout services.
TRIGGERS = ("on-rollout-updated", "on-rollout-step-completed", "on-rollout-paused",
            "on-rollout-completed", "on-rollout-aborted")  # fmt: skip
PER_ROLLOUT = ("slack", "msteams", "discord")

PROVIDERS = """
apiVersion: v1
kind: Secret
metadata: {name: slack-url}
stringData: {address: "URL/slack"}
---
apiVersion: v1
kind: Secret
metadata: {name: teams-url}
stringData: {address: "URL/teams"}
---
apiVersion: v1
kind: Secret
metadata: {name: discord-url}
stringData: {address: "URL/discord"}
---
apiVersion: v1
kind: Secret
metadata: {name: hooks}
stringData: {address: "URL/hooks", hmacKey: "HMAC"}
---
apiVersion: canarymesh.io/v1alpha1
kind: AlertProvider
metadata: {name: slack}
spec: {type: slack, secretRef: {name: slack-url}, channel: "#deploys"}
---
apiVersion: canarymesh.io/v1alpha1
kind: AlertProvider
metadata: {name: msteams}
spec: {type: msteams, secretRef: {name: teams-url}}
---
apiVersion: canarymesh.io/v1alpha1
kind: AlertProvider
metadata: {name: discord}
spec: {type: discord, secretRef: {name: discord-url}, username: canary-bot}
---
# Configured once for the whole mesh: every rollout's events, no Rollout names them.
apiVersion: canarymesh.io/v1alpha1
kind: AlertProvider
metadata: {name: hooks}
spec: {type: webhook, secretRef: {name: hooks}, meshWide: {}}
---
apiVersion: canarymesh.io/v1alpha1
kind: AlertProvider
metadata: {name: alertmanager}
spec: {type: alertmanager, address: "URL/am", meshWide: {events: [rolledBack, paused]}}
"""

# In the shape of Argo's examples/istio/istio-subset-split.yaml: a VirtualService for the
# mesh, subsets told apart by revision, one weight and then a pause until promoted.
SUBSET_SPLIT = """
apiVersion: v1
kind: Service
metadata: {name: subset-split}
spec:
  ports: [{port: 80, targetPort: http, protocol: TCP, name: http}]
  selector: {app: subset-split}
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: subset-split-vsvc}
spec:
  hosts: [subset-split]
  http:
    - name: primary
      route:
        - destination: {host: subset-split, subset: stable}
          weight: 100
        - destination: {host: subset-split, subset: canary}
          weight: 0
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: subset-split-destrule}
spec:
  host: subset-split
  subsets:
    - {name: stable, labels: {app: subset-split}}
    - {name: canary, labels: {app: subset-split}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: subset-split}
spec:
  strategy:
    canary:
      trafficRouting:
        istio:
          virtualService: {name: subset-split-vsvc, routes: [primary]}
          destinationRule:
            name: subset-split-destrule
            canarySubsetName: canary
            stableSubsetName: stable
      steps:
        - setWeight: 10
        - pause: {}
  selector:
    matchLabels: {app: subset-split}
  template:
    metadata:
      labels: {app: subset-split}
    spec:
      containers:
        - name: subset-split
          image: nginx:IMAGE
          ports: [{name: http, containerPort: 80, protocol: TCP}]
          resources: {requests: {memory: 16Mi, cpu: 5m}}
"""


class Sampler:
    """GETs ``/color`` through the ingress about ``rps`` times a second, keeping when each
    answer came, its status and its color. It is the rollout's traffic too."""

    def __init__(self, url: str, rps: float = 25.0) -> None:
        self.url, self.period = url, 1.0 / rps
        self.samples: list[tuple[datetime.datetime, int, str]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            status, color = self._get()
            with self._lock:
                self.samples.append((datetime.datetime.now(datetime.UTC), status, color))
            self._stop.wait(max(0.0, self.period - (time.monotonic() - began)))

    def _get(self) -> tuple[int, str]:
        request = urllib.request.Request(self.url, headers={"Host": HOST})
        try:
            with self._opener.open(request, timeout=3) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            body = err.read()
            try:
                return err.code, str(json.loads(body))
            except ValueError:
                return err.code, ""
        except (OSError, ValueError):
            return 0, ""

    def between(
        self, start: datetime.datetime, end: datetime.datetime
    ) -> list[tuple[datetime.datetime, int, str]]:
        with self._lock:
            return [s for s in self.samples if start <= s[0] <= end]

    def fresh(self, count: int, timeout: float = 30.0) -> list[tuple[int, str]]:
        """The next ``count`` answers."""
        with self._lock:
            seen = len(self.samples)
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.samples) >= seen + count:
                    return [(s, c) for _, s, c in self.samples[seen : seen + count]]
            assert time.monotonic() < deadline, f"fewer than {count} answers in {timeout}s"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[LocalMesh]:
    mesh = start_mesh(tmp_path_factory.mktemp("argo") / "state")
    try:
        providers = PROVIDERS.replace("URL", receiver.url("")).replace("HMAC", HMAC_KEY)
        mesh.cli("apply", "-f", "-", stdin=providers)
        mesh.cli("apply", "-f", str(DEMO), "--wait")
        yield mesh
    finally:
        mesh.down()


@pytest.fixture(scope="module")
def sampler(mesh: LocalMesh) -> Iterator[Sampler]:
    running = Sampler(f"{mesh.ingress}/color").start()
    yield running
    running.stop()


def demo_revision(image: str) -> tuple[str, str]:
    """The demo with ``image`` and Argo's notification annotations for the per-rollout
    services, as YAML, and the pod template hash of that revision."""
    docs = [d for d in yaml.safe_load_all(DEMO.read_text()) if d]
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    rollout["spec"]["template"]["spec"]["containers"][0]["image"] = image
    rollout["metadata"]["annotations"] = {
        f"notifications.argoproj.io/subscribe.{trigger}.{service}": "deploys"
        for trigger in TRIGGERS
        for service in PER_ROLLOUT
    }
    return yaml.safe_dump_all(docs, sort_keys=False), pod_template_hash(rollout["spec"]["template"])


def wait_state(
    mesh: LocalMesh,
    key: str,
    done: Callable[[CanaryState], bool],
    timeout: float = 150.0,
    rollout_id: str | None = None,
) -> CanaryState:
    """The state of ``key`` once ``done`` (of the rollout ``rollout_id``: a Rollout's is the
    canary's pod template hash)."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        record = RolloutStore(mesh.state_dir).load(key)
        state = state_of(record)
        current = record is not None and rollout_id in (None, record.get("rolloutId"))
        if current and state is not None and done(state):
            return state
        time.sleep(0.3)
    raise AssertionError(f"{key}: not reached in {timeout}s; last: {state}")


def final(state: CanaryState) -> bool:
    return state.phase in (Phase.SUCCEEDED, Phase.FAILED)


def resource(mesh: LocalMesh, kind: str, name: str) -> dict[str, Any]:
    found = mesh.api().get("/v1/resources", {"kinds": kind, "namespace": "default",
                                             "name": name})  # fmt: skip
    return dict(found["items"][0])  # type: ignore[index]


def since(state: CanaryState, prefix: str) -> datetime.datetime:
    """When the rollout's history first says ``prefix``."""
    return next(h.at for h in state.history if h.reason.startswith(prefix))


def binomial_band(n: int, p: float) -> tuple[float, float]:
    """The two-sided 99.9% band of a binomial count (normal approximation, z = 3.29)."""
    spread = 3.29 * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread


def events(receiver: Receiver, kind: str, rollout: str = "rollouts-demo") -> list[str]:
    """The events ``kind``'s receiver was told about ``rollout``, once per delivery."""
    seen: dict[str, str] = {}
    for received in receiver.on(PATHS[kind]):
        if rollout in received.body.decode():
            seen.setdefault(received.headers[DELIVERY_HEADER], received.headers[EVENT_HEADER])
    return list(seen.values())


def wait_events(
    receiver: Receiver, kind: str, wanted: set[str], rollout: str = "rollouts-demo"
) -> list[str]:
    deadline = time.monotonic() + 30
    while not wanted <= set(found := events(receiver, kind, rollout)):
        assert time.monotonic() < deadline, f"{kind}: {found}, wanted {sorted(wanted)}"
        time.sleep(0.1)
    return found


def of_event(receiver: Receiver, kind: str, event: str) -> list[Received]:
    return [r for r in receiver.on(PATHS[kind]) if r.headers.get(EVENT_HEADER) == event]


def test_a_healthy_revision_is_shifted_step_by_step_and_promoted(
    mesh: LocalMesh, receiver: Receiver, sampler: Sampler
) -> None:
    assert {c for s, c in sampler.fresh(20)} == {"blue"}
    receiver.fail_then(PATHS["slack"], 500)  # Slack's first answer: retried
    text, yellow = demo_revision("argoproj/rollouts-demo:yellow")
    applied = mesh.cli("apply", "-f", "-", stdin=text).stdout
    assert f"revision {yellow} is the canary of" in applied
    state = wait_state(mesh, KEY, final, rollout_id=yellow)
    assert state.phase is Phase.SUCCEEDED, state.message

    # The weights moved as the steps say, on the requests themselves.
    windows = {
        20: (since(state, "step 2/6 (pause"), since(state, "step 3/6")),
        50: (since(state, "step 4/6 (analysis"), since(state, "step 5/6")),
        80: (since(state, "step 6/6 (pause"), since(state, "all 6 steps passed")),
    }
    margin = datetime.timedelta(seconds=0.5)
    for weight, (start, end) in windows.items():
        answers = [c for _, s, c in sampler.between(start + margin, end - margin) if s == 200]
        low, high = binomial_band(len(answers), weight / 100)
        assert len(answers) >= 50, (weight, len(answers))
        assert set(answers) <= {"blue", "yellow"}
        assert low <= answers.count("yellow") <= high, (weight, answers.count("yellow"), low, high)

    # Promoted as Argo promotes: both subsets select the new revision, every route back on
    # "stable", the old revision scaled to zero.
    assert {c for s, c in sampler.fresh(50)} == {"yellow"}
    rule = resource(mesh, "destinationrule.networking.istio.io", "rollouts-demo-destrule")
    assert {s["labels"]["rollouts-pod-template-hash"] for s in rule["spec"]["subsets"]} == {yellow}
    vs = resource(mesh, "virtualservice.networking.istio.io", "rollouts-demo-vsvc")
    weights = {d["destination"]["subset"]: d.get("weight") for d in vs["spec"]["http"][0]["route"]}
    assert weights == {"stable": 100, "canary": 0}
    pods = mesh.json("get", "pods", "-o", "json")["items"]
    assert {p["deployment"] for p in pods} == {f"rollouts-demo-{yellow}"}

    # Each receiver kind heard what it subscribed to, in its own shape.
    for kind in PER_ROLLOUT:
        found = wait_events(receiver, kind, {"started", "step", "promoted"})
        assert found[0] == "started" and found[-1] == "promoted", (kind, found)
    assert wait_events(receiver, "webhook", {"started", "step", "promoted"})[-1] == "promoted"
    # Alertmanager wants rolledBack and paused: nothing fired, the rest only resolves.
    for received in receiver.on(PATHS["alertmanager"]):
        assert shape_problems("alertmanager", received) == []
        assert all(a["endsAt"] == a["startsAt"] for a in received.json())
    for kind in PER_ROLLOUT + ("webhook",):
        for received in receiver.on(PATHS[kind]):
            assert shape_problems(kind, received) == [], (kind, received.json())
    # Slack answered 500 once: the same delivery came again and was taken.
    slack = receiver.on(PATHS["slack"])
    first = slack[0].headers[DELIVERY_HEADER]
    assert [r.headers[DELIVERY_HEADER] for r in slack].count(first) == 2
    (promoted,) = [r.json() for r in of_event(receiver, "slack", "promoted")]
    assert "promoted: canary is the stable subset" in promoted["text"]
    assert promoted.get("channel") == "#deploys"


def test_the_webhook_is_signed_with_the_key_of_its_secret(receiver: Receiver) -> None:
    # Runs after the promotion above: its deliveries are there.
    hooks = receiver.on(PATHS["webhook"])
    assert hooks
    for received in hooks:
        wanted = "sha256=" + hmac.new(HMAC_KEY.encode(), received.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(received.headers[SIGNATURE_HEADER], wanted)
        body = received.json()
        assert body["kind"] == "RolloutEvent" and body["canary"] == "rollouts-demo"
        assert body["event"] == received.headers[EVENT_HEADER]
        assert body["delivery"] == received.headers[DELIVERY_HEADER]
    forged = hooks[0].body.replace(b"rollouts-demo", b"rollouts-demX")
    wanted = "sha256=" + hmac.new(HMAC_KEY.encode(), forged, hashlib.sha256).hexdigest()
    assert hooks[0].headers[SIGNATURE_HEADER] != wanted


def test_a_revision_that_fails_its_analysis_is_aborted(
    mesh: LocalMesh, receiver: Receiver, sampler: Sampler
) -> None:
    stable = {c for s, c in sampler.fresh(20)}
    assert stable == {"yellow"}
    text, red = demo_revision("argoproj/rollouts-demo:bad-red")
    mesh.cli("apply", "-f", "-", stdin=text)
    state = wait_state(mesh, KEY, final, rollout_id=red)
    assert state.phase is Phase.FAILED, state.message
    assert "success-rate canary" in state.message and "< min 0.95" in state.message
    # Every request back on the stable revision, and it answers.
    assert set(sampler.fresh(50)) == {(200, "yellow")}
    vs = resource(mesh, "virtualservice.networking.istio.io", "rollouts-demo-vsvc")
    weights = {d["destination"]["subset"]: d.get("weight") for d in vs["spec"]["http"][0]["route"]}
    assert weights == {"stable": 100, "canary": 0}
    # Every kind was told, with the analysis' explanation.
    for kind in (*PER_ROLLOUT, "webhook", "alertmanager"):
        wait_events(receiver, kind, {"rolledBack"})
        (told,) = of_event(receiver, kind, "rolledBack")[-1:]
        assert shape_problems(kind, told) == []
        assert "success-rate" in told.body.decode() and "0.95" in told.body.decode(), kind
    alerts = {a["labels"]["alertname"]: a for a in of_event(receiver, "alertmanager",
                                                            "rolledBack")[-1].json()}  # fmt: skip
    fired = alerts["CanaryRolledBack"]  # and CanaryPaused resolved, were it firing
    assert fired["labels"] == {"alertname": "CanaryRolledBack", "namespace": "default",
                               "canary": "rollouts-demo", "severity": "critical"}  # fmt: skip
    assert fired["endsAt"] > fired["startsAt"]
    hook = of_event(receiver, "webhook", "rolledBack")[-1].json()
    assert [v["metric"] for v in hook["verdicts"]] == ["success-rate"]
    assert hook["verdicts"][0]["phase"] == "Failed"


def test_argos_subset_split_example_waits_at_its_weight_until_promoted(
    mesh: LocalMesh, receiver: Receiver, tmp_path: Path
) -> None:
    mesh.cli("apply", "-f", "-", "--wait", stdin=SUBSET_SPLIT.replace("IMAGE", "1.19-alpine"))
    out = mesh.cli("apply", "-f", "-", stdin=SUBSET_SPLIT.replace("IMAGE", "1.20-alpine")).stdout
    assert "is the canary of" in out
    paused = wait_state(mesh, "default/subset-split", lambda s: s.phase is Phase.PAUSED, 60)
    assert paused.weights.canary == 10
    # What a sidecar of the mesh holds: 90/10 between the two revisions' subsets.
    pod = mesh.json("get", "pods", "-o", "json")["items"][0]["name"]
    dump = mesh.json("proxy-config", "routes", pod, "-o", "json")
    clusters = {
        c["name"]: c["weight"]
        for item in dump["items"]
        for host in item["route_config"].get("virtual_hosts", [])
        for route in host["routes"]
        for c in route.get("route", {}).get("weighted_clusters", {}).get("clusters", [])
        if "subset-split" in c["name"]
    }
    assert clusters == {
        "outbound|80|stable|subset-split.default.svc.cluster.local": 90,
        "outbound|80|canary|subset-split.default.svc.cluster.local": 10,
    }
    # Mesh-wide providers hear about it though the Rollout names none.
    assert "paused" in wait_events(receiver, "webhook", {"paused"}, "subset-split")
    (firing,) = of_event(receiver, "alertmanager", "paused")[-1].json()
    assert firing["labels"]["alertname"] == "CanaryPaused"
    assert events(receiver, "slack", "subset-split") == []

    mesh.cli("rollout", "promote", "subset-split")
    done = wait_state(mesh, "default/subset-split", final, 60)
    assert done.phase is Phase.SUCCEEDED, done.message
    wait_events(receiver, "alertmanager", {"promoted"}, "subset-split")
    resolved = [a for a in of_event(receiver, "alertmanager", "promoted")[-1].json()
                if a["labels"]["alertname"] == "CanaryPaused"]  # fmt: skip
    assert resolved and resolved[0]["endsAt"] == resolved[0]["startsAt"]
