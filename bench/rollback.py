"""Time to roll back a canary with +5% errors on a live local mesh, statistical judge against a
threshold judge (Flagger's rule: success rate >= 99%, failureLimit 5) at the same 5 s interval.

    .venv/bin/python bench/rollback.py             # 2 rollouts per judge, 40 requests/s
    .venv/bin/python bench/rollback.py --runs 3 --rps 20

Brings up a mesh in a temporary state dir, deploys Bookinfo with reviews on v3 (so every page
calls ratings), a ratings ``v-faulty`` whose 503 probability is 0.05, and sends ``--rps`` pages
per second through the ingress. Each run starts a Canary ratings v1 -> v-faulty at 50% and
reports seconds from ``rollout start`` to the rollback decision, and from the moment every
proxy applied the 50% split to that decision. Real processes, loopback only.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from canarymesh.ports import state_of  # noqa: E402
from canarymesh.ports.load import LoadGenerator  # noqa: E402
from canarymesh.rollout.phases import Phase  # noqa: E402
from canarymesh.runtime.local.rollout_store import RolloutStore  # noqa: E402

CLI = str(Path(sys.executable).parent / "canarymesh")
SETUP = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v3}}]}]
---
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
          env: [{name: RATINGS_FAULT_PROBABILITY, value: "0.05"}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  subsets: [{name: v1, labels: {version: v1}}, {name: v-faulty, labels: {version: v-faulty}}]
"""
CANARY = """
apiVersion: canarymesh.io/v1alpha1
kind: Canary
metadata: {name: ratings, namespace: default}
spec:
  target: {host: ratings, virtualService: ratings, stableSubset: v1, canarySubset: v-faulty}
  strategy: {canary: {steps: [{setWeight: 50}, {analysis: {duration: 2m}}]}}
  analysis: {judge: JUDGE, interval: 5s, failureLimit: 5, minRequests: 50,
             metrics: [{name: request-success-rate, thresholdRange: {min: 99}}]}
  progressDeadline: 5m
"""


def cli(state: Path, *args: str, stdin: str | None = None) -> None:
    done = subprocess.run([CLI, *args, "--state-dir", str(state)], input=stdin, text=True,
                          capture_output=True, cwd=REPO)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"canarymesh {' '.join(args)}: {done.stdout}{done.stderr}")


def one_rollout(state: Path, judge: str) -> tuple[float, float, float, str]:
    """Seconds from ``rollout start`` to the rollback decision, from the controller taking the
    rollout to it, from the 50% split being applied by every proxy to it; and its reason."""
    started, wall = time.monotonic(), datetime.datetime.now(datetime.UTC)
    cli(state, "rollout", "start", "-f", "-", stdin=CANARY.replace("JUDGE", judge))
    store = RolloutStore(state)
    while time.monotonic() - started < 300:
        current = state_of(store.load("default/ratings"))
        if current is not None and current.phase in (Phase.FAILED, Phase.SUCCEEDED):
            break
        time.sleep(0.2)
    assert current is not None
    back = [h for h in current.history if h.phase is Phase.ROLLING_BACK]
    split = [h for h in current.history if h.reason.startswith("step 2/2")]
    if current.phase is not Phase.FAILED or not back or not split:
        return float("nan"), float("nan"), float("nan"), current.message
    total = (back[0].at - wall).total_seconds()
    taken = (back[0].at - current.started_at).total_seconds()
    return total, taken, (back[0].at - split[0].at).total_seconds(), back[0].reason


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rps", type=float, default=40.0)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-rollback-")) / "state"
    cli(state, "up", "--ingress-port", "0")
    try:
        cli(state, "apply", "-f", "bookinfo/platform/kube/bookinfo.yaml", "-f",
            "bookinfo/networking/destination-rule-all.yaml", "-f",
            "bookinfo/networking/virtual-service-all-v1.yaml", "-f",
            "bookinfo/networking/bookinfo-gateway.yaml", "--wait")  # fmt: skip
        cli(state, "apply", "-f", "-", "--wait", stdin=SETUP)
        ingress = (state / "daemon.json").read_text().split('"ingress_url": "')[1].split('"')[0]
        load = LoadGenerator(f"{ingress}/productpage", args.rps, 3600).start()
        time.sleep(5)
        results: dict[str, list[tuple[float, float, float, str]]] = {
            "statistical": [],
            "threshold": [],
        }
        for _ in range(args.runs):
            for judge in results:
                results[judge].append(one_rollout(state, judge))
        load.stop()
    finally:
        cli(state, "down")
    print(f"+5% errors on ratings v-faulty at 50%, {args.rps:g} pages/s, interval 5s")
    for judge, rows in results.items():
        print(f"{judge:<12} median seconds to the rollback decision: from rollout start "
              f"{_median(rows, 0):5.1f}, from the controller taking it {_median(rows, 1):5.1f}, "
              f"from the split applied {_median(rows, 2):5.1f}  (runs from start: "
              f"{', '.join(f'{r[0]:.1f}' for r in rows)})")  # fmt: skip
        print(f"  last reason: {rows[-1][3]}")
    ratio = _median(results["threshold"], 2) / _median(results["statistical"], 2)
    print(f"threshold / statistical, split applied -> rollback: {ratio:.2f}x")


def _median(rows: list[tuple[float, float, float, str]], column: int) -> float:
    return statistics.median(float(row[column]) for row in rows)


if __name__ == "__main__":
    main()
