"""The local control plane process: ``python -m canarymesh.runtime.local.daemon --state-dir D``.

Started in the background by ``canarymesh up`` (see :mod:`canarymesh.runtime.local.launcher`).
It runs, in one event loop: the ADS server, the supervisor of every child (Prometheus, the
ingress gateway's Envoy, each pod's app and sidecar), the CA, and the local API. Once all of that
is ready it writes ``<state_dir>/daemon.json`` (pid, ports, URLs), which is what ``up`` waits
for. SIGTERM, SIGINT or ``POST /v1/shutdown`` stop every child and remove the file; a SIGKILL
of this process kills the children too (the supervisor's parent-death signal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from canarymesh.errors import CanaryMeshError
from canarymesh.mesh.build import INGRESS_NAME
from canarymesh.mesh.model import MeshSettings
from canarymesh.runtime.local.ads import AdsServer
from canarymesh.runtime.local.api_client import DAEMON_FILE, TOKEN_FILE
from canarymesh.runtime.local.api_server import ApiServer, write_token
from canarymesh.runtime.local.ca import LocalCA
from canarymesh.runtime.local.control import ControlPlane
from canarymesh.runtime.local.prometheus import CONTROLLER_JOB, LocalPrometheus, ScrapeJob
from canarymesh.runtime.local.reconcile import (
    ENVOY_JOB,
    TELEMETRY_JOB,
    Reconciler,
    free_port,
    sidecar_name,
)
from canarymesh.runtime.local.store import Store
from canarymesh.runtime.local.supervisor import Supervisor
from canarymesh.runtime.local.telemetry import TelemetryCollector
from canarymesh.runtime.local.tracing import TracingCollector

__all__ = ["DROP_HISTOGRAMS", "main", "run"]

# Connection-level histograms nobody queries: a third of Envoy's series, and Prometheus' memory
# grows with series. Request histograms (upstream_rq_time, downstream_rq_time) are kept.
DROP_HISTOGRAMS = {
    "source_labels": ["__name__"],
    "regex": "envoy_(cluster_upstream_cx_connect_ms|cluster_upstream_cx_length_ms"
    "|cluster_upstream_rq_per_cx|http_downstream_cx_length_ms)_(bucket|sum|count)",
    "action": "drop",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m canarymesh.runtime.local.daemon")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--ingress-port", type=int, default=8080)
    parser.add_argument("--restart-backoff", type=float, default=0.5)
    parser.add_argument("--scrape-interval", default="1s")
    parser.add_argument("--no-prometheus", action="store_true")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / DAEMON_FILE).unlink(missing_ok=True)
    async with Supervisor() as supervisor:
        # Prometheus first: it starts while the xDS protos load (about half a second).
        prometheus = None
        if not args.no_prometheus:
            jobs = [
                ScrapeJob(
                    ENVOY_JOB, "/stats/prometheus", metric_relabel_configs=(DROP_HISTOGRAMS,)
                ),
                ScrapeJob(TELEMETRY_JOB),
                # The canary controller is started later, by `rollout start`; it writes its own
                # target into this job's file_sd file (canarymesh.controller.local).
                ScrapeJob(CONTROLLER_JOB),
            ]
            prometheus = LocalPrometheus(
                state_dir, jobs, free_port(set()), scrape_interval=args.scrape_interval
            )
            await supervisor.start(prometheus.spec(), ready_timeout=None)
        ads = AdsServer()
        ads_port = await ads.start()
        collector = TelemetryCollector(
            lambda node: reconciler.peers.get(node),
            addresses=lambda address: reconciler.inbound_peers.get(address),
        )
        tracing = TracingCollector()
        settings = MeshSettings(
            telemetry_port=await collector.start(), tracing_port=await tracing.start()
        )
        metrics_port = await collector.serve_metrics()
        ca = LocalCA.load_or_create(state_dir, dt.datetime.now(dt.UTC))
        reconciler = Reconciler(
            state_dir,
            supervisor,
            ads,
            ca,
            prometheus,
            args.ingress_port,
            settings,
            backoff=args.restart_backoff,
        )
        reconciler.telemetry_targets = (f"127.0.0.1:{metrics_port}",)
        store = Store.load(state_dir / "store.json")
        await reconciler.realise(reconciler.prepare(store.documents))
        await supervisor.wait_ready(sidecar_name(INGRESS_NAME), 15.0)
        if prometheus is not None:
            await supervisor.wait_ready("prometheus", 15.0)
        info: dict[str, object] = {
            "pid": os.getpid(),
            "state_dir": str(state_dir),
            "ads_port": ads_port,
            "ingress_port": args.ingress_port,
            "ingress_url": f"http://127.0.0.1:{args.ingress_port}",
            "prometheus_url": prometheus.url if prometheus else None,
            "telemetry": {"als_port": settings.telemetry_port, "metrics_port": metrics_port},
            "tracing_url": f"http://127.0.0.1:{settings.tracing_port}",
        }
        watcher = asyncio.create_task(reconciler.watch_readiness())
        control = ControlPlane(store, reconciler, info)
        api = ApiServer(control, write_token(state_dir / TOKEN_FILE))
        info["api_port"] = await api.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, control.shutdown.set)
        _write_json(state_dir / DAEMON_FILE, info)
        try:
            await control.shutdown.wait()
        finally:
            (state_dir / DAEMON_FILE).unlink(missing_ok=True)
            started = loop.time()
            watcher.cancel()
            await supervisor.stop_all()
            stopped = loop.time()
            await api.stop()
            await collector.stop()
            await tracing.stop()
            await ads.stop(0)
            print(
                f"stopped: children in {stopped - started:.2f}s,"
                f" servers in {loop.time() - stopped:.2f}s",
                file=sys.stderr,
                flush=True,
            )


def _write_json(path: Path, value: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except CanaryMeshError as err:
        print(f"canarymesh control plane: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    with contextlib.suppress(OSError):
        (args.state_dir / DAEMON_FILE).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
