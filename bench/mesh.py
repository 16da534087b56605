"""The local mesh end to end: start-up, apply-to-ACK, memory, and the latency of sidecar hops.

Run: ``.venv/bin/python bench/mesh.py [--runs 3] [--applies 100] [--requests 2000]``.

What it measures, each with its baseline in the same run:

* ``up`` + Bookinfo to ready: ``canarymesh up``, ``apply -f bookinfo.yaml --wait`` and the
  networking files, until productpage's title comes back through the ingress (goal < 10 s).
* apply to all proxies ACKed: a VirtualService flipped between two weight splits with
  ``--wait`` through the control plane's API; the daemon reports the time from receiving the
  documents to every proxy having ACKed (goal p50/p99 < 100 ms). Baseline: re-applying the same
  document (``unchanged``: the same validation and round trip, no push).
* total memory of the running mesh (control plane + every child): RSS, and PSS, which shares
  the Envoy binary's pages fairly between the seven Envoys (goal < 700 MB).
* added latency: ``GET /health`` of details directly (baseline), through its sidecar's inbound
  listener (one hop), and from productpage's sidecar as an HTTP proxy to details over auto mTLS
  (a sidecar pair: Istio's "two sidecars" figure), sequential keep-alive requests, interleaved.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, cast

from canarymesh.runtime.local.api_client import ApiClient

REPO = Path(__file__).parents[1]
CANARYMESH = str(Path(sys.executable).parent / "canarymesh")
NETWORKING = [
    "bookinfo/networking/destination-rule-all.yaml",
    "bookinfo/networking/virtual-service-all-v1.yaml",
    "bookinfo/networking/bookinfo-gateway.yaml",
]
SPLIT = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {{host: reviews, subset: v1}}
      weight: {a}
    - destination: {{host: reviews, subset: v3}}
      weight: {b}
"""


def cli(state: Path, *args: str) -> str:
    done = subprocess.run(
        [CANARYMESH, *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"canarymesh {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def start_bookinfo(state: Path) -> dict[str, float]:
    """Up + Bookinfo + networking, timed per phase, until the title comes through the ingress."""
    t0 = time.perf_counter()
    cli(state, "up", "--ingress-port", "0")
    t_up = time.perf_counter()
    cli(state, "apply", "-f", "bookinfo/platform/kube/bookinfo.yaml", "--wait")
    t_pods = time.perf_counter()
    args = [a for f in NETWORKING for a in ("-f", f)]
    cli(state, "apply", *args, "--wait")
    ingress = str(json.loads(cli(state, "status", "-o", "json"))["ingress_url"])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        with opener.open(ingress + "/productpage", timeout=10) as response:
            if b"<title>Simple Bookstore App</title>" in response.read():
                break
    t_page = time.perf_counter()
    return {"up": t_up - t0, "bookinfo": t_pods - t_up, "total": t_page - t0}


def bench_apply(state: Path, count: int) -> dict[str, list[float]]:
    api = ApiClient.for_state_dir(state)
    found: dict[str, list[float]] = {"changed": [], "unchanged": [], "changed_client": []}
    for i in range(count):
        a = 90 if i % 2 else 10
        text = SPLIT.format(a=a, b=100 - a)
        started = time.perf_counter()
        body = {"documents": [{"source": "bench", "text": text}], "wait": True}
        answer = api.post("/v1/apply", body)
        found["changed_client"].append((time.perf_counter() - started) * 1000)
        found["changed"].append(float(cast(float, answer["converged_ms"])))
        again = api.post("/v1/apply", body)
        assert again["lines"] == ["virtualservice.networking.istio.io/reviews unchanged"]
        found["unchanged"].append(float(cast(float, again["converged_ms"])))
    return found


def memory(state: Path) -> dict[str, float]:
    status = json.loads(cli(state, "status", "-o", "json"))
    pids = [int(c["pid"]) for c in status["components"] if c.get("pid")]
    rss = pss = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            field, _, rest = line.partition(":")
            if field in ("Rss", "Pss"):
                kib = int(rest.split()[0])
                rss += kib if field == "Rss" else 0
                pss += kib if field == "Pss" else 0
    return {"processes": len(pids), "rss_mb": rss / 1024, "pss_mb": pss / 1024}


def _ports(state: Path) -> tuple[int, int, int]:
    pods = ApiClient.for_state_dir(state).get("/v1/pods")["items"]
    rows = cast(list[dict[str, Any]], pods)
    details = next(p for p in rows if p["deployment"] == "details-v1")["ports"]
    productpage = next(p for p in rows if p["deployment"] == "productpage-v1")["ports"]
    return details["app"]["9080"], details["inbound"]["9080"], productpage["outbound_http"]


def bench_hops(state: Path, requests: int) -> dict[str, list[float]]:
    app, inbound, outbound = _ports(state)
    paths = {
        "direct": (app, "/health", "127.0.0.1"),
        "one sidecar (inbound)": (inbound, "/health", "127.0.0.1"),
        "sidecar pair, mTLS": (outbound, "http://details:9080/health", "details:9080"),
    }
    connections = {
        name: http.client.HTTPConnection("127.0.0.1", port) for name, (port, _, _) in paths.items()
    }
    found: dict[str, list[float]] = {name: [] for name in paths}
    for i in range(requests + 50):
        for name, (_, target, host) in paths.items():
            connection = connections[name]
            started = time.perf_counter()
            connection.request("GET", target, headers={"Host": host})
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status == 200, (name, response.status)
            if i >= 50:  # warm-up
                found[name].append(elapsed)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="start-ups to time")
    parser.add_argument("--applies", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as tmp:
        startups = []
        for run in range(args.runs):
            state = Path(tmp) / f"run{run}"
            try:
                startups.append(start_bookinfo(state))
                if run == args.runs - 1:
                    applies = bench_apply(state, args.applies)
                    mem = memory(state)
                    hops = bench_hops(state, args.requests)
            finally:
                cli(state, "down")
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    print("\n## up + Bookinfo to ready (s)")
    for key in ("up", "bookinfo", "total"):
        values = [s[key] for s in startups]
        shown = [round(v, 2) for v in values]
        print(f"  {key:<10} median {statistics.median(values):.2f}  all {shown}")
    print(f"\n## apply to all proxies ACKed, {args.applies} weight flips (ms)")
    for key, values in applies.items():
        print(f"  {key:<15} p50 {pct(values, 50):7.2f}  p99 {pct(values, 99):7.2f}")
    ratio = pct(applies["changed"], 50) / pct(applies["unchanged"], 50)
    print(f"  changed/unchanged p50 ratio: {ratio:.1f}x")
    print("\n## memory of the running mesh")
    print(f"  {mem['processes']} processes: RSS {mem['rss_mb']:.0f} MB, PSS {mem['pss_mb']:.0f} MB")
    print(f"\n## GET /health of details, {args.requests} sequential keep-alive requests (ms)")
    base50, base99 = pct(hops["direct"], 50), pct(hops["direct"], 99)
    for name, values in hops.items():
        p50, p99 = pct(values, 50), pct(values, 99)
        print(
            f"  {name:<24} p50 {p50:6.3f}  p99 {p99:6.3f}"
            f"   added p50 {p50 - base50:+.3f}  p99 {p99 - base99:+.3f}"
        )


if __name__ == "__main__":
    main()
