"""Apply latency of the local control plane while junk floods its access-log server.

Run: ``.venv/bin/python bench/junk_telemetry.py [--sources 1000] [--applies 40] [--seconds 20]``.

Issue 13's attack: any local process could write access logs, and 300 forged sources made
``/metrics`` 16.6 MB, rendered on the event loop, stalling the control plane. Here a mesh runs
ratings (and the gateway), and the bench measures apply-to-all-ACKed of a weight flip
(``/v1/apply`` with ``wait``, as bench/mesh.py) three times, in one run:

* quiet (the baseline);
* while ``--sources`` junk clients (a separate process) open access-log streams with no or a
  wrong token, send a batch of entries and reconnect when refused, as fast as they can;
* while the same number of forged workloads is written through a *stolen* proxy token (read
  from a bootstrap file, as root): their workload labels fold into ``unknown``.

It reports p50/p99 of each and the ratio to quiet (goal: p99 within 2x), the refused streams
and folded labels the collector counted, and the size of ``/metrics`` at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, cast

import grpc
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

from canarymesh.runtime.local.api_client import ApiClient
from canarymesh.runtime.local.credentials import ALS_PURPOSE, TOKEN_HEADER, MeshCredentials

REPO = Path(__file__).parents[1]
CANARYMESH = str(Path(sys.executable).parent / "canarymesh")
SPLIT = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: ratings}}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {{host: ratings, subset: v1}}
      weight: {a}
    - destination: {{host: ratings, subset: v1}}
      weight: {b}
"""
RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  subsets: [{name: v1, labels: {version: v1}}]
"""


def cli(state: Path, *args: str) -> str:
    done = subprocess.run(
        [CANARYMESH, "--state-dir", str(state), *args], capture_output=True, text=True, cwd=REPO
    )
    if done.returncode != 0:
        raise SystemExit(f"canarymesh {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def applies(state: Path, count: int) -> list[float]:
    api = ApiClient.for_state_dir(state)
    found = []
    for i in range(count):
        a = 90 if i % 2 else 10
        body = {"documents": [{"source": "bench", "text": SPLIT.format(a=a, b=100 - a)}]}
        answer = api.post("/v1/apply", {**body, "wait": True})
        found.append(float(cast(float, answer["converged_ms"])))
    return found


def _message(node: str, direction: str, forged: int | None) -> Any:
    message = als_pb2.StreamAccessLogsMessage()
    message.identifier.node.id = node
    message.identifier.log_name = f"{node}|{direction}"
    for n in range(20):
        entry = message.http_logs.log_entry.add()
        entry.response.response_code.value = 503
        entry.request.authority = "ratings:9080"
        workload = f"forged-{(forged or 0) + n}"
        entry.request.request_headers["x-canarymesh-source"] = (
            f"workload={workload};namespace=default;app=x;version=v1;principal=unknown"
        )
    return message


async def _junk_source(target: str, token: str | None, node: str, n: int, until: float) -> int:
    sent = 0
    metadata = [(TOKEN_HEADER, token)] if token else [(TOKEN_HEADER, f"{n:064x}")]
    while time.monotonic() < until:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = als_pb2_grpc.AccessLogServiceStub(channel)

            async def messages() -> Any:
                yield _message(node, "inbound", n * 20 if token else None)

            with contextlib.suppress(grpc.aio.AioRpcError):  # refused, as it should be
                await stub.StreamAccessLogs(messages(), metadata=metadata, timeout=2)
            sent += 1
        if token:  # a stolen token: each source writes once, as its own forged workload
            return sent
    return sent


def junk(
    target: str, token: str | None, node: str, sources: int, seconds: float, uid: int | None
) -> None:
    """The flood, in its own process (so it does not share the bench's interpreter lock), as
    ``uid`` when given (a local process without root's rights)."""
    if uid is not None:
        os.setgid(uid)
        os.setuid(uid)

    async def main() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_junk_source(target, token, node, n, until) for n in range(sources)))

    asyncio.run(main())


def metrics_size(state: Path) -> tuple[int, str]:
    status = json.loads(cli(state, "status", "-o", "json"))
    port = status["telemetry"]["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return len(text), text


def counter(text: str, name: str) -> float:
    """The sum of a counter's samples (its ``_total`` series: not ``_created``, a timestamp)."""
    wanted = {name, f"{name}_total"}
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if not line.startswith("#") and line.split("{", 1)[0].split(" ", 1)[0] in wanted
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--applies", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--network", choices=("auto", "pod", "host"), default="auto")
    parser.add_argument(
        "--as-user",
        type=int,
        default=None,
        help="uid the flood runs as (a hostile local process that is not root, e.g. 65534)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-junk-") as tmp:
        state = Path(tmp) / "state"
        cli(state, "up", "--ingress-port", "0", "--no-prometheus", "--network", args.network)
        try:
            cli(state, "apply", "-f", "bookinfo/platform/kube/bookinfo-ratings.yaml", "--wait")
            ApiClient.for_state_dir(state).post(
                "/v1/apply", {"documents": [{"source": "bench", "text": RULE}], "wait": True}
            )
            status = json.loads(cli(state, "status", "-o", "json"))
            als = str(status["telemetry"]["als"])
            target = f"unix:{als}" if als.startswith("/") else als
            pods = cast(
                list[dict[str, Any]], ApiClient.for_state_dir(state).get("/v1/pods")["items"]
            )
            node = f"{pods[0]['name']}.{pods[0]['namespace']}"
            stolen = MeshCredentials.load_or_create(state / "mesh-secret").token(ALS_PURPOSE, node)
            results: dict[str, list[float]] = {"quiet": applies(state, args.applies)}
            for label, token in (("junk, no or wrong token", None), ("stolen token", stolen)):
                flood = multiprocessing.Process(
                    target=junk,
                    args=(target, token, node, args.sources, args.seconds, args.as_user),
                )
                flood.start()
                time.sleep(2.0)  # let the flood ramp up
                results[label] = applies(state, args.applies)
                flood.join(args.seconds + 30)
                if flood.is_alive():
                    flood.kill()
            size, text = metrics_size(state)
        finally:
            cli(state, "down")
    who = "root" if args.as_user is None else f"uid {args.as_user}"
    print(f"{args.sources} junk sources as {who}, network {args.network},"
          f" {args.applies} applies each (ms, apply to all ACKed)")  # fmt: skip
    base = pct(results["quiet"], 99)
    for label, values in results.items():
        p50, p90, p99 = pct(values, 50), pct(values, 90), pct(values, 99)
        print(f"  {label:<26} p50 {p50:7.2f}  p90 {p90:7.2f}  p99 {p99:7.2f}"
              f"  p99/quiet {p99 / base:5.2f}x")  # fmt: skip
    print(
        f"  refused streams counted: {counter(text, 'canarymesh_telemetry_rejected_streams'):.0f}"
    )
    print(f"  folded workload labels:  {counter(text, 'canarymesh_telemetry_folded_labels'):.0f}")
    forged = sum(1 for line in text.splitlines() if "forged-" in line)
    print(f"  /metrics: {size / 1024:.0f} KiB, {forged} lines naming a forged workload")


if __name__ == "__main__":
    main()
