"""``canarymesh demo``: the README's first command, end to end on a local mesh in minutes.

Brings a mesh up (or reuses the one running in ``--state-dir``), deploys Bookinfo with every
service on v1, sends load through the ingress gateway, then runs two rollouts with the canary
controller and prints each decision with its reason and the elapsed time:

1. reviews v1 -> v3, judged statistically against v1: healthy, promoted;
2. ratings v1 -> v-faulty (the image that answers 503 half the time): rolled back on its own.

Exit 0 when both end as expected, 1 otherwise; the mesh goes down afterwards unless ``--keep``.
The two Canaries below are the demo's own: short steps and a 5 s interval, so it fits in a few
minutes at 40 requests per second.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import click

from canarymesh.cli.common import client, handle_errors, state_dir, state_dir_option
from canarymesh.cli.rollout import start_rollout
from canarymesh.ports import state_of
from canarymesh.ports.load import LoadGenerator
from canarymesh.rollout.phases import Phase
from canarymesh.runtime.local import launcher
from canarymesh.runtime.local.api_client import daemon_info
from canarymesh.runtime.local.api_models import DocumentText
from canarymesh.runtime.local.rollout_store import RolloutStore

__all__ = ["DEMO_RATINGS", "DEMO_REVIEWS", "demo_command"]

REPO_FILES = (
    "bookinfo/platform/kube/bookinfo.yaml",
    "bookinfo/networking/destination-rule-all.yaml",
    "bookinfo/networking/virtual-service-all-v1.yaml",
    "bookinfo/networking/bookinfo-gateway.yaml",
)
DEMO_RPS = 40.0
ROLLOUT_TIMEOUT = 120.0

# Judged on errors and latency. reviews v3 calls ratings and v1 does not, so v3 is slower by
# design (on a loaded machine its p99 is about three times v1's): its latency is compared with v1's
# with a tolerance of 4, so only a v3 slower than that counts as a regression.
DEMO_REVIEWS = """
apiVersion: canarymesh.io/v1alpha1
kind: Canary
metadata: {name: reviews, namespace: default}
spec:
  target: {host: reviews, virtualService: reviews, stableSubset: v1, canarySubset: v3}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - analysis: {duration: 10s}
        - setWeight: 50
        - analysis: {duration: 10s}
  analysis:
    judge: statistical
    interval: 5s
    minRequests: 50
    metrics:
      - name: request-success-rate
      - name: request-duration
        tolerance: 4
  progressDeadline: 2m
"""

DEMO_RATINGS = DEMO_REVIEWS.replace("name: reviews, namespace", "name: ratings, namespace").replace(
    "host: reviews, virtualService: reviews, stableSubset: v1, canarySubset: v3",
    "host: ratings, virtualService: ratings, stableSubset: v1, canarySubset: v-faulty",
)

# The faulty ratings: a Deployment of the v-faulty image, and its subset.
FAULTY_RATINGS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: ratings-v-faulty, namespace: default, labels: {app: ratings, version: v-faulty}}
spec:
  replicas: 1
  selector: {matchLabels: {app: ratings, version: v-faulty}}
  template:
    metadata: {labels: {app: ratings, version: v-faulty}}
    spec:
      serviceAccountName: bookinfo-ratings
      containers:
        - name: ratings
          image: docker.io/istio/examples-bookinfo-ratings-v-faulty:1.20.3
          ports: [{containerPort: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v-faulty, labels: {version: v-faulty}}
"""


class Narrator:
    """Says what the demo does, each line stamped with the seconds since it began."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        click.echo(f"[{time.monotonic() - self.started:6.1f}s] {text}")


def _apply(texts: list[tuple[str, str]]) -> None:
    documents = [DocumentText(source=source, text=text) for source, text in texts]
    client().apply(documents, wait=True, timeout=60.0)


def _follow(key: str, narrator: Narrator, since: datetime.datetime) -> Phase:
    """Print each new decision of rollout ``key`` until it ends; its final phase. A record of
    a rollout started before ``since`` (an earlier demo in the same mesh) is not this one."""
    store, printed, deadline = RolloutStore(state_dir()), 0, time.monotonic() + ROLLOUT_TIMEOUT
    while time.monotonic() < deadline:
        state = state_of(store.load(key))
        if state is not None and state.started_at >= since:
            for entry in state.history[printed:]:
                narrator.say(f"{key} {entry.phase.value}: {entry.reason}")
            printed = len(state.history)
            if state.phase in (Phase.SUCCEEDED, Phase.FAILED):
                return state.phase
        time.sleep(0.5)
    narrator.say(f"{key}: no outcome after {ROLLOUT_TIMEOUT:.0f}s")
    return Phase.PROGRESSING


def _now() -> datetime.datetime:
    # A second of slack: the controller stamps started_at with its own reading of the clock.
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)


def _bring_up(ingress_port: int, narrator: Narrator) -> None:
    """Up the mesh unless one runs in the state directory already."""
    if daemon_info(state_dir()) is not None:
        narrator.say(f"reusing the local mesh in {state_dir()}")
        return
    launcher.start(state_dir(), ingress_port, prometheus=True, restart_backoff=0.5)
    narrator.say(f"local mesh up in {state_dir()}")


def _run(narrator: Narrator) -> bool:
    repo = Path(__file__).resolve().parents[3]  # the checkout holding bookinfo/
    _apply([(name, (repo / name).read_text()) for name in REPO_FILES])
    ingress = client().status().ingress_url
    narrator.say(f"Bookinfo deployed, every service on v1: {ingress}/productpage")
    load = LoadGenerator(f"{ingress}/productpage", DEMO_RPS, 600.0).start()
    narrator.say(f"load: {DEMO_RPS:g} requests/s through the ingress gateway")
    try:
        since = _now()
        start_rollout(DEMO_REVIEWS, "demo: reviews v1 -> v3", None)
        healthy = _follow("default/reviews", narrator, since)
        _apply([("demo: ratings v-faulty", FAULTY_RATINGS)])
        narrator.say("deployed ratings v-faulty (503 on half of its answers)")
        since = _now()
        start_rollout(DEMO_RATINGS, "demo: ratings v1 -> v-faulty", None)
        faulty = _follow("default/ratings", narrator, since)
    finally:
        stats = load.stop()
        narrator.say(f"load stopped: {stats.sent} requests, answers {dict(stats.codes)}")
    ok = healthy is Phase.SUCCEEDED and faulty is Phase.FAILED
    promoted = "promoted" if healthy is Phase.SUCCEEDED else "NOT promoted"
    rolled_back = "rolled back" if faulty is Phase.FAILED else "NOT rolled back"
    narrator.say(f"reviews v3 {promoted}; ratings v-faulty {rolled_back}")
    return ok


@click.command("demo")
@click.option("--keep", is_flag=True, help="Leave the mesh running afterwards.")
@click.option("--ingress-port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@state_dir_option
@handle_errors
def demo_command(keep: bool, ingress_port: int) -> None:
    """Roll reviews v1 -> v3 (promoted), then a faulty ratings (rolled back), on a local mesh."""
    narrator = Narrator()
    _bring_up(ingress_port, narrator)
    try:
        ok = _run(narrator)
    finally:
        if keep:
            narrator.say(f"mesh kept: canarymesh --state-dir {state_dir()} down")
        else:
            launcher.stop(state_dir())
            narrator.say("mesh stopped")
    raise SystemExit(0 if ok else 1)
