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
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from canarymesh.errors import CanaryMeshError
from canarymesh.mesh.build import INGRESS_NAME
from canarymesh.mesh.capture import PROXY_GID, PROXY_UID
from canarymesh.mesh.model import MeshSettings
from canarymesh.runtime.local.addresses import (
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    AddressBook,
)
from canarymesh.runtime.local.ads import AdsServer
from canarymesh.runtime.local.api_client import DAEMON_FILE, TOKEN_FILE
from canarymesh.runtime.local.api_server import ApiServer, write_token
from canarymesh.runtime.local.ca import LocalCA
from canarymesh.runtime.local.control import ControlPlane
from canarymesh.runtime.local.envoy import binary_for_proxy_user, envoy_binary
from canarymesh.runtime.local.identities import Identities
from canarymesh.runtime.local.local_ports import free_port
from canarymesh.runtime.local.pod_lifecycle import PodRunner, sidecar_name
from canarymesh.runtime.local.podnet import RUN_ROOT, PodNetworks, mesh_id
from canarymesh.runtime.local.pods import app_base_env
from canarymesh.runtime.local.prometheus import CONTROLLER_JOB, LocalPrometheus, ScrapeJob
from canarymesh.runtime.local.pushes import Pusher
from canarymesh.runtime.local.reconcile import ENVOY_JOB, TELEMETRY_JOB, Reconciler
from canarymesh.runtime.local.scrape_proxy import scrape_proxy_spec
from canarymesh.runtime.local.store import Store
from canarymesh.runtime.local.supervisor import Supervisor
from canarymesh.runtime.local.telemetry import TelemetryCollector
from canarymesh.runtime.local.tracing import TracingCollector

__all__ = ["DROP_HISTOGRAMS", "main", "run", "run_dir_of"]

ADDRESSES_FILE = "addresses.json"

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
    parser.add_argument("--network", choices=("pod", "host"), default="host")
    parser.add_argument("--pod-cidr", default=DEFAULT_POD_CIDR)
    parser.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR)
    return parser.parse_args(argv)


def run_dir_of(state_dir: Path) -> Path:
    """Where the proxies' files and sockets live: a directory the proxy user can traverse even
    when the state directory is under a private home (root's is 0700)."""
    return RUN_ROOT / mesh_id(state_dir)  # podnet.remove_pod_network removes it too


def make_run_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o710)
    # root:1337, 0710: the sidecars (group 1337) may reach their own files inside, no one lists.
    os.chown(path, 0, PROXY_GID)
    os.chmod(path, 0o710)
    (path / "proxies").mkdir(mode=0o710)
    os.chown(path / "proxies", 0, PROXY_GID)
    return path


async def run(args: argparse.Namespace) -> None:
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / DAEMON_FILE).unlink(missing_ok=True)
    pod_network = args.network == "pod"
    addresses = network = None
    run_dir = state_dir
    owner = None
    if pod_network:
        addresses = AddressBook.load(state_dir / ADDRESSES_FILE, args.pod_cidr, args.service_cidr)
        network = PodNetworks(state_dir, addresses.pod_cidr, addresses.nameserver)
        await network.start()  # removes a crashed mesh's leftovers first
        run_dir = make_run_dir(run_dir_of(state_dir))
        owner = (PROXY_UID, PROXY_GID)
    try:
        await serve(args, state_dir, run_dir, addresses, network, owner)
    finally:
        if network is not None:
            await network.stop()
        if pod_network:
            shutil.rmtree(run_dir, ignore_errors=True)


async def serve(
    args: argparse.Namespace,
    state_dir: Path,
    run_dir: Path,
    addresses: AddressBook | None,
    network: PodNetworks | None,
    owner: tuple[int, int] | None,
) -> None:
    async with Supervisor() as supervisor:
        # Prometheus first: it starts while the xDS protos load (about half a second).
        prometheus = None
        scrape_port = free_port(set())
        if not args.no_prometheus:
            proxy_url = f"http://127.0.0.1:{scrape_port}" if network is not None else None
            jobs = [
                ScrapeJob(
                    ENVOY_JOB,
                    "/stats/prometheus",
                    metric_relabel_configs=(DROP_HISTOGRAMS,),
                    proxy_url=proxy_url,
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
        if network is not None and not args.no_prometheus:
            spec = scrape_proxy_spec(
                run_dir, state_dir / "logs", scrape_port, network.node, network.host_netns
            )
            await supervisor.start(spec, ready_timeout=None)
        ads = AdsServer()
        collector = TelemetryCollector(
            lambda node: reconciler.peers.get(node),
            addresses=lambda address: reconciler.inbound_peers.get(address),
            services=lambda node: reconciler.services_of.get(node),
            pod_network=network is not None,
        )
        tracing = TracingCollector()
        tracing_port = await tracing.start()
        xds: int | str
        if network is not None:
            xds = await ads.start_unix(run_dir / "xds.sock", owner)
            settings = MeshSettings(
                telemetry_socket=await collector.start_unix(run_dir / "als.sock", owner),
                tracing_socket=await tracing.start_unix(run_dir / "zipkin.sock", owner),
                host_netns=network.host_netns,
            )
            envoy = binary_for_proxy_user(envoy_binary(), run_dir)
        else:
            xds = await ads.start()
            settings = MeshSettings(
                telemetry_port=await collector.start(), tracing_port=tracing_port
            )
            envoy = None
        metrics_port = await collector.serve_metrics()
        ca = LocalCA.load_or_create(state_dir, dt.datetime.now(dt.UTC))
        runner = PodRunner(
            state_dir,
            run_dir,
            supervisor,
            settings,
            xds,
            network,
            backoff=args.restart_backoff,
            base_env=app_base_env(),
            envoy=envoy,
        )
        reconciler = Reconciler(
            runner, Pusher(ads), Identities(ca), prometheus, args.ingress_port, settings, addresses
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
            "network": "pod" if network is not None else "host",
            "ads": xds if isinstance(xds, str) else f"127.0.0.1:{xds}",
            "ads_port": xds if isinstance(xds, int) else None,
            "ingress_port": args.ingress_port,
            "ingress_url": f"http://127.0.0.1:{args.ingress_port}",
            "prometheus_url": prometheus.url if prometheus else None,
            "telemetry": {
                "als": settings.telemetry_socket or f"127.0.0.1:{settings.telemetry_port}",
                "metrics_port": metrics_port,
            },
            "tracing_url": f"http://127.0.0.1:{tracing_port}",
        }
        if addresses is not None:
            info["pod_cidr"] = str(addresses.pod_cidr)
            info["service_cidr"] = str(addresses.service_cidr)
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
