"""The local mesh end to end: start-up, apply-to-ACK, memory, and the latency of sidecar hops.

Run: ``.venv/bin/python bench/mesh.py [--runs 3] [--applies 100] [--requests 2000]
[--network pod,host]``: every figure for each network mode, in one run (pod networks need root).

What it measures, each with its baseline in the same run:

* ``up`` + Bookinfo to ready: ``canarymesh up``, ``apply -f bookinfo.yaml --wait`` and the
  networking files, until productpage's title comes back through the ingress (goal < 5 s).
* apply to all proxies ACKed: a VirtualService flipped between two weight splits with
  ``--wait`` through the control plane's API; the daemon reports the time from receiving the
  documents to every proxy having ACKed (goal p50/p99 < 100 ms). Baseline: re-applying the same
  document (``unchanged``: the same validation and round trip, no push).
* total memory of the running mesh (control plane + every child): RSS, and PSS, which shares
  the Envoy binary's pages fairly between the Envoys (goal < 500 MB).
* added latency: ``GET /health`` of details directly (baseline), through its sidecar's inbound
  listener (one hop), and from productpage's sidecar to details over auto mTLS (a sidecar pair:
  Istio's "two sidecars" figure), sequential keep-alive requests, interleaved (goal: added p99
  of a pair < 1 ms). In a pod network the direct call is made inside details' pod, the one-hop
  call from the pod network without a sidecar, and the pair call from inside productpage's pod
  to details' ClusterIP (captured by iptables); on the shared network through loopback ports
  (the pair through productpage's sidecar as HTTP proxy).
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
from canarymesh.runtime.local.netns import socket_in_netns
from canarymesh.runtime.local.podnet import mesh_id

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
        [CANARYMESH, "--state-dir", str(state), *args],
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


def start_bookinfo(state: Path, network: str) -> dict[str, float]:
    """Up + Bookinfo + networking, timed per phase, until the title comes through the ingress."""
    t0 = time.perf_counter()
    cli(state, "up", "--ingress-port", "0", "--network", network)
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


class NetnsConnection(http.client.HTTPConnection):
    """An HTTP connection whose socket is made inside a network namespace."""

    def __init__(self, host: str, port: int, netns: str) -> None:
        super().__init__(host, port)
        self.netns = netns

    def connect(self) -> None:
        sock = socket_in_netns(self.netns)
        sock.setblocking(True)
        sock.connect((self.host, self.port))
        self.sock = sock


def _connections(state: Path) -> dict[str, tuple[http.client.HTTPConnection, str, str]]:
    """name -> (connection, request target, Host) for the three paths to details' /health."""
    api = ApiClient.for_state_dir(state)
    rows = cast(list[dict[str, Any]], api.get("/v1/pods")["items"])
    details = next(p for p in rows if p["deployment"] == "details-v1")
    productpage = next(p for p in rows if p["deployment"] == "productpage-v1")
    if details.get("ip"):
        node = f"/run/netns/cm-{mesh_id(state)}-node"
        services = api.get("/v1/resources", {"kinds": "service", "name": "details"})["items"]
        cluster_ip = str(cast(list[dict[str, Any]], services)[0]["spec"]["clusterIP"])
        inside = f"/run/netns/{details['netns']}"
        return {
            "direct": (NetnsConnection("127.0.0.1", 9080, inside), "/health", "127.0.0.1"),
            "one sidecar (inbound)": (
                NetnsConnection(str(details["ip"]), 9080, node),
                "/health",
                "details:9080",
            ),
            "sidecar pair, mTLS": (
                NetnsConnection(cluster_ip, 9080, f"/run/netns/{productpage['netns']}"),
                "/health",
                "details:9080",
            ),
        }
    ports = details["ports"]
    outbound = productpage["ports"]["outbound_http"]
    return {
        "direct": (http.client.HTTPConnection("127.0.0.1", ports["app"]["9080"]), "/health", "x"),
        "one sidecar (inbound)": (
            http.client.HTTPConnection("127.0.0.1", ports["inbound"]["9080"]),
            "/health",
            "details:9080",
        ),
        "sidecar pair, mTLS": (
            http.client.HTTPConnection("127.0.0.1", outbound),
            "http://details:9080/health",
            "details:9080",
        ),
    }


def bench_hops(state: Path, requests: int) -> dict[str, list[float]]:
    paths = _connections(state)
    found: dict[str, list[float]] = {name: [] for name in paths}
    for i in range(requests + 50):
        for name, (connection, target, host) in paths.items():
            started = time.perf_counter()
            connection.request("GET", target, headers={"Host": host})
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status == 200, (name, response.status)
            if i >= 50:  # warm-up
                found[name].append(elapsed)
    return found


Found = tuple[
    list[dict[str, float]], dict[str, list[float]], dict[str, float], dict[str, list[float]]
]


def bench_mode(tmp: Path, network: str, args: argparse.Namespace) -> Found:
    startups = []
    for run in range(args.runs):
        state = tmp / f"{network}-run{run}"
        try:
            startups.append(start_bookinfo(state, network))
            if run == args.runs - 1:
                applies = bench_apply(state, args.applies)
                mem = memory(state)
                # Prometheus' head and WAL grow for its first scrapes: the figure a user lives
                # with is the settled one (measured: +100 MB within 10 s, flat from 30 s).
                time.sleep(args.settle)
                settled = memory(state)
                mem.update({f"settled_{k}": v for k, v in settled.items()})
                hops = bench_hops(state, args.requests)
        finally:
            cli(state, "down")
    return startups, applies, mem, hops


def report(
    network: str,
    args: argparse.Namespace,
    found: Found,
) -> dict[str, float]:
    startups, applies, mem, hops = found
    print(f"\n# network: {network}")
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
    print(f"  {mem['processes']} processes: RSS {mem['rss_mb']:.0f} MB, PSS {mem['pss_mb']:.0f} MB"
          " (at ready)")  # fmt: skip
    print(f"  {mem['settled_processes']:.0f} processes: RSS {mem['settled_rss_mb']:.0f} MB,"
          f" PSS {mem['settled_pss_mb']:.0f} MB ({args.settle:.0f} s later)")  # fmt: skip
    print(f"\n## GET /health of details, {args.requests} sequential keep-alive requests (ms)")
    base50, base99 = pct(hops["direct"], 50), pct(hops["direct"], 99)
    added: dict[str, float] = {}
    for name, values in hops.items():
        p50, p99 = pct(values, 50), pct(values, 99)
        added[name + " p50"], added[name + " p99"] = p50 - base50, p99 - base99
        print(
            f"  {name:<24} p50 {p50:6.3f}  p99 {p99:6.3f}"
            f"   added p50 {p50 - base50:+.3f}  p99 {p99 - base99:+.3f}"
        )
    return added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="start-ups to time")
    parser.add_argument("--applies", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds before memory again")
    parser.add_argument("--network", default="pod,host", help="modes to measure, in order")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    added: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as tmp:
        for network in args.network.split(","):
            added[network] = report(network, args, bench_mode(Path(tmp), network, args))
    if len(added) == 2 and "pod" in added and "host" in added:
        pair = "sidecar pair, mTLS"
        print("\n## sidecar pair, added latency: pod network vs shared network (ms)")
        for q in ("p50", "p99"):
            pod, host = added["pod"][f"{pair} {q}"], added["host"][f"{pair} {q}"]
            print(f"  {q}: pod {pod:+.3f}  host {host:+.3f}  ratio {pod / host:.2f}x")


if __name__ == "__main__":
    main()
